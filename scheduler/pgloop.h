/*
 * pgloop.h - one asynchronous PostgreSQL connection on a libuv loop.
 *
 * libpq runs in non-blocking mode and its socket is watched with uv_poll,
 * so nothing here ever blocks the loop. Queries go through a FIFO queue and
 * run one at a time; a callback gets each result. A multi-statement
 * transaction is a chain: each step's callback queues the next step with
 * PGQ_FRONT, so nothing else runs on the connection in between (the
 * connection is serial, so a transaction holds it until COMMIT/ROLLBACK).
 *
 * The connection LISTENs on a channel and reports notifications. When it
 * drops (PostgreSQL restarts), it reconnects with backoff (0.25 s doubling
 * to 5 s) and carries on: queued queries wait and run afterwards; the one
 * in flight gets res == NULL ("lost, may or may not have run"), unless it
 * was queued with PGQ_RETRY (idempotent statements), then it is sent again.
 *
 * Runs on the loop's thread only.
 */
#ifndef PODIUM_SCHEDULER_PGLOOP_H
#define PODIUM_SCHEDULER_PGLOOP_H

#include <stddef.h>

#include <libpq-fe.h>
#include <uv.h>

struct pgloop;

enum { PGQ_FRONT = 1, PGQ_RETRY = 2 };

/* res: the query's result (freed by pgloop after the call; check
 * PQresultStatus), or NULL when the connection was lost or closed. */
typedef void (*pgloop_cb)(void *ctx, PGresult *res);

struct pgloop_events {
    void (*on_notify)(void *ctx, const char *channel, const char *payload);
    void (*on_connect)(void *ctx);       /* after every (re)connection */
    void (*on_disconnect)(void *ctx);
    void *ctx;
};

struct pgloop *pgloop_new(uv_loop_t *loop, const char *conninfo, const char *app_name,
                          const char *listen_channel, const struct pgloop_events *ev);
/* Queue sql with n text params (copied; a NULL value is SQL NULL). 0 or -1
 * (out of memory, or closing). cb may be NULL. */
int pgloop_query(struct pgloop *pl, const char *sql, int n, const char *const *values,
                 int flags, pgloop_cb cb, void *ctx);
int pgloop_connected(const struct pgloop *pl);
/* Nothing queued and nothing in flight. */
int pgloop_idle(const struct pgloop *pl);
/* Fail every pending query (cb with NULL), disconnect, free when the
 * handles are closed (the loop must run once more). */
void pgloop_close(struct pgloop *pl);

/* 1 if res is a successful command or tuples result. */
int pgloop_ok(const PGresult *res);

#endif
