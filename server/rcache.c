/*
 * rcache.c - see rcache.h.
 *
 * A chained hash of keys (one entry per key: a new version replaces the
 * old) threaded on an LRU list, and a short list of open flights (one per
 * key and version being rendered; there are at most as many as worker
 * threads, so a list is enough). Waiters sleep on one condition variable
 * that every finished flight broadcasts: a flight ends a few times a
 * second at most, and each waiter just looks at its own flight again.
 *
 * An entry is one allocation (the struct, its key and version, its body)
 * with a reference count: the table holds one while the entry is stored, a
 * finished flight holds one for its waiters, and a reader holds one while
 * it copies the body out without the mutex. Whoever drops the last frees.
 */
#include "server/rcache.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_BUCKETS 1024

struct entry {
    const char *key, *version;     /* inside the allocation */
    char *data;                    /* inside the allocation */
    size_t len, cost;
    char etag[RCACHE_TAG_MAX];
    char content_type[RCACHE_TYPE_MAX];
    char team_id[RCACHE_TEAM_MAX];
    int refs;
    int stored;
    struct entry *hnext;           /* hash chain */
    struct entry *prev, *next;     /* LRU: head is the most recent */
};

struct rcache_flight {
    char *key, *version;           /* inside the allocation */
    int done;
    struct entry *result;          /* a reference, once done (NULL: abandoned) */
    int refs;                      /* the leader's until done, one per waiter */
    struct rcache_flight *next;    /* open flights */
};

struct rcache {
    pthread_mutex_t mu;
    pthread_cond_t finished;
    struct entry *buckets[N_BUCKETS];
    struct entry *head, *tail;
    struct rcache_flight *flights;
    size_t max_bytes, bytes, entries;
    uint64_t hits, misses, leads, waits, evictions;
    int waiting;
};

static size_t bucket_of(const char *key)
{
    uint32_t h = 2166136261u;   /* FNV-1a */
    for (const char *p = key; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
    return h % N_BUCKETS;
}

struct rcache *rcache_new(size_t max_bytes)
{
    struct rcache *c = calloc(1, sizeof *c);
    if (c == NULL) return NULL;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->finished, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&c->mu, NULL);
    c->max_bytes = max_bytes;
    return c;
}

/* Under mu (or alone). */
static void entry_unref(struct entry *e)
{
    if (e && --e->refs == 0) free(e);
}

/* Under mu: take e out of the table (the table's reference goes). */
static void unlink_entry(struct rcache *c, struct entry *e)
{
    struct entry **pp = &c->buckets[bucket_of(e->key)];
    while (*pp && *pp != e) pp = &(*pp)->hnext;
    if (*pp) *pp = e->hnext;
    if (e->prev) e->prev->next = e->next;
    else c->head = e->next;
    if (e->next) e->next->prev = e->prev;
    else c->tail = e->prev;
    e->prev = e->next = e->hnext = NULL;
    e->stored = 0;
    c->bytes -= e->cost;
    c->entries--;
    entry_unref(e);
}

/* Under mu. */
static struct entry *find(struct rcache *c, const char *key)
{
    for (struct entry *e = c->buckets[bucket_of(key)]; e; e = e->hnext)
        if (strcmp(e->key, key) == 0) return e;
    return NULL;
}

/* Under mu: e becomes the most recently used. */
static void touch(struct rcache *c, struct entry *e)
{
    if (c->head == e) return;
    e->prev->next = e->next;
    if (e->next) e->next->prev = e->prev;
    else c->tail = e->prev;
    e->prev = NULL;
    e->next = c->head;
    c->head->prev = e;
    c->head = e;
}

void rcache_clear(struct rcache *c)
{
    pthread_mutex_lock(&c->mu);
    while (c->tail) unlink_entry(c, c->tail);
    pthread_mutex_unlock(&c->mu);
}

