/*
 * pool.c - see pool.h. A mutex and a condition variable guard the free
 * list; connecting happens outside the lock so one slow connect does not
 * stall the other workers.
 */
#include "server/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/db.h"

struct pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *conninfo;
    size_t size;
    PGconn **conns;     /* NULL until connected */
    unsigned char *busy;
};

struct pool *pool_new(const char *conninfo, int size)
{
    struct pool *p = calloc(1, sizeof *p);
    if (p == NULL) return NULL;
    p->size = size > 0 ? (size_t)size : 1;
    p->conninfo = strdup(conninfo ? conninfo : "");
    p->conns = calloc(p->size, sizeof *p->conns);
    p->busy = calloc(p->size, 1);
    if (p->conninfo == NULL || p->conns == NULL || p->busy == NULL) goto fail;
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &attr);
    pthread_condattr_destroy(&attr);
    return p;
fail:
    free(p->busy);
    free(p->conns);
    free(p->conninfo);
    free(p);
    return NULL;
}

void pool_free(struct pool *p)
{
    if (p == NULL) return;
    for (size_t i = 0; i < p->size; i++)
        if (p->conns[i]) PQfinish(p->conns[i]);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->busy);
    free(p->conns);
    free(p->conninfo);
    free(p);
}

/* A connection that PostgreSQL closed while it sat idle (a restart, an
 * admin's pg_terminate_backend) has a readable socket carrying the goodbye;
 * consuming it moves libpq's status to CONNECTION_BAD. */
static int looks_alive(PGconn *pg)
{
    if (PQstatus(pg) != CONNECTION_OK) return 0;
    if (!PQconsumeInput(pg)) return 0;
    return PQstatus(pg) == CONNECTION_OK && PQtransactionStatus(pg) == PQTRANS_IDLE;
}

int pool_acquire(struct pool *p, int wait_ms, struct pool_conn *c,
                 char *err, size_t errlen)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += wait_ms / 1000;
    deadline.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }

    pthread_mutex_lock(&p->mu);
    size_t slot;
    for (;;) {
        /* Prefer a slot that already has a connection. */
        size_t empty = p->size;
        for (slot = 0; slot < p->size; slot++) {
            if (p->busy[slot]) continue;
            if (p->conns[slot]) break;
            if (empty == p->size) empty = slot;
        }
        if (slot == p->size) slot = empty;
        if (slot < p->size) break;
        if (pthread_cond_timedwait(&p->cv, &p->mu, &deadline) == ETIMEDOUT) {
            pthread_mutex_unlock(&p->mu);
            snprintf(err, errlen, "all %zu database connections are busy", p->size);
            return -1;
        }
    }
    p->busy[slot] = 1;
    PGconn *pg = p->conns[slot];
    p->conns[slot] = NULL;
    pthread_mutex_unlock(&p->mu);

    if (pg != NULL && !looks_alive(pg)) {
        PQfinish(pg);
        pg = NULL;
    }
    if (pg == NULL) pg = db_connect(p->conninfo, "podium-server", 3, err, errlen);
    c->pool = p;
    c->slot = slot;
    c->pg = pg;
    if (pg == NULL) {
        pool_release(c);
        return -1;
    }
    return 0;
}

void pool_release(struct pool_conn *c)
{
    struct pool *p = c->pool;
    if (p == NULL) return;
    PGconn *pg = c->pg;
    if (pg != NULL && (PQstatus(pg) != CONNECTION_OK ||
                       PQtransactionStatus(pg) != PQTRANS_IDLE)) {
        PQfinish(pg);
        pg = NULL;
    }
    pthread_mutex_lock(&p->mu);
    p->conns[c->slot] = pg;
    p->busy[c->slot] = 0;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    c->pool = NULL;
    c->pg = NULL;
}

PGresult *pool_exec(struct pool_conn *c, const char *sql, int nparams,
                    const char *const *params)
{
    return PQexecParams(c->pg, sql, nparams, NULL, params, NULL, NULL, 0);
}

int pool_conn_lost(const struct pool_conn *c)
{
    return c->pg == NULL || PQstatus(c->pg) == CONNECTION_BAD;
}
