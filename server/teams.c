/*
 * teams.c - see teams.h.
 *
 * Every query is scoped by the caller's team: a resource of another team is
 * answered exactly like one that does not exist (404), so ids cannot be
 * probed across teams.
 */
#include "server/teams.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/apikey.h"
#include "lib/crypto.h"
#include "lib/pgjson.h"
#include "server/resource.h"
#include "server/validate.h"

#define KEY_COLUMNS \
    "id, team_id, name, role, prefix, " PGJSON_TS("created_at") " AS created_at, " \
    PGJSON_TS("revoked_at") " AS revoked_at, " PGJSON_TS("last_used_at") " AS last_used_at"
#define TEAM_COLUMNS "id, name, operator, " PGJSON_TS("created_at") " AS created_at"

static const char *const roles[] = {"admin", "member", NULL};

static int not_found(struct http_req *r, const char *what)
{
    return http_problem(r, 404, "not-found", "Not found", NULL, "no %s at %s", what, r->path);
}

/* One-row query answered as JSON, 404 when there is no row. */
static int respond_one(struct http_req *r, PGresult *res, const char *what)
{
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        int ret = http_problem_db(r, res);
        PQclear(res);
        return ret;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        return not_found(r, what);
    }
    cJSON *o = pgjson_row(res, 0);
    PQclear(res);
    return http_respond_json(r, 200, o);
}

int teams_me(struct http_req *r)
{
    PGconn *db = http_db(r);
    if (db == NULL) return http_problem_db_unavailable(r, "me");
    const char *p[1] = {r->auth.key_id};
    PGresult *res = pool_exec(&r->db,
        "SELECT json_build_object('id', k.id, 'name', k.name, 'role', k.role,"
        "         'prefix', k.prefix, 'created_at', " PGJSON_TS("k.created_at") ") AS key,"
        "       json_build_object('id', t.id, 'name', t.name, 'operator', t.operator,"
        "         'created_at', " PGJSON_TS("t.created_at") ") AS team"
        "  FROM api_keys k JOIN teams t ON t.id = k.team_id WHERE k.id = $1",
        1, p);
    return respond_one(r, res, "key");
}

cJSON *teams_insert_key(PGconn *db, const char *team_id, const char *name,
                        const char *role, PGresult **res_out)
{
    *res_out = NULL;
    struct apikey k;
    if (apikey_generate(&k) < 0) return NULL;
    char hex[2 * CRYPTO_SHA256_LEN + 3] = "\\x";
    crypto_hex(k.hash, sizeof k.hash, hex + 2);
    const char *p[5] = {team_id, name ? name : "", role, k.prefix, hex};
    PGresult *res = PQexecParams(db,
        "INSERT INTO api_keys (team_id, name, role, prefix, hash)"
        " VALUES ($1, $2, $3, $4, $5::bytea) RETURNING " KEY_COLUMNS,
        5, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        *res_out = res;
        return NULL;
    }
    cJSON *o = pgjson_row(res, 0);
    PQclear(res);
    if (o) cJSON_AddStringToObject(o, "key", k.key);
    explicit_bzero(&k, sizeof k);
    return o;
}

