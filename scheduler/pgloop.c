/*
 * pgloop.c - the asynchronous PostgreSQL connection (pgloop.h). Loop thread.
 *
 * States: DOWN (waiting for the backoff timer), CONNECTING (PQconnectPoll
 * driven by the socket), READY. The socket changes with every connection,
 * so each connection gets a uv_poll_t of its own, freed in its close
 * callback.
 */
#include "scheduler/pgloop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"

enum { DOWN, CONNECTING, READY };

struct op {
    struct op *next;
    char *sql;
    int n;
    char **values;
    int flags;
    pgloop_cb cb;
    void *ctx;
};

struct pgloop {
    uv_loop_t *loop;
    char *conninfo;
    char app_name[64];
    char channel[64];
    struct pgloop_events ev;
    PGconn *conn;
    uv_poll_t *poll;
    int poll_fd;
    uv_timer_t timer;         /* reconnect backoff and connect timeout */
    int state;
    int closing;
    unsigned backoff_ms;
    struct op *head, *tail;
    struct op *inflight;
    PGresult *last;           /* the in-flight query's result so far */
};

static void pump(struct pgloop *pl);
static void start_connect(struct pgloop *pl);

int pgloop_ok(const PGresult *res)
{
    if (res == NULL) return 0;
    ExecStatusType st = PQresultStatus(res);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

static void op_free(struct op *o)
{
    if (o == NULL) return;
    for (int i = 0; i < o->n; i++) free(o->values[i]);
    free(o->values);
    free(o->sql);
    free(o);
}

static void on_poll_closed(uv_handle_t *h) { free(h); }

static void drop_poll(struct pgloop *pl)
{
    if (pl->poll) {
        uv_poll_stop(pl->poll);
        uv_close((uv_handle_t *)pl->poll, on_poll_closed);
        pl->poll = NULL;
    }
    pl->poll_fd = -1;
}

static void on_poll(uv_poll_t *h, int status, int events);

static int watch(struct pgloop *pl, int events)
{
    int fd = PQsocket(pl->conn);
    if (fd < 0) return -1;
    if (pl->poll && pl->poll_fd != fd) drop_poll(pl);
    if (pl->poll == NULL) {
        pl->poll = malloc(sizeof *pl->poll);
        if (pl->poll == NULL) return -1;
        if (uv_poll_init_socket(pl->loop, pl->poll, fd) != 0) {
            free(pl->poll);
            pl->poll = NULL;
            return -1;
        }
        pl->poll->data = pl;
        pl->poll_fd = fd;
    }
    return uv_poll_start(pl->poll, events, on_poll) == 0 ? 0 : -1;
}

static void on_timer(uv_timer_t *t)
{
    struct pgloop *pl = t->data;
    if (pl->closing) return;
    if (pl->state == CONNECTING) {
        log_msg(LOG_WARN, "database: connection attempt timed out");
        drop_poll(pl);
        PQfinish(pl->conn);
        pl->conn = NULL;
        pl->state = DOWN;
    }
    if (pl->state == DOWN) start_connect(pl);
}

/* The connection is gone: settle the in-flight query and retry later. */
static void lost(struct pgloop *pl, const char *why)
{
    int was_ready = pl->state == READY;
    if (!pl->closing) log_msg(LOG_WARN, "database connection lost: %s", why);
    drop_poll(pl);
    if (pl->conn) PQfinish(pl->conn);
    pl->conn = NULL;
    pl->state = DOWN;
    PQclear(pl->last);
    pl->last = NULL;
    struct op *o = pl->inflight;
    pl->inflight = NULL;
    if (o) {
        if ((o->flags & PGQ_RETRY) && !pl->closing) {
            o->next = pl->head;
            pl->head = o;
            if (pl->tail == NULL) pl->tail = o;
        } else {
            if (o->cb) o->cb(o->ctx, NULL);
            op_free(o);
        }
    }
    if (was_ready && pl->ev.on_disconnect) pl->ev.on_disconnect(pl->ev.ctx);
    if (!pl->closing) {
        uv_timer_start(&pl->timer, on_timer, pl->backoff_ms, 0);
        pl->backoff_ms = pl->backoff_ms < 2500 ? pl->backoff_ms * 2 : 5000;
    }
}

static void connect_step(struct pgloop *pl)
{
    PostgresPollingStatusType st = PQconnectPoll(pl->conn);
    if (st == PGRES_POLLING_FAILED) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(pl->conn));
        msg[strcspn(msg, "\n")] = '\0';
        lost(pl, msg);
        return;
    }
    if (st == PGRES_POLLING_OK) {
        uv_timer_stop(&pl->timer);
        PQsetnonblocking(pl->conn, 1);
        pl->state = READY;
        pl->backoff_ms = 250;
        log_msg(LOG_INFO, "database connected");
        if (pl->channel[0]) {
            char sql[128];
            snprintf(sql, sizeof sql, "LISTEN %s", pl->channel);
            pgloop_query(pl, sql, 0, NULL, PGQ_FRONT, NULL, NULL);
        }
        if (watch(pl, UV_READABLE) < 0) {
            lost(pl, "cannot watch the socket");
            return;
        }
        if (pl->ev.on_connect) pl->ev.on_connect(pl->ev.ctx);
        pump(pl);
        return;
    }
    if (watch(pl, st == PGRES_POLLING_READING ? UV_READABLE : UV_WRITABLE) < 0)
        lost(pl, "cannot watch the socket");
}

