/*
 * health.h - GET /healthz (the process answers) and GET /readyz (it can
 * reach its database), for load balancers and orchestrators.
 */
#ifndef PODIUM_SERVER_HEALTH_H
#define PODIUM_SERVER_HEALTH_H

#include "server/http.h"

int health_live(struct http_req *r);
int health_ready(struct http_req *r);

#endif
