/*
 * teams.h - handlers for teams and API keys (/v1/me, /v1/teams, /v1/keys).
 */
#ifndef PODIUM_SERVER_TEAMS_H
#define PODIUM_SERVER_TEAMS_H

#include "server/http.h"

int teams_me(struct http_req *r);
int teams_create(struct http_req *r);
int teams_get(struct http_req *r);
int keys_list(struct http_req *r);
int keys_create(struct http_req *r);
int keys_get(struct http_req *r);
int keys_revoke(struct http_req *r);

/* Create a key for team_id in the current transaction of db. On success
 * returns its JSON (with the one-time "key" member); NULL with the failed
 * result in *res_out (may be NULL result for out-of-memory). */
cJSON *teams_insert_key(PGconn *db, const char *team_id, const char *name,
                        const char *role, PGresult **res_out);

#endif