static int exec_cmd(PGconn *db, const char *sql)
{
    PGresult *res = PQexec(db, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    return ok ? 0 : -1;
}

int teams_create(struct http_req *r)
{
    if (!r->auth.operator_team)
        return http_problem(r, 403, "forbidden", "Forbidden", NULL,
                            "only admins of the operator team may create teams");
    int ret;
    cJSON *in = http_json_body(r, 0, &ret);
    if (in == NULL) return ret;
    struct validator v;
    validator_init(&v);
    validate_only(&v, in, NULL, (const char *const[]){"name", NULL});
    const char *name = validate_string(&v, in, "name", 1, 1, 100);
    if (validator_failed(&v)) {
        cJSON_Delete(in);
        return http_problem_invalid(r, validator_take(&v));
    }
    validator_free(&v);

    PGconn *db = http_db(r);
    if (db == NULL) {
        cJSON_Delete(in);
        return http_problem_db_unavailable(r, "creating a team");
    }
    PGresult *res = NULL;
    cJSON *team = NULL, *key = NULL;
    if (exec_cmd(db, "BEGIN") < 0) goto db_error;
    const char *p[1] = {name};
    res = PQexecParams(db, "INSERT INTO teams (name) VALUES ($1) RETURNING " TEAM_COLUMNS,
                       1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (state && strcmp(state, "23505") == 0) {
            PQclear(res);
            exec_cmd(db, "ROLLBACK");
            ret = http_problem(r, 409, "conflict", "Conflict", "name",
                               "a team named '%s' exists already", name);
            cJSON_Delete(in);
            return ret;
        }
        goto db_error;
    }
    team = pgjson_row(res, 0);
    char team_id[40];
    snprintf(team_id, sizeof team_id, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    res = NULL;
    key = teams_insert_key(db, team_id, "initial admin key", "admin", &res);
    if (key == NULL) goto db_error;
    if (exec_cmd(db, "COMMIT") < 0) goto db_error;

    cJSON *out = cJSON_CreateObject();
    cJSON_AddItemToObject(out, "team", team);
    cJSON_AddItemToObject(out, "admin_key", key);
    char location[80];
    snprintf(location, sizeof location, "/v1/teams/%s", team_id);
    cJSON_Delete(in);
    return http_respond_created(r, out, location);

db_error:
    ret = http_problem_db(r, res);
    PQclear(res);
    exec_cmd(db, "ROLLBACK");
    cJSON_Delete(team);
    cJSON_Delete(key);
    cJSON_Delete(in);
    return ret;
}

/* The {team_id} of the path, if it is the caller's own team. */
static const char *own_team(struct http_req *r)
{
    const char *id = http_param(r, "team_id");
    if (!http_is_uuid(id) || strcasecmp(id, r->auth.team_id) != 0) return NULL;
    return r->auth.team_id;
}

int teams_get(struct http_req *r)
{
    return resource_get(r, "team_id", "team",
                        "SELECT " TEAM_COLUMNS " FROM teams WHERE id = $1 AND id = $2");
}

int keys_list(struct http_req *r)
{
    const char *team = own_team(r);
    if (team == NULL) return not_found(r, "team");
    if (http_db(r) == NULL) return http_problem_db_unavailable(r, "keys");
    const char *p[1] = {team};
    PGresult *res = pool_exec(&r->db,
        "SELECT " KEY_COLUMNS " FROM api_keys WHERE team_id = $1 ORDER BY created_at DESC, id",
        1, p);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        int ret = http_problem_db(r, res);
        PQclear(res);
        return ret;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddItemToObject(out, "items", pgjson_rows(res));
    PQclear(res);
    return http_respond_json(r, 200, out);
}

int keys_create(struct http_req *r)
{
    const char *team = own_team(r);
    if (team == NULL) return not_found(r, "team");
    int ret;
    cJSON *in = http_json_body(r, 1, &ret);
    if (in == NULL) return ret;
    struct validator v;
    validator_init(&v);
    validate_only(&v, in, NULL, (const char *const[]){"name", "role", NULL});
    const char *name = validate_string(&v, in, "name", 0, 0, 100);
    const char *role = validate_enum(&v, in, "role", roles, "member");
    if (validator_failed(&v)) {
        cJSON_Delete(in);
        return http_problem_invalid(r, validator_take(&v));
    }
    validator_free(&v);
    PGconn *db = http_db(r);
    if (db == NULL) {
        cJSON_Delete(in);
        return http_problem_db_unavailable(r, "creating a key");
    }
    PGresult *res = NULL;
    cJSON *key = teams_insert_key(db, team, name, role, &res);
    cJSON_Delete(in);
    if (key == NULL) {
        ret = http_problem_db(r, res);
        PQclear(res);
        return ret;
    }
    char location[80];
    snprintf(location, sizeof location, "/v1/keys/%s",
             cJSON_GetStringValue(cJSON_GetObjectItem(key, "id")));
    return http_respond_created(r, key, location);
}

int keys_get(struct http_req *r)
{
    return resource_get(r, "key_id", "key",
                        "SELECT " KEY_COLUMNS " FROM api_keys WHERE id = $1 AND team_id = $2");
}

int keys_revoke(struct http_req *r)
{
    const char *id = http_param(r, "key_id");
    if (!http_is_uuid(id)) return not_found(r, "key");
    if (http_db(r) == NULL) return http_problem_db_unavailable(r, "revoking a key");
    /* The team's row is locked first, in its own statement, so that two
     * admins revoking each other's keys at once are serialized and the
     * second one counts the remaining admins after the first committed:
     * a team is never left without an admin key. */
    PGconn *db = r->db.pg;
    const char *p[2] = {id, r->auth.team_id};
    PGresult *res = NULL;
    if (exec_cmd(db, "BEGIN") < 0) goto db_error;
    res = PQexecParams(db, "SELECT 1 FROM teams WHERE id = $1 FOR UPDATE", 1, NULL, p + 1,
                       NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) goto db_error;
    PQclear(res);
    res = PQexecParams(db,
        "WITH target AS (SELECT id, role, revoked_at FROM api_keys"
        "                WHERE id = $1 AND team_id = $2),"
        " others AS (SELECT count(*) AS n FROM api_keys WHERE team_id = $2"
        "            AND role = 'admin' AND revoked_at IS NULL AND id <> $1),"
        " revoked AS (UPDATE api_keys SET revoked_at = now() WHERE id IN"
        "             (SELECT target.id FROM target, others WHERE target.revoked_at IS NULL"
        "              AND (target.role <> 'admin' OR others.n > 0)) RETURNING id)"
        " SELECT (SELECT count(*) FROM target), (SELECT count(*) FROM revoked),"
        "        (SELECT count(*) FROM target WHERE revoked_at IS NOT NULL)",
        2, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) goto db_error;
    if (exec_cmd(db, "COMMIT") < 0) goto db_error;
    int found = atoi(PQgetvalue(res, 0, 0));
    int revoked = atoi(PQgetvalue(res, 0, 1));
    int already = atoi(PQgetvalue(res, 0, 2));
    PQclear(res);
    if (!found) return not_found(r, "key");
    if (!revoked && !already)
        return http_problem(r, 409, "last-admin-key", "Conflict", NULL,
                            "this is the team's last active admin key; create another "
                            "admin key before revoking it");
    return http_respond_empty(r, 204);

db_error:;
    int ret = http_problem_db(r, res);
    PQclear(res);
    exec_cmd(db, "ROLLBACK");
    return ret;
}
