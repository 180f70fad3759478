/*
 * events.c - see events.h.
 *
 * The table is a chained hash of job ids (uuid text) with a hard cap on
 * entries; past the cap it is emptied at once and the epoch moves, which
 * costs a query per job on its next poll and nothing else. Entries are
 * created by notifications even for jobs no handler asked about yet: a
 * handler that read seq 5 from the database while notification 6 was on
 * its way then merges into an entry that already says 6 (notes and
 * notifications only ever raise seq).
 *
 * The listener thread sleeps in poll() on its connection's socket and a
 * wake pipe, for at most one tick (a quarter of the heartbeat, at most a
 * second); each tick it resumes the streams whose heartbeat or retry is
 * due. No thread spins: a stream with nothing to say is suspended.
 */
#include "server/events.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/db.h"
#include "lib/log.h"

#define N_BUCKETS 4096
#define MAX_ENTRIES 65536
#define BACKOFF_MAX_MS 2000

struct entry {
    char job_id[37];
    char team_id[37];       /* "" until a handler noted it */
    int64_t seq[EVENTS_VIEWS];
    struct entry *next;
};

/* Under mu: raise e's seqs to s's. */
static void entry_raise(struct entry *e, const int64_t *s)
{
    for (int v = 0; v < EVENTS_VIEWS; v++)
        if (s[v] > e->seq[v]) e->seq[v] = s[v];
}

struct events {
    pthread_mutex_t mu;
    struct entry *buckets[N_BUCKETS];
    size_t n_entries;
    uint64_t epoch;
    struct events_waiter *waiters;
    int closing;

    char *conninfo;
    int heartbeat_ms;
    void (*key_changed)(void *cls, const char *payload);
    void *cls;

    pthread_t thread;
    int started;
    atomic_int stop;
    int wake[2];
    PGconn *pg;             /* the listener thread's alone */
};

int64_t events_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t bucket_of(const char *job_id)
{
    /* FNV-1a over the id's text. */
    uint32_t h = 2166136261u;
    for (const char *c = job_id; *c; c++) h = (h ^ (unsigned char)*c) * 16777619u;
    return h % N_BUCKETS;
}

/* Under mu. */
static struct entry *find(struct events *ev, const char *job_id)
{
    for (struct entry *e = ev->buckets[bucket_of(job_id)]; e; e = e->next)
        if (strcmp(e->job_id, job_id) == 0) return e;
    return NULL;
}

/* Under mu. */
static void drop_all(struct events *ev)
{
    for (size_t i = 0; i < N_BUCKETS; i++) {
        struct entry *e = ev->buckets[i];
        while (e) {
            struct entry *next = e->next;
            free(e);
            e = next;
        }
        ev->buckets[i] = NULL;
    }
    ev->n_entries = 0;
    ev->epoch++;
}

/* Under mu: the entry for job_id, created empty if need be; NULL on
 * out-of-memory. */
static struct entry *find_or_add(struct events *ev, const char *job_id)
{
    struct entry *e = find(ev, job_id);
    if (e) return e;
    if (ev->n_entries >= MAX_ENTRIES) drop_all(ev);
    e = calloc(1, sizeof *e);
    if (e == NULL) return NULL;
    snprintf(e->job_id, sizeof e->job_id, "%s", job_id);
    size_t b = bucket_of(job_id);
    e->next = ev->buckets[b];
    ev->buckets[b] = e;
    ev->n_entries++;
    return e;
}

/* Under mu. */
static void remove_entry(struct events *ev, const char *job_id)
{
    struct entry **pp = &ev->buckets[bucket_of(job_id)];
    while (*pp) {
        if (strcmp((*pp)->job_id, job_id) == 0) {
            struct entry *e = *pp;
            *pp = e->next;
            free(e);
            ev->n_entries--;
            return;
        }
        pp = &(*pp)->next;
    }
}

/* A growable list of connections to resume once mu is released. */
struct resume_list {
    struct MHD_Connection **conns;
    size_t n, cap;
    struct MHD_Connection *one[16];
};

/* 0, or -1 when the list cannot grow (the waiter then stays suspended
 * and a later tick tries again). */
static int resume_add(struct resume_list *l, struct MHD_Connection *c)
{
    if (l->conns == NULL) {
        l->conns = l->one;
        l->cap = sizeof l->one / sizeof l->one[0];
    }
    if (l->n == l->cap) {
        size_t cap = l->cap * 2;
        struct MHD_Connection **more = malloc(cap * sizeof *more);
        if (more == NULL) return -1;
        memcpy(more, l->conns, l->n * sizeof *more);
        if (l->conns != l->one) free(l->conns);
        l->conns = more;
        l->cap = cap;
    }
    l->conns[l->n++] = c;
    return 0;
}

