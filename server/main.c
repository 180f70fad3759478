/*
 * main.c - podium-server: read the configuration, migrate the database,
 * bootstrap an empty one, serve until SIGTERM or SIGINT.
 *
 * Signals are blocked in every thread and taken synchronously by the main
 * thread with sigwait, so no work happens in a signal handler.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "lib/db.h"
#include "lib/log.h"
#include "lib/migrate.h"
#include "server/bootstrap.h"
#include "server/config.h"
#include "server/router.h"
#include "server/server.h"

static void print_routes(void)
{
    static const char *const auth[] = {"public", "member", "admin"};
    for (size_t i = 0; i < server_routes_count; i++)
        printf("%-7s %-32s %-7s %s\n", server_routes[i].method, server_routes[i].pattern,
               auth[server_routes[i].auth], server_routes[i].summary);
}

/* Migrate and bootstrap on one short-lived connection. */
static int prepare_database(const struct server_config *cfg)
{
    char err[1024];
    PGconn *db = db_connect(cfg->database_url, "podium-server", 10, err, sizeof err);
    if (db == NULL) {
        log_msg(LOG_ERROR, "cannot connect to the database: %s", err);
        return -1;
    }
    int applied = migrate_apply(db, podium_migrations, podium_migrations_count, err, sizeof err);
    if (applied < 0) {
        log_msg(LOG_ERROR, "migrations: %s", err);
        PQfinish(db);
        return -1;
    }
    log_msg(LOG_INFO, "migrations: %d applied, schema at version %d", applied,
            podium_migrations_count ? podium_migrations[podium_migrations_count - 1].version : 0);
    int boot = bootstrap_run(db, cfg->bootstrap_key_file, err, sizeof err);
    PQfinish(db);
    if (boot < 0) {
        log_msg(LOG_ERROR, "bootstrap: %s", err);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct server srv;
    memset(&srv, 0, sizeof srv);
    char err[1024];
    if (config_load(&srv.cfg, argc, argv, err, sizeof err) < 0) {
        fprintf(stderr, "podium-server: %s\n", err);
        return 2;
    }
    if (srv.cfg.print_help) {
        config_usage(stdout);
        return 0;
    }
    if (srv.cfg.print_version) {
        printf("podium-server %s\n", PODIUM_VERSION);
        return 0;
    }
    if (srv.cfg.print_routes) {
        print_routes();
        return 0;
    }
    log_init("podium-server", (enum log_level)log_level_parse(srv.cfg.log_level));

    /* A parent may have left these ignored (a shell does for background
     * jobs); an ignored signal never reaches sigwait. */
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Predictions run on the HTTP workers: one BLAS thread each, not a
     * pool per call competing with the workers for the cores. */
    openblas_set_num_threads(1);

    if (prepare_database(&srv.cfg) < 0) return 1;
    if (srv.cfg.migrate_only) return 0;

    if (server_start(&srv, err, sizeof err) < 0) {
        log_msg(LOG_ERROR, "%s", err);
        return 1;
    }
    log_msg(LOG_INFO, "listening on http://%s:%d with %d threads", srv.cfg.bind, srv.port,
            srv.cfg.threads);

    int sig = 0;
    sigwait(&stop, &sig);
    log_msg(LOG_INFO, "received %s: finishing in-flight requests",
            sig == SIGTERM ? "SIGTERM" : "SIGINT");
    server_stop(&srv);
    log_msg(LOG_INFO, "stopped");
    return 0;
}
