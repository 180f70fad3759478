/*
 * server.h - the podium-server process: configuration, the database pool
 * and the libmicrohttpd daemon, started and stopped as one.
 */
#ifndef PODIUM_SERVER_SERVER_H
#define PODIUM_SERVER_SERVER_H

#include <stdatomic.h>
#include <stddef.h>

#include <microhttpd.h>

#include "server/config.h"
#include "server/pool.h"

struct events;
struct auth_cache;

struct server {
    struct server_config cfg;
    struct pool *pool;
    struct MHD_Daemon *mhd;
    int port;                   /* the bound port (cfg.port may be 0) */
    atomic_int inflight;        /* requests begun and not yet completed */
    struct events *events;      /* job events: NOTIFY listener, SSE waiters */
    struct auth_cache *keys;    /* verified API keys (auth.h) */
};

/* Start listening. 0, or -1 with err. */
int server_start(struct server *s, char *err, size_t errlen);

/* Stop accepting connections, let in-flight requests finish for up to
 * cfg.shutdown_grace_s seconds, then close everything. */
void server_stop(struct server *s);

#endif