static void resume_run(struct resume_list *l)
{
    for (size_t i = 0; i < l->n; i++) MHD_resume_connection(l->conns[i]);
    if (l->conns != l->one) free(l->conns);
    memset(l, 0, sizeof *l);
}

/* Under mu: wake the suspended waiters that have something to do. */
static void collect_due(struct events *ev, int64_t now, const char *only_job,
                        struct resume_list *l)
{
    for (struct events_waiter *w = ev->waiters; w; w = w->next) {
        if (!w->suspended) continue;
        if (only_job && strcmp(w->job_id, only_job) != 0) continue;
        int due = ev->closing || (now > 0 && w->wake_at_ms <= now);
        if (!due) {
            struct entry *e = find(ev, w->job_id);
            due = e && e->seq[EVENTS_ALL] > w->seen;
        }
        if (due && resume_add(l, w->conn) == 0) w->suspended = 0;
    }
}

/* --- the listener ----------------------------------------------------------- */

static int listen_on(PGconn *pg, char *err, size_t errlen)
{
    PGresult *res = PQexec(pg, "LISTEN podium_events; LISTEN podium_keys");
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok) db_error(pg, err, errlen);
    return ok ? 0 : -1;
}

/* After a reconnection: the current seq of every job in the table; jobs
 * that are gone are dropped. */
static void resync(struct events *ev)
{
    pthread_mutex_lock(&ev->mu);
    size_t n = ev->n_entries;
    char *ids = malloc(n * 38 + 3);
    if (ids == NULL) {
        drop_all(ev);
        pthread_mutex_unlock(&ev->mu);
        return;
    }
    size_t len = 0;
    ids[len++] = '{';
    for (size_t b = 0; b < N_BUCKETS; b++)
        for (struct entry *e = ev->buckets[b]; e; e = e->next) {
            if (len > 1) ids[len++] = ',';
            memcpy(ids + len, e->job_id, 36);
            len += 36;
        }
    ids[len++] = '}';
    ids[len] = '\0';
    uint64_t epoch = ev->epoch;
    pthread_mutex_unlock(&ev->mu);
    if (n == 0) {
        free(ids);
        return;
    }

    const char *p[1] = {ids};
    PGresult *res = PQexecParams(ev->pg,
        "SELECT i.id::text, h.seq, h.job_seq, h.board_seq FROM unnest($1::uuid[]) AS i (id)"
        " LEFT JOIN job_event_heads h ON h.job_id = i.id",
        1, NULL, p, NULL, NULL, 0);
    free(ids);
    pthread_mutex_lock(&ev->mu);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        /* Whatever the table says may be stale: forget it. */
        drop_all(ev);
    } else if (ev->epoch == epoch) {
        for (int i = 0; i < PQntuples(res); i++) {
            const char *id = PQgetvalue(res, i, 0);
            if (PQgetisnull(res, i, 1)) {
                remove_entry(ev, id);
                continue;
            }
            struct entry *e = find(ev, id);
            int64_t seq[EVENTS_VIEWS];
            for (int v = 0; v < EVENTS_VIEWS; v++)
                seq[v] = strtoll(PQgetvalue(res, i, 1 + v), NULL, 10);
            if (e) entry_raise(e, seq);
        }
    }
    struct resume_list l = {0};
    collect_due(ev, 0, NULL, &l);
    pthread_mutex_unlock(&ev->mu);
    PQclear(res);
    resume_run(&l);
}

static void on_notify(struct events *ev, const PGnotify *n, struct resume_list *l)
{
    if (strcmp(n->relname, "podium_keys") == 0) {
        if (ev->key_changed) ev->key_changed(ev->cls, n->extra);
        return;
    }
    if (strcmp(n->relname, "podium_events") != 0) return;
    char id[37];
    const char *sp = strchr(n->extra, ' ');
    if (sp == NULL || sp - n->extra != 36) return;
    memcpy(id, n->extra, 36);
    id[36] = '\0';
    pthread_mutex_lock(&ev->mu);
    if (strcmp(sp + 1, "deleted") == 0) {
        remove_entry(ev, id);
    } else {
        /* "<seq> <job_seq> <board_seq>"; a lone seq moves every view. */
        int64_t seq[EVENTS_VIEWS];
        const char *p = sp + 1;
        int got = 0;
        char *end;
        for (; got < EVENTS_VIEWS; got++) {
            seq[got] = strtoll(p, &end, 10);
            if (end == p || seq[got] < 0) break;
            p = end;
            if (*p == ' ') p++;
        }
        if (got == 1) seq[EVENTS_JOB] = seq[EVENTS_BOARD] = seq[EVENTS_ALL];
        struct entry *e = (got == 1 || got == EVENTS_VIEWS) && *end == '\0' && seq[0] > 0
                              ? find_or_add(ev, id) : NULL;
        if (e) entry_raise(e, seq);
    }
    collect_due(ev, 0, id, l);
    pthread_mutex_unlock(&ev->mu);
}

