/* health.c - see health.h. */
#include "server/health.h"

#include <stdlib.h>

int health_live(struct http_req *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "ok");
    cJSON_AddStringToObject(o, "version", PODIUM_VERSION);
    return http_respond_json(r, 200, o);
}

int health_ready(struct http_req *r)
{
    PGconn *db = http_db(r);
    if (db == NULL)
        return http_problem(r, 503, "not-ready", "Not ready", NULL,
                            "the database is not reachable");
    PGresult *res = pool_exec(&r->db, "SELECT max(version) FROM schema_migrations", 0, NULL);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        PQclear(res);
        return http_problem(r, 503, "not-ready", "Not ready", NULL,
                            "the database is not reachable");
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "ready");
    cJSON_AddStringToObject(o, "database", "ok");
    cJSON_AddNumberToObject(o, "schema_version", atof(PQgetvalue(res, 0, 0)));
    PQclear(res);
    return http_respond_json(r, 200, o);
}