void rcache_free(struct rcache *c)
{
    if (c == NULL) return;
    rcache_clear(c);
    pthread_cond_destroy(&c->finished);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* Under mu. */
static void flight_unref(struct rcache_flight *f)
{
    if (--f->refs > 0) return;
    entry_unref(f->result);
    free(f);
}

/* Under mu: f is over (result: a new reference, or NULL); wake its waiters. */
static void flight_end(struct rcache *c, struct rcache_flight *f, struct entry *result)
{
    struct rcache_flight **pp = &c->flights;
    while (*pp && *pp != f) pp = &(*pp)->next;
    if (*pp) *pp = f->next;
    f->done = 1;
    f->result = result;
    if (result) result->refs++;
    pthread_cond_broadcast(&c->finished);
    flight_unref(f);   /* the leader's */
}

/* Copy e's body into out (e referenced by the caller; no mutex needed:
 * an entry never changes once made). 0, or -1 out of memory. */
static int copy_out(const struct entry *e, struct rcache_body *out)
{
    out->data = malloc(e->len ? e->len : 1);
    if (out->data == NULL) return -1;
    memcpy(out->data, e->data, e->len);
    out->len = e->len;
    memcpy(out->etag, e->etag, sizeof out->etag);
    memcpy(out->content_type, e->content_type, sizeof out->content_type);
    memcpy(out->team_id, e->team_id, sizeof out->team_id);
    return 0;
}

/* Under mu, with a reference to e taken by the caller: copy it out with
 * the mutex released, then drop the reference. */
static enum rcache_result hand_out(struct rcache *c, struct entry *e, struct rcache_body *out)
{
    pthread_mutex_unlock(&c->mu);
    int rc = copy_out(e, out);
    pthread_mutex_lock(&c->mu);
    entry_unref(e);
    if (rc < 0) {
        c->misses++;
        return RCACHE_MISS;
    }
    c->hits++;
    return RCACHE_HIT;
}

static struct timespec deadline_in(int ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

enum rcache_result rcache_get(struct rcache *c, const char *key, const char *version,
                              int wait_ms, struct rcache_body *out,
                              struct rcache_flight **flight)
{
    *flight = NULL;
    memset(out, 0, sizeof *out);
    enum rcache_result res;
    pthread_mutex_lock(&c->mu);
    struct entry *e = find(c, key);
    if (e && strcmp(e->version, version) == 0) {
        touch(c, e);
        e->refs++;
        res = hand_out(c, e, out);
        pthread_mutex_unlock(&c->mu);
        return res;
    }
    struct rcache_flight *f = c->flights;
    while (f && (strcmp(f->key, key) != 0 || strcmp(f->version, version) != 0)) f = f->next;
    if (f == NULL) {
        size_t kl = strlen(key) + 1, vl = strlen(version) + 1;
        f = calloc(1, sizeof *f + kl + vl);
        if (f == NULL) {
            c->misses++;
            pthread_mutex_unlock(&c->mu);
            return RCACHE_MISS;
        }
        f->key = (char *)(f + 1);
        f->version = f->key + kl;
        memcpy(f->key, key, kl);
        memcpy(f->version, version, vl);
        f->refs = 1;
        f->next = c->flights;
        c->flights = f;
        c->leads++;
        *flight = f;
        pthread_mutex_unlock(&c->mu);
        return RCACHE_LEAD;
    }
    /* Someone renders it: wait for their bytes. */
    f->refs++;
    c->waits++;
    c->waiting++;
    struct timespec until = deadline_in(wait_ms > 0 ? wait_ms : 0);
    while (!f->done)
        if (pthread_cond_timedwait(&c->finished, &c->mu, &until) == ETIMEDOUT) break;
    c->waiting--;
    struct entry *got = f->done ? f->result : NULL;
    if (got) got->refs++;
    flight_unref(f);
    if (got) {
        res = hand_out(c, got, out);
    } else {
        c->misses++;
        res = RCACHE_MISS;
    }
    pthread_mutex_unlock(&c->mu);
    return res;
}

int rcache_put(struct rcache *c, struct rcache_flight *flight, const char *key,
               const char *version, const struct rcache_body *body)
{
    size_t kl = strlen(key) + 1, vl = strlen(version) + 1;
    size_t cost = sizeof(struct entry) + kl + vl + body->len;
    struct entry *e = calloc(1, cost);
    if (e == NULL) {
        if (flight) rcache_abandon(c, flight);
        return -1;
    }
    char *p = (char *)(e + 1);
    memcpy(p, key, kl);
    e->key = p;
    memcpy(p + kl, version, vl);
    e->version = p + kl;
    e->data = p + kl + vl;
    if (body->len) memcpy(e->data, body->data, body->len);
    e->len = body->len;
    e->cost = cost;
    snprintf(e->etag, sizeof e->etag, "%s", body->etag);
    snprintf(e->content_type, sizeof e->content_type, "%s", body->content_type);
    snprintf(e->team_id, sizeof e->team_id, "%s", body->team_id);

    pthread_mutex_lock(&c->mu);
    struct entry *old = find(c, key);
    if (old) unlink_entry(c, old);
    if (cost <= c->max_bytes / 8) {
        e->refs = 1;
        e->stored = 1;
        size_t b = bucket_of(key);
        e->hnext = c->buckets[b];
        c->buckets[b] = e;
        e->next = c->head;
        if (c->head) c->head->prev = e;
        c->head = e;
        if (c->tail == NULL) c->tail = e;
        c->bytes += cost;
        c->entries++;
        while (c->bytes > c->max_bytes && c->tail && c->tail != e) {
            unlink_entry(c, c->tail);
            c->evictions++;
        }
    }
    e->refs++;   /* ours, until the flight has its own */
    if (flight) flight_end(c, flight, e);
    entry_unref(e);
    pthread_mutex_unlock(&c->mu);
    return 0;
}

void rcache_abandon(struct rcache *c, struct rcache_flight *flight)
{
    if (flight == NULL) return;
    pthread_mutex_lock(&c->mu);
    flight_end(c, flight, NULL);
    pthread_mutex_unlock(&c->mu);
}

void rcache_stats(struct rcache *c, struct rcache_stats *out)
{
    pthread_mutex_lock(&c->mu);
    out->hits = c->hits;
    out->misses = c->misses;
    out->leads = c->leads;
    out->waits = c->waits;
    out->evictions = c->evictions;
    out->bytes = c->bytes;
    out->entries = c->entries;
    out->waiting = c->waiting;
    pthread_mutex_unlock(&c->mu);
}

void rcache_body_free(struct rcache_body *b)
{
    if (b == NULL) return;
    free(b->data);
    b->data = NULL;
    b->len = 0;
}
