/*
 * pool.h - a fixed-size pool of PostgreSQL connections for the HTTP workers.
 *
 * Connections are opened lazily and replaced when they break, so the server
 * rides out a PostgreSQL restart: while the database is down, pool_acquire
 * and queries fail (the handler answers 503); once it is back, the next
 * acquire reconnects. An idle connection is checked before it is handed
 * out (PostgreSQL tells its clients when it shuts down), so the first request
 * after a restart does not fail on a stale socket. Statements are never
 * retried: a write may have committed before the connection broke.
 *
 * Thread-safe: any HTTP worker may acquire; each connection is used by one
 * thread at a time.
 */
#ifndef PODIUM_SERVER_POOL_H
#define PODIUM_SERVER_POOL_H

#include <stddef.h>

#include <libpq-fe.h>

struct pool;

struct pool_conn {
    struct pool *pool;
    size_t slot;
    PGconn *pg;
};

/* A pool of `size` connections to conninfo. NULL on out-of-memory. */
struct pool *pool_new(const char *conninfo, int size);
void pool_free(struct pool *p);

/* Take a connection, waiting at most wait_ms for a free one. Returns 0, or
 * -1 with a reason in err (database unreachable, pool exhausted). */
int pool_acquire(struct pool *p, int wait_ms, struct pool_conn *c,
                 char *err, size_t errlen);
/* Give it back. A connection left in a transaction or broken is closed. */
void pool_release(struct pool_conn *c);

/* PQexecParams with text parameters and results. The caller PQclears. */
PGresult *pool_exec(struct pool_conn *c, const char *sql, int nparams,
                    const char *const *params);

/* 1 when the last failure on c was the connection itself (answer 503),
 * not the statement (a bug or a constraint: answer by the SQLSTATE). */
int pool_conn_lost(const struct pool_conn *c);

#endif
