/*
 * config.c - podium-scheduler's options (config.h).
 */
#include "scheduler/config.h"

#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "scheduler/retention.h"
#include "scheduler/slots.h"

void config_usage(FILE *out)
{
    fprintf(out,
            "usage: podium-scheduler [options]\n\n"
            "Proposes and claims the trials of search jobs from PostgreSQL and runs each\n"
            "as a podium-train child process. Any number of schedulers may share a database.\n\n"
            "  --database-url URL        PostgreSQL URL or conninfo [DATABASE_URL]\n"
            "  --slots N                 CPU slots, one trial each (default: number of cores)\n"
            "  --gpus auto|none|LIST     GPU slots, one trial each: detected (CUDA_VISIBLE_DEVICES,\n"
            "                            else the NVIDIA driver's list), none, or device ids\n"
            "                            such as 0,1 (default auto) [PODIUM_GPUS]\n"
            "  --cache-dir DIR           data set cache and trial files\n"
            "                            (default $PODIUM_DATA_DIR/cache, else /tmp/podium-cache)\n"
            "  --trainer PATH            podium-train program (default: next to this binary)\n"
            "  --lease-seconds N         trial lease (default 30)\n"
            "  --heartbeat-seconds N     lease renewal interval (default 10)\n"
            "  --sweep-seconds S         safety-net poll interval (default 5)\n"
            "  --memory-limit-mb N       passed to trainers as PODIUM_MEMORY_LIMIT_MB\n"
            "  --id NAME                 this scheduler's lease owner name (default hostname:pid)\n"
            "  --events-retention TIME   delete the progress events of jobs finished this long\n"
            "                            ago: N[s|m|h|d], 0 or never to keep them (default 7d)\n"
            "  --events-progress-cap N   keep at most the newest N progress events of a running\n"
            "                            job, 0 for no cap (default 10000)\n"
            "  --log-level LEVEL         debug, info, warn or error [PODIUM_LOG_LEVEL]\n"
            "  --version                 print the version and exit\n"
            "  --help                    this text\n\n"
            "SIGTERM/SIGINT: stop claiming, stop running trainers and hand their trials\n"
            "back (lease expired now) so that any scheduler resumes them, then exit 0.\n");
}