static void start_connect(struct pgloop *pl)
{
    const char *keys[] = {"dbname", "application_name", NULL};
    const char *vals[] = {pl->conninfo, pl->app_name, NULL};
    pl->conn = PQconnectStartParams(keys, vals, 1);
    if (pl->conn == NULL || PQstatus(pl->conn) == CONNECTION_BAD) {
        lost(pl, pl->conn ? PQerrorMessage(pl->conn) : "out of memory");
        return;
    }
    pl->state = CONNECTING;
    uv_timer_start(&pl->timer, on_timer, 10000, 0);
    connect_step(pl);
}

/* Send the next query if the connection is free. */
static void pump(struct pgloop *pl)
{
    if (pl->state != READY || pl->inflight || pl->head == NULL || pl->closing) return;
    struct op *o = pl->head;
    pl->head = o->next;
    if (pl->head == NULL) pl->tail = NULL;
    o->next = NULL;
    pl->inflight = o;
    if (!PQsendQueryParams(pl->conn, o->sql, o->n, NULL, (const char *const *)o->values, NULL,
                           NULL, 0)) {
        lost(pl, PQerrorMessage(pl->conn));
        return;
    }
    int f = PQflush(pl->conn);
    if (f < 0) {
        lost(pl, PQerrorMessage(pl->conn));
        return;
    }
    if (watch(pl, UV_READABLE | (f == 1 ? UV_WRITABLE : 0)) < 0) lost(pl, "cannot watch the socket");
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct pgloop *pl = h->data;
    if (h != pl->poll) return;   /* an old connection's event */
    if (pl->state == CONNECTING) {
        connect_step(pl);
        return;
    }
    if (pl->state != READY) return;
    if (status < 0) {
        lost(pl, uv_strerror(status));
        return;
    }
    if (events & UV_WRITABLE) {
        int f = PQflush(pl->conn);
        if (f < 0) {
            lost(pl, PQerrorMessage(pl->conn));
            return;
        }
        if (f == 0 && watch(pl, UV_READABLE) < 0) {
            lost(pl, "cannot watch the socket");
            return;
        }
    }
    if (!(events & UV_READABLE)) return;
    if (!PQconsumeInput(pl->conn)) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(pl->conn));
        msg[strcspn(msg, "\n")] = '\0';
        lost(pl, msg);
        return;
    }
    while (pl->inflight && !PQisBusy(pl->conn)) {
        PGresult *r = PQgetResult(pl->conn);
        if (r != NULL) {
            PQclear(pl->last);
            pl->last = r;
            continue;
        }
        if (PQstatus(pl->conn) == CONNECTION_BAD) {
            /* the server closed the connection (e.g. a shutdown): the
             * query's fate is unknown, like any loss */
            lost(pl, "the server closed the connection");
            return;
        }
        struct op *o = pl->inflight;
        PGresult *res = pl->last;
        pl->inflight = NULL;
        pl->last = NULL;
        if (res != NULL && PQresultStatus(res) == PGRES_FATAL_ERROR && o->cb == NULL)
            log_msg(LOG_WARN, "database: %s: %s", o->sql, PQresultErrorMessage(res));
        if (o->cb) o->cb(o->ctx, res);
        PQclear(res);
        op_free(o);
        if (pl->state != READY) return;   /* closed or lost inside the callback */
    }
    PGnotify *n;
    while (pl->conn && (n = PQnotifies(pl->conn)) != NULL) {
        if (pl->ev.on_notify) pl->ev.on_notify(pl->ev.ctx, n->relname, n->extra);
        PQfreemem(n);
    }
    if (pl->state == READY && PQstatus(pl->conn) == CONNECTION_BAD) {
        lost(pl, "connection bad");
        return;
    }
    pump(pl);
}

