/*
 * auth.c - see auth.h.
 *
 * The key is looked up by its SHA-256 through a unique index: one indexed
 * read per request. last_used_at is written at most once a minute per key,
 * so authentication does not turn every GET into a write.
 */
#include "server/auth.h"

#include <string.h>
#include <strings.h>

#include "lib/apikey.h"
#include "lib/crypto.h"
#include "lib/log.h"

static int unauthorized(struct http_req *r, const char *detail)
{
    return http_problem(r, 401, "unauthorized", "Unauthorized", NULL, "%s", detail);
}

int auth_check(struct http_req *r, int *result)
{
    if (r->route->auth == ROUTE_PUBLIC) return 0;

    const char *h = http_header(r, "Authorization");
    if (h == NULL) {
        *result = unauthorized(r, "an API key is required: send 'Authorization: Bearer <key>'");
        return -1;
    }
    if (strncasecmp(h, "Bearer ", 7) != 0) {
        *result = unauthorized(r, "the Authorization header must use the Bearer scheme");
        return -1;
    }
    const char *key = h + 7;
    while (*key == ' ') key++;
    size_t n = strlen(key);
    while (n > 0 && key[n - 1] == ' ') n--;
    if (!apikey_well_formed(key, n)) {
        *result = unauthorized(r, "the API key is not valid");
        return -1;
    }

    unsigned char hash[CRYPTO_SHA256_LEN];
    char hex[2 * CRYPTO_SHA256_LEN + 3] = "\\x";
    if (apikey_hash(key, n, hash) < 0) {
        *result = http_problem(r, 500, "internal", "Internal error", NULL, "hashing failed");
        return -1;
    }
    crypto_hex(hash, sizeof hash, hex + 2);

    PGconn *db = http_db(r);
    if (db == NULL) {
        *result = http_problem_db_unavailable(r, "authenticating");
        return -1;
    }
    const char *params[1] = {hex};
    PGresult *res = pool_exec(&r->db,
        "SELECT k.id, k.team_id, k.role, k.prefix,"
        "       k.last_used_at IS NULL OR k.last_used_at < now() - interval '60 seconds',"
        "       t.operator"
        "  FROM api_keys k JOIN teams t ON t.id = k.team_id"
        " WHERE k.hash = $1::bytea AND k.revoked_at IS NULL",
        1, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        *result = http_problem_db(r, res);
        PQclear(res);
        return -1;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        *result = unauthorized(r, "the API key is not valid or has been revoked");
        return -1;
    }
    snprintf(r->auth.key_id, sizeof r->auth.key_id, "%s", PQgetvalue(res, 0, 0));
    snprintf(r->auth.team_id, sizeof r->auth.team_id, "%s", PQgetvalue(res, 0, 1));
    r->auth.role = strcmp(PQgetvalue(res, 0, 2), "admin") == 0 ? ROLE_ADMIN : ROLE_MEMBER;
    snprintf(r->auth.prefix, sizeof r->auth.prefix, "%s", PQgetvalue(res, 0, 3));
    int stale = PQgetvalue(res, 0, 4)[0] == 't';
    r->auth.operator_team = PQgetvalue(res, 0, 5)[0] == 't';
    PQclear(res);

    if (stale) {
        const char *id[1] = {r->auth.key_id};
        PGresult *u = pool_exec(&r->db,
            "UPDATE api_keys SET last_used_at = now() WHERE id = $1", 1, id);
        if (PQresultStatus(u) != PGRES_COMMAND_OK)
            log_msg(LOG_WARN, "request %s: updating last_used_at: %s", r->request_id,
                    PQresultErrorMessage(u));
        PQclear(u);
    }

    if (r->route->auth == ROUTE_ADMIN && r->auth.role != ROLE_ADMIN) {
        *result = http_problem(r, 403, "forbidden", "Forbidden", NULL,
                               "this route needs an admin key; key %s is a member key",
                               r->auth.prefix);
        return -1;
    }
    return 0;
}