static int int_arg(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int config_parse(struct sched_config *c, int argc, char **argv, FILE *out, char *err,
                 size_t errlen)
{
    memset(c, 0, sizeof c[0]);
    const char *env = getenv("DATABASE_URL");
    snprintf(c->database_url, sizeof c->database_url, "%s", env ? env : "");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    c->slots = cores > 0 ? (int)cores : 1;
    env = getenv("PODIUM_GPUS");
    snprintf(c->gpus, sizeof c->gpus, "%s", env && *env ? env : "auto");
    env = getenv("PODIUM_DATA_DIR");
    if (env && *env) snprintf(c->cache_dir, sizeof c->cache_dir, "%s/cache", env);
    else snprintf(c->cache_dir, sizeof c->cache_dir, "/tmp/podium-cache");
    c->lease_seconds = 30;
    c->heartbeat_seconds = 10;
    c->sweep_seconds = 5;
    c->kill_grace_ms = 3000;
    c->events_retention = RETENTION_DEFAULT_SECONDS;
    c->events_progress_cap = RETENTION_DEFAULT_CAP;
    env = getenv("PODIUM_LOG_LEVEL");
    snprintf(c->log_level, sizeof c->log_level, "%s", env ? env : "info");
    char host[200] = "localhost";
    gethostname(host, sizeof host - 1);
    snprintf(c->id, sizeof c->id, "%s:%ld", host, (long)getpid());

    /* the trainer next to our own binary */
    char self[900];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) *slash = '\0';
        snprintf(c->trainer, sizeof c->trainer, "%s/podium-train", self);
    } else {
        snprintf(c->trainer, sizeof c->trainer, "podium-train");
    }

    static const struct option opts[] = {
        {"database-url", required_argument, NULL, 'd'},
        {"slots", required_argument, NULL, 's'},
        {"gpus", required_argument, NULL, 'g'},
        {"cache-dir", required_argument, NULL, 'c'},
        {"trainer", required_argument, NULL, 't'},
        {"lease-seconds", required_argument, NULL, 'L'},
        {"heartbeat-seconds", required_argument, NULL, 'H'},
        {"sweep-seconds", required_argument, NULL, 'S'},
        {"memory-limit-mb", required_argument, NULL, 'm'},
        {"id", required_argument, NULL, 'i'},
        {"events-retention", required_argument, NULL, 'R'},
        {"events-progress-cap", required_argument, NULL, 'P'},
        {"log-level", required_argument, NULL, 'l'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    long v;
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'd': snprintf(c->database_url, sizeof c->database_url, "%s", optarg); break;
        case 's':
            if (int_arg(optarg, 1, 4096, &v) < 0) goto bad;
            c->slots = (int)v;
            break;
        case 'g': snprintf(c->gpus, sizeof c->gpus, "%s", optarg); break;
        case 'c': snprintf(c->cache_dir, sizeof c->cache_dir, "%s", optarg); break;
        case 't': snprintf(c->trainer, sizeof c->trainer, "%s", optarg); break;
        case 'L':
            if (int_arg(optarg, 1, 86400, &v) < 0) goto bad;
            c->lease_seconds = (int)v;
            break;
        case 'H':
            if (int_arg(optarg, 1, 86400, &v) < 0) goto bad;
            c->heartbeat_seconds = (int)v;
            break;
        case 'S': {
            char *end;
            c->sweep_seconds = strtod(optarg, &end);
            if (*end || !(c->sweep_seconds >= 0.1 && c->sweep_seconds <= 3600)) goto bad;
            break;
        }
        case 'm':
            if (int_arg(optarg, 1, 1 << 24, &v) < 0) goto bad;
            c->memory_limit_mb = (int)v;
            break;
        case 'i':
            if (optarg[0] == '\0') goto bad;
            snprintf(c->id, sizeof c->id, "%s", optarg);
            break;
        case 'R':
            if (retention_parse(optarg, &c->events_retention) < 0) goto bad;
            break;
        case 'P':
            if (int_arg(optarg, 0, 100000000, &v) < 0) goto bad;
            c->events_progress_cap = (int)v;
            break;
        case 'l': snprintf(c->log_level, sizeof c->log_level, "%s", optarg); break;
        case 'V': fprintf(out, "podium-scheduler %s\n", PODIUM_VERSION); return CONFIG_EXIT_OK;
        case 'h': config_usage(out); return CONFIG_EXIT_OK;
        default:
            snprintf(err, errlen, "unknown option or missing value '%s' (see --help)",
                     argv[optind - 1]);
            return CONFIG_EUSAGE;
        }
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument '%s'", argv[optind]);
        return CONFIG_EUSAGE;
    }
    struct slots check;
    if (slots_init(&check, c->slots, c->gpus, err, errlen) < 0) return CONFIG_EUSAGE;
    if (log_level_parse(c->log_level) < 0) {
        snprintf(err, errlen, "invalid log level '%s'", c->log_level);
        return CONFIG_EUSAGE;
    }
    if (c->heartbeat_seconds >= c->lease_seconds && c->lease_seconds > 1) {
        /* a heartbeat slower than the lease loses every trial */
        c->heartbeat_seconds = c->lease_seconds / 3 > 0 ? c->lease_seconds / 3 : 1;
    }
    return CONFIG_RUN;
bad:
    snprintf(err, errlen, "invalid value '%s' for --%s", optarg, opts[0].name);
    for (const struct option *o = opts; o->name; o++)
        if (o->val == ch) snprintf(err, errlen, "invalid value '%s' for --%s", optarg, o->name);
    return CONFIG_EUSAGE;
}