struct pgloop *pgloop_new(uv_loop_t *loop, const char *conninfo, const char *app_name,
                          const char *listen_channel, const struct pgloop_events *ev)
{
    struct pgloop *pl = calloc(1, sizeof *pl);
    if (pl == NULL) return NULL;
    pl->conninfo = strdup(conninfo ? conninfo : "");
    if (pl->conninfo == NULL) {
        free(pl);
        return NULL;
    }
    snprintf(pl->app_name, sizeof pl->app_name, "%s", app_name ? app_name : "podium");
    snprintf(pl->channel, sizeof pl->channel, "%s", listen_channel ? listen_channel : "");
    if (ev) pl->ev = *ev;
    pl->loop = loop;
    pl->poll_fd = -1;
    pl->backoff_ms = 250;
    uv_timer_init(loop, &pl->timer);
    pl->timer.data = pl;
    start_connect(pl);
    return pl;
}

int pgloop_query(struct pgloop *pl, const char *sql, int n, const char *const *values,
                 int flags, pgloop_cb cb, void *ctx)
{
    if (pl->closing) return -1;
    struct op *o = calloc(1, sizeof *o);
    if (o == NULL) return -1;
    o->sql = strdup(sql);
    o->values = n > 0 ? calloc((size_t)n, sizeof *o->values) : NULL;
    if (o->sql == NULL || (n > 0 && o->values == NULL)) goto fail;
    o->n = n;
    for (int i = 0; i < n; i++)
        if (values[i] && (o->values[i] = strdup(values[i])) == NULL) goto fail;
    o->flags = flags;
    o->cb = cb;
    o->ctx = ctx;
    if (flags & PGQ_FRONT) {
        o->next = pl->head;
        pl->head = o;
        if (pl->tail == NULL) pl->tail = o;
    } else {
        if (pl->tail) pl->tail->next = o;
        else pl->head = o;
        pl->tail = o;
    }
    pump(pl);
    return 0;
fail:
    op_free(o);
    return -1;
}

int pgloop_connected(const struct pgloop *pl) { return pl->state == READY; }

int pgloop_idle(const struct pgloop *pl) { return pl->inflight == NULL && pl->head == NULL; }

static void on_timer_closed(uv_handle_t *h)
{
    struct pgloop *pl = h->data;
    free(pl->conninfo);
    free(pl);
}

void pgloop_close(struct pgloop *pl)
{
    if (pl == NULL) return;
    pl->closing = 1;
    uv_timer_stop(&pl->timer);
    struct op *o = pl->inflight;
    pl->inflight = NULL;
    if (o) {
        if (o->cb) o->cb(o->ctx, NULL);
        op_free(o);
    }
    while ((o = pl->head) != NULL) {
        pl->head = o->next;
        if (o->cb) o->cb(o->ctx, NULL);
        op_free(o);
    }
    pl->tail = NULL;
    PQclear(pl->last);
    pl->last = NULL;
    drop_poll(pl);
    if (pl->conn) PQfinish(pl->conn);
    pl->conn = NULL;
    pl->state = DOWN;
    uv_close((uv_handle_t *)&pl->timer, on_timer_closed);
}
