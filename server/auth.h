/*
 * auth.h - who is calling: the Bearer API key of a request, checked
 * against api_keys, and the route's required role.
 */
#ifndef PODIUM_SERVER_AUTH_H
#define PODIUM_SERVER_AUTH_H

#include "server/http.h"

/* Fill r->auth for the route's requirement. Returns 0 when the request may
 * go on; otherwise a response (401, 403 or 503) has been queued and *result
 * is what the handler dispatcher must return. */
int auth_check(struct http_req *r, int *result);

#endif
