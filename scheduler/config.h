/*
 * config.h - podium-scheduler's command line and environment.
 *
 * config_parse fills a config from argv and the environment (DATABASE_URL,
 * PODIUM_DATA_DIR, PODIUM_LOG_LEVEL, PODIUM_GPUS). Pure: no I/O besides reading the
 * environment, so tests can call it.
 */
#ifndef PODIUM_SCHEDULER_CONFIG_H
#define PODIUM_SCHEDULER_CONFIG_H

#include <stdio.h>

struct sched_config {
    char database_url[1024];
    int slots;                  /* CPU slots: one per trial */
    char gpus[1024];            /* "auto", "none" or a device list (slots.h) */
    char cache_dir[1024];
    char trainer[1024];         /* the podium-train program */
    int lease_seconds;
    int heartbeat_seconds;
    double sweep_seconds;
    char id[256];               /* our lease_owner */
    char log_level[16];
    int memory_limit_mb;        /* 0 = none */
    int kill_grace_ms;          /* SIGTERM -> SIGKILL after a timeout */
    long long events_retention; /* seconds; -1 = keep all (retention.h) */
    int events_progress_cap;    /* 0 = none */
};

enum { CONFIG_RUN = 0, CONFIG_EXIT_OK = 1, CONFIG_EUSAGE = -1 };

/* CONFIG_RUN, CONFIG_EXIT_OK (--help/--version printed to out), or
 * CONFIG_EUSAGE with err. argv0 locates the default trainer. */
int config_parse(struct sched_config *c, int argc, char **argv, FILE *out, char *err,
                 size_t errlen);
void config_usage(FILE *out);

#endif
