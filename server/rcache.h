/*
 * rcache.h - rendered responses kept in memory, by (key, version).
 *
 * A polled resource (a job's leaderboard, a team's) is rendered once per
 * version and the bytes are handed to every request that asks for that
 * version, with or without If-None-Match. The caller chooses both
 * strings: the key names the representation (resource, team, variant),
 * the version names the state it was rendered from (the job's event seq,
 * events.h); a lookup hits only when both are equal, so a moved version
 * is a miss at once and the stale entry is replaced by the next render.
 *
 * Single flight: a miss makes the caller the one that renders (the
 * leader) unless another request is already rendering that key at that
 * version; then the caller waits (at most wait_ms) for the leader's result
 * and takes it, whatever version the leader stored it under (a leader
 * that read a newer version from the database has a newer body). A leader
 * that fails abandons its flight and its waiters render for themselves.
 *
 * Memory: every entry costs its body, its strings and a fixed overhead;
 * past max_bytes the least recently used entries go. A body larger than
 * max_bytes / 8 is handed to the waiters of its flight but never stored.
 *
 * Threads: every function may be called from any thread; one mutex guards
 * the table, bodies are copied out of it without the mutex (entries are
 * reference counted).
 */
#ifndef PODIUM_SERVER_RCACHE_H
#define PODIUM_SERVER_RCACHE_H

#include <stddef.h>
#include <stdint.h>

#define RCACHE_TAG_MAX 128
#define RCACHE_TYPE_MAX 48
#define RCACHE_TEAM_MAX 37

struct rcache;
struct rcache_flight;

/* A response: what a put stores and what a hit copies out. */
struct rcache_body {
    char *data;                        /* a hit: malloc'd, the caller's */
    size_t len;
    char etag[RCACHE_TAG_MAX];
    char content_type[RCACHE_TYPE_MAX];
    char team_id[RCACHE_TEAM_MAX];     /* whose it is ("" for shared bytes) */
};

enum rcache_result {
    RCACHE_HIT = 0,    /* *out filled */
    RCACHE_LEAD = 1,   /* render, then rcache_put or rcache_abandon the flight */
    RCACHE_MISS = 2,   /* render without a flight (waited too long, leader failed, no memory) */
};

struct rcache_stats {
    uint64_t hits, misses, leads, waits, evictions;
    size_t bytes, entries;
    int waiting;       /* requests waiting for a leader now */
};

/* A cache of at most max_bytes; NULL on out-of-memory. */
struct rcache *rcache_new(size_t max_bytes);
/* Frees everything; no flight may be in progress. rcache_free(NULL) is a no-op. */
void rcache_free(struct rcache *c);

/* Look key up at version; see enum rcache_result. On RCACHE_LEAD *flight
 * is the caller's to finish (exactly once); otherwise it is NULL. */
enum rcache_result rcache_get(struct rcache *c, const char *key, const char *version,
                              int wait_ms, struct rcache_body *out,
                              struct rcache_flight **flight);

/* Store body (copied; body->data stays the caller's) under key at
 * version, replacing what key held, and end flight (may be NULL) handing
 * the body to its waiters. 0, or -1 when it could not be copied (flight
 * is then abandoned). */
int rcache_put(struct rcache *c, struct rcache_flight *flight, const char *key,
               const char *version, const struct rcache_body *body);

/* End flight with nothing: its waiters get RCACHE_MISS. */
void rcache_abandon(struct rcache *c, struct rcache_flight *flight);

/* Forget every entry (flights go on). */
void rcache_clear(struct rcache *c);

void rcache_stats(struct rcache *c, struct rcache_stats *out);

/* Frees a hit's data. */
void rcache_body_free(struct rcache_body *b);

#endif
