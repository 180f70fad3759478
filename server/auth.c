/*
 * auth.c - see auth.h.
 *
 * The key is looked up by its SHA-256 through a unique index: one indexed
 * read per request, unless the cache below verified it within its TTL.
 * last_used_at is written at most once a minute per key, when a request
 * reads the key from the database, so authentication does not turn every
 * GET into a write (with the cache it may lag by the TTL more).
 *
 * The cache is direct-mapped (AUTH_SLOTS slots chosen by the hash's first
 * bytes; a collision replaces the older key) under one mutex. A generation
 * counter moves on every forget: a request that read its key from the
 * database before a revocation was announced does not cache what it read.
 */
#include "server/auth.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/apikey.h"
#include "lib/crypto.h"
#include "lib/log.h"
#include "server/server.h"
#include "server/teams.h"

#define AUTH_SLOTS 1024

struct auth_slot {
    int used;
    unsigned char hash[CRYPTO_SHA256_LEN];
    int64_t expires_ms;
    struct http_auth auth;
};

struct auth_cache {
    pthread_mutex_t mu;
    int ttl_ms;
    uint64_t gen;
    struct auth_slot slots[AUTH_SLOTS];
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t slot_of(const unsigned char *hash)
{
    return ((size_t)hash[0] << 8 | hash[1]) % AUTH_SLOTS;
}

struct auth_cache *auth_cache_new(int ttl_s)
{
    struct auth_cache *c = calloc(1, sizeof *c);
    if (c == NULL) return NULL;
    pthread_mutex_init(&c->mu, NULL);
    c->ttl_ms = ttl_s > 0 ? ttl_s * 1000 : 0;
    return c;
}

void auth_cache_free(struct auth_cache *c)
{
    if (c == NULL) return;
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void auth_cache_forget(void *cache, const char *key_id)
{
    struct auth_cache *c = cache;
    if (c == NULL || key_id == NULL) return;
    int all = strcmp(key_id, "*") == 0;
    pthread_mutex_lock(&c->mu);
    c->gen++;
    for (size_t i = 0; i < AUTH_SLOTS; i++)
        if (c->slots[i].used && (all || strcmp(c->slots[i].auth.key_id, key_id) == 0))
            c->slots[i].used = 0;
    pthread_mutex_unlock(&c->mu);
}

/* 1 and *out when hash was verified within the TTL. */
static int cache_get(struct auth_cache *c, const unsigned char *hash, struct http_auth *out,
                     uint64_t *gen)
{
    if (c == NULL) return 0;
    int hit = 0;
    pthread_mutex_lock(&c->mu);
    *gen = c->gen;
    struct auth_slot *s = &c->slots[slot_of(hash)];
    if (c->ttl_ms > 0 && s->used && memcmp(s->hash, hash, CRYPTO_SHA256_LEN) == 0) {
        if (s->expires_ms > mono_ms()) {
            *out = s->auth;
            hit = 1;
        } else {
            s->used = 0;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return hit;
}

static void cache_put(struct auth_cache *c, const unsigned char *hash, const struct http_auth *a,
                      uint64_t gen)
{
    if (c == NULL || c->ttl_ms == 0) return;
    pthread_mutex_lock(&c->mu);
    if (gen == c->gen) {
        struct auth_slot *s = &c->slots[slot_of(hash)];
        s->used = 1;
        memcpy(s->hash, hash, CRYPTO_SHA256_LEN);
        s->expires_ms = mono_ms() + c->ttl_ms;
        s->auth = *a;
    }
    pthread_mutex_unlock(&c->mu);
}

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

    struct auth_cache *cache = r->srv->keys;
    uint64_t gen = 0;
    if (cache_get(cache, hash, &r->auth, &gen)) goto verified;

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
    cache_put(cache, hash, &r->auth, gen);

    if (stale) {
        const char *id[1] = {r->auth.key_id};
        PGresult *u = pool_exec(&r->db,
            "UPDATE api_keys SET last_used_at = now() WHERE id = $1", 1, id);
        if (PQresultStatus(u) != PGRES_COMMAND_OK)
            log_msg(LOG_WARN, "request %s: updating last_used_at: %s", r->request_id,
                    PQresultErrorMessage(u));
        PQclear(u);
    }

verified:
    /* A streaming route (an upload) works on the connection its key was
     * checked on; a cached key did not take one. */
    if (r->route->stream && http_db(r) == NULL) {
        *result = http_problem_db_unavailable(r, "authenticating");
        return -1;
    }
    /* A request that may revoke a key forgets it before it runs, so that
     * the caller's next request with that key is checked against the
     * database even before the NOTIFY arrives. */
    if (r->route->handler == keys_revoke) auth_cache_forget(cache, http_param(r, "key_id"));

    if (r->route->auth == ROUTE_ADMIN && r->auth.role != ROLE_ADMIN) {
        *result = http_problem(r, 403, "forbidden", "Forbidden", NULL,
                               "this route needs an admin key; key %s is a member key",
                               r->auth.prefix);
        return -1;
    }
    return 0;
}
