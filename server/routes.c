/*
 * routes.c - the server's route table: every endpoint in one place.
 * api/openapi.yaml describes the same routes; tests/unit/test_openapi.c
 * fails when the two disagree.
 */
#include "server/router.h"

#include "server/health.h"
#include "server/teams.h"

const struct route server_routes[] = {
    {"GET", "/healthz", ROUTE_PUBLIC, health_live, "the process is alive"},
    {"GET", "/readyz", ROUTE_PUBLIC, health_ready, "the database is reachable"},
    {"GET", "/v1/me", ROUTE_MEMBER, teams_me, "the calling key and its team"},
    {"POST", "/v1/teams", ROUTE_ADMIN, teams_create, "create a team and its first admin key"},
    {"GET", "/v1/teams/{team_id}", ROUTE_MEMBER, teams_get, "the caller's team"},
    {"GET", "/v1/teams/{team_id}/keys", ROUTE_ADMIN, keys_list, "the team's API keys"},
    {"POST", "/v1/teams/{team_id}/keys", ROUTE_ADMIN, keys_create, "create an API key"},
    {"GET", "/v1/keys/{key_id}", ROUTE_ADMIN, keys_get, "one API key (never its secret)"},
    {"DELETE", "/v1/keys/{key_id}", ROUTE_ADMIN, keys_revoke, "revoke an API key"},
};

const size_t server_routes_count = sizeof server_routes / sizeof server_routes[0];
