/*
 * auth.h - who is calling: the Bearer API key of a request, checked
 * against api_keys, and the route's required role.
 *
 * Verified keys are cached in the process by their SHA-256 for a few
 * seconds (--auth-cache), so that a poll answered from memory touches no
 * database at all. A key revoked, re-roled or deleted is forgotten at once:
 * the revoking request forgets it before it runs, and a trigger NOTIFYs
 * podium_keys so that every server forgets it (events.c calls
 * auth_cache_forget). The cache is thread-safe.
 */
#ifndef PODIUM_SERVER_AUTH_H
#define PODIUM_SERVER_AUTH_H

#include "server/http.h"

/* Fill r->auth for the route's requirement. Returns 0 when the request may
 * go on; otherwise a response (401, 403 or 503) has been queued and *result
 * is what the handler dispatcher must return. */
int auth_check(struct http_req *r, int *result);

struct auth_cache;

/* A cache trusting a verified key for ttl_s seconds (0: a cache that never
 * hits). NULL on out-of-memory. */
struct auth_cache *auth_cache_new(int ttl_s);
void auth_cache_free(struct auth_cache *c);
/* Forget the key with this id, or every key for "*". cache is a struct
 * auth_cache (the signature events_new takes). */
void auth_cache_forget(void *cache, const char *key_id);

#endif
