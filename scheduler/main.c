/*
 * main.c - podium-scheduler: a thin main over the scheduler's modules.
 * Parses the options (config.h), starts the scheduler (sched.h) on the
 * default libuv loop and runs it until SIGTERM/SIGINT has been handled
 * (sched_stop: children stopped and their trials handed back), then exits 0.
 * Event retention (retention.h) runs beside it on the same loop.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "lib/log.h"
#include "scheduler/config.h"
#include "scheduler/retention.h"
#include "scheduler/sched.h"

static struct retention *retention;

static void on_signal(uv_signal_t *h, int signum)
{
    log_msg(LOG_INFO, "received %s: stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    retention_stop(retention);
    sched_stop(h->data);
}

int main(int argc, char **argv)
{
    struct sched_config cfg;
    char err[512] = "";
    int rc = config_parse(&cfg, argc, argv, stdout, err, sizeof err);
    if (rc == CONFIG_EXIT_OK) return 0;
    if (rc != CONFIG_RUN) {
        fprintf(stderr, "podium-scheduler: %s\n", err);
        return 2;
    }
    log_init("podium-scheduler", (enum log_level)log_level_parse(cfg.log_level));
    signal(SIGPIPE, SIG_IGN);

    uv_loop_t *loop = uv_default_loop();
    struct sched *s = sched_new(loop, &cfg, err, sizeof err);
    if (s == NULL) {
        log_msg(LOG_ERROR, "cannot start: %s", err);
        return 1;
    }
    retention = retention_new(loop, cfg.database_url, cfg.events_retention,
                              cfg.events_progress_cap);
    if (retention == NULL) log_msg(LOG_WARN, "events retention: out of memory; not running");
    uv_signal_t sigterm, sigint;
    uv_signal_init(loop, &sigterm);
    uv_signal_init(loop, &sigint);
    sigterm.data = sigint.data = s;
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);
    /* the signal handles keep the loop alive: unref them so the loop ends
     * when the scheduler has closed its own handles */
    uv_unref((uv_handle_t *)&sigterm);
    uv_unref((uv_handle_t *)&sigint);

    log_msg(LOG_INFO, "started");
    uv_run(loop, UV_RUN_DEFAULT);

    uv_close((uv_handle_t *)&sigterm, NULL);
    uv_close((uv_handle_t *)&sigint, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    sched_free(s);
    retention_free(retention);
    uv_loop_close(loop);
    log_msg(LOG_INFO, "stopped");
    return 0;
}
