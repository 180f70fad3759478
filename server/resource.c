/* resource.c - see resource.h. */
#include "server/resource.h"

#include <stdlib.h>

#include "lib/pgjson.h"

int resource_not_found(struct http_req *r, const char *what)
{
    return http_problem(r, 404, "not-found", "Not found", NULL, "no %s at %s", what, r->path);
}

PGresult *resource_fetch(struct http_req *r, const char *param, const char *what,
                         const char *sql, int *ret)
{
    const char *id = http_param(r, param);
    if (!http_is_uuid(id)) {
        *ret = resource_not_found(r, what);
        return NULL;
    }
    if (http_db(r) == NULL) {
        *ret = http_problem_db_unavailable(r, what);
        return NULL;
    }
    const char *p[2] = {id, r->auth.team_id};
    PGresult *res = pool_exec(&r->db, sql, 2, p);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        *ret = http_problem_db(r, res);
        PQclear(res);
        return NULL;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        *ret = resource_not_found(r, what);
        return NULL;
    }
    return res;
}

int resource_get(struct http_req *r, const char *param, const char *what, const char *sql)
{
    int ret;
    PGresult *res = resource_fetch(r, param, what, sql, &ret);
    if (res == NULL) return ret;
    cJSON *row = pgjson_row(res, 0);
    PQclear(res);
    return http_respond_json(r, 200, row);
}

int resource_query_int(struct http_req *r, const char *name, long lo, long hi, long dflt,
                       long *out, int *ret)
{
    const char *s = http_query(r, name);
    *out = dflt;
    if (s == NULL) return 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
        *ret = http_problem(r, 400, "invalid-parameter", "Invalid parameter", name,
                            "%s must be an integer from %ld to %ld", name, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}