static void disconnect(struct events *ev, const char *why)
{
    log_msg(LOG_WARN, "events: lost the listener connection (%s); reconnecting", why);
    PQfinish(ev->pg);
    ev->pg = NULL;
}

static void *listener_main(void *arg)
{
    struct events *ev = arg;
    int64_t next_try = 0;
    int backoff = 0, warned = 0;
    int tick = ev->heartbeat_ms / 4;
    if (tick < 20) tick = 20;
    if (tick > 1000) tick = 1000;

    while (!atomic_load(&ev->stop)) {
        int64_t now = events_now_ms();
        if (ev->pg == NULL && now >= next_try) {
            char err[512];
            ev->pg = db_connect(ev->conninfo, "podium-server events", 2, err, sizeof err);
            if (ev->pg && listen_on(ev->pg, err, sizeof err) < 0) {
                PQfinish(ev->pg);
                ev->pg = NULL;
            }
            if (ev->pg == NULL) {
                if (!warned++) log_msg(LOG_WARN, "events: cannot listen yet: %s", err);
                backoff = backoff ? backoff * 2 : 100;
                if (backoff > BACKOFF_MAX_MS) backoff = BACKOFF_MAX_MS;
                next_try = now + backoff;
            } else {
                if (warned) log_msg(LOG_INFO, "events: listening again");
                backoff = 0;
                warned = 0;
                PQsetnonblocking(ev->pg, 1);
                /* Keys may have been revoked while we were away. */
                if (ev->key_changed) ev->key_changed(ev->cls, "*");
                resync(ev);
            }
        }

        struct pollfd fds[2] = {{.fd = ev->wake[0], .events = POLLIN}};
        nfds_t nfds = 1;
        int timeout = tick;
        if (ev->pg) {
            fds[1].fd = PQsocket(ev->pg);
            fds[1].events = POLLIN;
            nfds = 2;
        } else if (next_try - now < timeout) {
            timeout = next_try - now > 0 ? (int)(next_try - now) : 0;
        }
        int rc = poll(fds, nfds, timeout);
        if (rc < 0 && errno != EINTR) {
            log_msg(LOG_ERROR, "events: poll: %s", strerror(errno));
            usleep(100 * 1000);
        }
        if (fds[0].revents) {
            char buf[64];
            while (read(ev->wake[0], buf, sizeof buf) > 0) {}
        }
        if (ev->pg && nfds == 2 && fds[1].revents) {
            if (!PQconsumeInput(ev->pg)) {
                char err[256];
                db_error(ev->pg, err, sizeof err);
                disconnect(ev, err);
                next_try = events_now_ms();
            } else {
                struct resume_list l = {0};
                PGnotify *n;
                while ((n = PQnotifies(ev->pg)) != NULL) {
                    on_notify(ev, n, &l);
                    PQfreemem(n);
                }
                resume_run(&l);
            }
        }

        struct resume_list l = {0};
        pthread_mutex_lock(&ev->mu);
        collect_due(ev, events_now_ms(), NULL, &l);
        pthread_mutex_unlock(&ev->mu);
        resume_run(&l);
    }
    return NULL;
}

/* --- the API ------------------------------------------------------------------- */

