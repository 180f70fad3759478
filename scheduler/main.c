/*
 * main.c - podium-scheduler: the process that will claim trials from
 * PostgreSQL and run each in a podium-train child, on one libuv loop.
 *
 * What it does today: connects, waits until the database schema is the one
 * this build knows (the server migrates it), then runs its loop, checking
 * the database every --check-interval seconds, until SIGTERM or SIGINT. The
 * search-jobs work fills in trial claiming, leases and children.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "lib/db.h"
#include "lib/log.h"
#include "lib/migrate.h"

struct scheduler {
    uv_loop_t *loop;
    uv_signal_t sigterm, sigint;
    uv_timer_t check;
    const char *database_url;
    PGconn *db;
    int db_ok;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: podium-scheduler [options]\n\n"
            "Claims trials from the database and runs them as podium-train processes.\n\n"
            "  --database-url URL      PostgreSQL URL or conninfo [DATABASE_URL]\n"
            "  --check-interval SECONDS how often to check the database (default 30)\n"
            "  --log-level LEVEL       debug, info, warn or error [PODIUM_LOG_LEVEL]\n"
            "  --version               print the version and exit\n"
            "  --help                  this text\n");
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct scheduler *s = h->data;
    log_msg(LOG_INFO, "received %s: stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    uv_stop(s->loop);
}

/* Reconnect when needed and check that the schema is current. This is a
 * blocking libpq call; it moves onto the non-blocking connection together
 * with trial claiming. */
static void on_check(uv_timer_t *t)
{
    struct scheduler *s = t->data;
    char err[512];
    if (s->db != NULL && PQstatus(s->db) != CONNECTION_OK) {
        PQfinish(s->db);
        s->db = NULL;
    }
    if (s->db == NULL) s->db = db_connect(s->database_url, "podium-scheduler", 5, err, sizeof err);
    int rc = s->db ? migrate_check(s->db, podium_migrations, podium_migrations_count, err,
                                   sizeof err)
                   : -1;
    if (rc == 0 && !s->db_ok) log_msg(LOG_INFO, "database ready");
    if (rc == 1) log_msg(LOG_INFO, "waiting for the server to migrate the database");
    if (rc < 0 && (s->db_ok || s->db == NULL))
        log_msg(LOG_WARN, "database unavailable: %s", err);
    s->db_ok = rc == 0;
}

int main(int argc, char **argv)
{
    struct scheduler s;
    memset(&s, 0, sizeof s);
    s.database_url = getenv("DATABASE_URL") ? getenv("DATABASE_URL") : "";
    const char *level = getenv("PODIUM_LOG_LEVEL") ? getenv("PODIUM_LOG_LEVEL") : "info";
    long interval = 30;

    static const struct option opts[] = {
        {"database-url", required_argument, NULL, 'd'},
        {"check-interval", required_argument, NULL, 'i'},
        {"log-level", required_argument, NULL, 'l'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': s.database_url = optarg; break;
        case 'i': {
            char *end;
            interval = strtol(optarg, &end, 10);
            if (*end || interval < 1 || interval > 3600) {
                fprintf(stderr, "podium-scheduler: --check-interval must be 1..3600\n");
                return 2;
            }
            break;
        }
        case 'l': level = optarg; break;
        case 'V': printf("podium-scheduler %s\n", PODIUM_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default:
            fprintf(stderr, "podium-scheduler: unknown option '%s' (see --help)\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if (log_level_parse(level) < 0) {
        fprintf(stderr, "podium-scheduler: invalid log level '%s'\n", level);
        return 2;
    }
    log_init("podium-scheduler", (enum log_level)log_level_parse(level));

    s.loop = uv_default_loop();
    uv_signal_init(s.loop, &s.sigterm);
    uv_signal_init(s.loop, &s.sigint);
    s.sigterm.data = s.sigint.data = &s;
    uv_signal_start(&s.sigterm, on_signal, SIGTERM);
    uv_signal_start(&s.sigint, on_signal, SIGINT);
    uv_timer_init(s.loop, &s.check);
    s.check.data = &s;
    uv_timer_start(&s.check, on_check, 0, (uint64_t)interval * 1000);

    log_msg(LOG_INFO, "started");
    uv_run(s.loop, UV_RUN_DEFAULT);

    uv_close((uv_handle_t *)&s.sigterm, NULL);
    uv_close((uv_handle_t *)&s.sigint, NULL);
    uv_close((uv_handle_t *)&s.check, NULL);
    uv_run(s.loop, UV_RUN_DEFAULT);
    uv_loop_close(s.loop);
    if (s.db) PQfinish(s.db);
    log_msg(LOG_INFO, "stopped");
    return 0;
}
