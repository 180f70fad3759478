/*
 * workdb.c - the thread pool's blocking connections (workdb.h).
 */
#include "scheduler/workdb.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lib/db.h"

#define POOL_MAX 8

struct workdb {
    pthread_mutex_t mu;
    char *conninfo;
    PGconn *idle[POOL_MAX];
    int n_idle;
};

struct workdb *workdb_new(const char *conninfo)
{
    struct workdb *w = calloc(1, sizeof *w);
    if (w == NULL) return NULL;
    w->conninfo = strdup(conninfo ? conninfo : "");
    if (w->conninfo == NULL) {
        free(w);
        return NULL;
    }
    pthread_mutex_init(&w->mu, NULL);
    return w;
}

PGconn *workdb_get(struct workdb *w, char *err, size_t errlen)
{
    PGconn *c = NULL;
    pthread_mutex_lock(&w->mu);
    if (w->n_idle > 0) c = w->idle[--w->n_idle];
    pthread_mutex_unlock(&w->mu);
    if (c != NULL && PQstatus(c) == CONNECTION_OK) return c;
    if (c != NULL) PQfinish(c);
    return db_connect(w->conninfo, "podium-scheduler-worker", 5, err, errlen);
}

void workdb_put(struct workdb *w, PGconn *conn, int ok)
{
    if (conn == NULL) return;
    if (ok && PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) == PQTRANS_IDLE) {
        pthread_mutex_lock(&w->mu);
        if (w->n_idle < POOL_MAX) {
            w->idle[w->n_idle++] = conn;
            conn = NULL;
        }
        pthread_mutex_unlock(&w->mu);
    }
    if (conn) PQfinish(conn);
}

void workdb_free(struct workdb *w)
{
    if (w == NULL) return;
    for (int i = 0; i < w->n_idle; i++) PQfinish(w->idle[i]);
    pthread_mutex_destroy(&w->mu);
    free(w->conninfo);
    free(w);
}