struct events *events_new(const char *conninfo, int heartbeat_ms,
                          void (*key_changed)(void *cls, const char *payload), void *cls,
                          char *err, size_t errlen)
{
    struct events *ev = calloc(1, sizeof *ev);
    if (ev == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ev->wake[0] = ev->wake[1] = -1;
    ev->conninfo = strdup(conninfo ? conninfo : "");
    ev->heartbeat_ms = heartbeat_ms > 0 ? heartbeat_ms : 15000;
    ev->key_changed = key_changed;
    ev->cls = cls;
    pthread_mutex_init(&ev->mu, NULL);
    if (ev->conninfo == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (pipe2(ev->wake, O_NONBLOCK | O_CLOEXEC) < 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        goto fail;
    }
    if (pthread_create(&ev->thread, NULL, listener_main, ev) != 0) {
        snprintf(err, errlen, "cannot start the events thread");
        goto fail;
    }
    ev->started = 1;
    return ev;
fail:
    events_free(ev);
    return NULL;
}

void events_free(struct events *ev)
{
    if (ev == NULL) return;
    if (ev->started) {
        atomic_store(&ev->stop, 1);
        if (write(ev->wake[1], "x", 1) < 0) { /* the tick ends the wait anyway */ }
        pthread_join(ev->thread, NULL);
    }
    if (ev->pg) PQfinish(ev->pg);
    if (ev->wake[0] >= 0) close(ev->wake[0]);
    if (ev->wake[1] >= 0) close(ev->wake[1]);
    drop_all(ev);
    pthread_mutex_destroy(&ev->mu);
    free(ev->conninfo);
    free(ev);
}

int events_peek(struct events *ev, const char *job_id, struct events_job *out)
{
    int found = 0;
    pthread_mutex_lock(&ev->mu);
    struct entry *e = find(ev, job_id);
    if (e && e->team_id[0]) {
        memcpy(out->team_id, e->team_id, sizeof out->team_id);
        memcpy(out->seq, e->seq, sizeof out->seq);
        found = 1;
    }
    pthread_mutex_unlock(&ev->mu);
    return found;
}

uint64_t events_epoch(struct events *ev)
{
    pthread_mutex_lock(&ev->mu);
    uint64_t e = ev->epoch;
    pthread_mutex_unlock(&ev->mu);
    return e;
}

void events_note(struct events *ev, const char *job_id, const struct events_job *known,
                 uint64_t epoch)
{
    pthread_mutex_lock(&ev->mu);
    if (epoch == ev->epoch) {
        struct entry *e = find_or_add(ev, job_id);
        if (e) {
            snprintf(e->team_id, sizeof e->team_id, "%s", known->team_id);
            entry_raise(e, known->seq);
        }
    }
    pthread_mutex_unlock(&ev->mu);
}

int64_t events_seq(struct events *ev, const char *job_id)
{
    pthread_mutex_lock(&ev->mu);
    struct entry *e = find(ev, job_id);
    int64_t seq = e ? e->seq[EVENTS_ALL] : 0;
    pthread_mutex_unlock(&ev->mu);
    return seq;
}

void events_watch(struct events *ev, struct events_waiter *w)
{
    pthread_mutex_lock(&ev->mu);
    w->suspended = 0;
    w->prev = NULL;
    w->next = ev->waiters;
    if (ev->waiters) ev->waiters->prev = w;
    ev->waiters = w;
    pthread_mutex_unlock(&ev->mu);
}

void events_unwatch(struct events *ev, struct events_waiter *w)
{
    pthread_mutex_lock(&ev->mu);
    if (w->prev) w->prev->next = w->next;
    else if (ev->waiters == w) ev->waiters = w->next;
    if (w->next) w->next->prev = w->prev;
    w->prev = w->next = NULL;
    pthread_mutex_unlock(&ev->mu);
}

int events_suspend(struct events *ev, struct events_waiter *w, int64_t wake_at_ms)
{
    pthread_mutex_lock(&ev->mu);
    struct entry *e = find(ev, w->job_id);
    if (ev->closing || (e && e->seq[EVENTS_ALL] > w->seen)) {
        pthread_mutex_unlock(&ev->mu);
        return 0;
    }
    w->wake_at_ms = wake_at_ms;
    w->suspended = 1;
    /* Under mu, so that the listener (which resumes only waiters it finds
     * suspended, after taking mu) never resumes before this suspend. */
    MHD_suspend_connection(w->conn);
    pthread_mutex_unlock(&ev->mu);
    return 1;
}

int events_closing(struct events *ev)
{
    pthread_mutex_lock(&ev->mu);
    int c = ev->closing;
    pthread_mutex_unlock(&ev->mu);
    return c;
}

void events_close_streams(struct events *ev)
{
    struct resume_list l = {0};
    pthread_mutex_lock(&ev->mu);
    ev->closing = 1;
    collect_due(ev, 0, NULL, &l);
    pthread_mutex_unlock(&ev->mu);
    resume_run(&l);
}

int events_heartbeat_ms(struct events *ev)
{
    return ev->heartbeat_ms;
}
