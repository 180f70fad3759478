/*
 * server.c - see server.h.
 *
 * libmicrohttpd runs its own thread pool (cfg.threads workers, each with its
 * own epoll/poll loop); handlers block on PostgreSQL through the pool, which
 * is sized to the worker count so a worker never waits for a connection.
 */
#include "server/server.h"

#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/socket.h>

#include "lib/log.h"
#include "server/auth.h"
#include "server/events.h"
#include "server/http.h"

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n') msg[--n] = '\0';
    log_msg(LOG_WARN, "libmicrohttpd: %s", msg);
}

int server_start(struct server *s, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_PASSIVE,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    char port[8];
    snprintf(port, sizeof port, "%d", s->cfg.port);
    int gai = getaddrinfo(s->cfg.bind, port, &hints, &ai);
    if (gai != 0) {
        snprintf(err, errlen, "bind address '%s': %s", s->cfg.bind, gai_strerror(gai));
        return -1;
    }

    s->pool = pool_new(s->cfg.database_url, s->cfg.db_pool);
    if (s->pool == NULL) {
        freeaddrinfo(ai);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    atomic_store(&s->inflight, 0);
    s->keys = auth_cache_new(s->cfg.auth_cache_s);
    s->events = s->keys ? events_new(s->cfg.database_url, s->cfg.sse_heartbeat_s * 1000,
                                     auth_cache_forget, s->keys, err, errlen)
                        : NULL;
    if (s->events == NULL) {
        if (s->keys == NULL) snprintf(err, errlen, "out of memory");
        freeaddrinfo(ai);
        auth_cache_free(s->keys);
        s->keys = NULL;
        pool_free(s->pool);
        s->pool = NULL;
        return -1;
    }

    /* Suspend/resume: an event stream with nothing to send is suspended
     * (events.h) instead of holding its worker thread. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    /* libmicrohttpd keeps a connection's headers in a per-connection pool:
     * leave it room beyond our own limit so that ours (with a problem+json
     * answer) is the one that triggers. */
    size_t mem = s->cfg.max_header_bytes * 2 + 64 * 1024;
    s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, http_on_request, s,
                              MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                              MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                              MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->cfg.threads,
                              MHD_OPTION_CONNECTION_MEMORY_LIMIT, mem,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)1024,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->cfg.request_timeout_s,
                              MHD_OPTION_NOTIFY_COMPLETED, http_on_completed, s,
                              MHD_OPTION_END);
    freeaddrinfo(ai);
    if (s->mhd == NULL) {
        snprintf(err, errlen, "cannot listen on %s:%d (in use, or not permitted)",
                 s->cfg.bind, s->cfg.port);
        events_free(s->events);
        s->events = NULL;
        auth_cache_free(s->keys);
        s->keys = NULL;
        pool_free(s->pool);
        s->pool = NULL;
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : s->cfg.port;
    return 0;
}

void server_stop(struct server *s)
{
    if (s->mhd == NULL) return;
    /* Close the listening socket first: new connections are refused while
     * the requests already accepted run to completion. */
    MHD_socket listener = MHD_quiesce_daemon(s->mhd);
    if (listener != MHD_INVALID_SOCKET) close(listener);
    /* Event streams would run forever: end them now. */
    events_close_streams(s->events);

    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        int n = atomic_load(&s->inflight);
        if (n == 0) break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec >= s->cfg.shutdown_grace_s) {
            log_msg(LOG_WARN, "shutdown: %d requests still running after %d s; closing them",
                    n, s->cfg.shutdown_grace_s);
            break;
        }
        usleep(10 * 1000);
    }
    MHD_stop_daemon(s->mhd);
    s->mhd = NULL;
    events_free(s->events);
    s->events = NULL;
    auth_cache_free(s->keys);
    s->keys = NULL;
    pool_free(s->pool);
    s->pool = NULL;
}
