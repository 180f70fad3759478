/* config.c - see config.h. */
#include "server/config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "server/cors.h"

/* One row per setting: its flag, its variable, its help text. The option
 * letter is the index into this table + 256, so getopt_long never confuses
 * two settings. */
struct setting {
    const char *flag;
    const char *env;
    const char *arg;      /* NULL: a switch */
    const char *help;
};

enum {
    S_BIND, S_PORT, S_DATABASE_URL, S_THREADS, S_DB_POOL, S_MAX_BODY,
    S_MAX_HEADER, S_MAX_UPLOAD, S_REQUEST_TIMEOUT, S_SHUTDOWN_GRACE, S_BOOTSTRAP_KEY_FILE,
    S_LOG_LEVEL, S_WEB_DIR, S_CORS_ORIGINS, S_SSE_HEARTBEAT, S_AUTH_CACHE, S_MIGRATE, S_ROUTES, S_HELP, S_VERSION, S_COUNT
};

static const struct setting settings[S_COUNT] = {
    [S_BIND] = {"bind", "PODIUM_BIND", "ADDR", "address to listen on (default 127.0.0.1; 0.0.0.0 for all)"},
    [S_PORT] = {"port", "PODIUM_PORT", "N", "TCP port (default 8080)"},
    [S_DATABASE_URL] = {"database-url", "DATABASE_URL", "URL", "PostgreSQL URL or conninfo (default: libpq's PG* variables)"},
    [S_THREADS] = {"threads", "PODIUM_THREADS", "N", "HTTP worker threads (default 8)"},
    [S_DB_POOL] = {"db-pool", "PODIUM_DB_POOL", "N", "database connections (default: threads)"},
    [S_MAX_BODY] = {"max-body-bytes", "PODIUM_MAX_BODY_BYTES", "N", "largest JSON request body (default 1048576)"},
    [S_MAX_HEADER] = {"max-header-bytes", "PODIUM_MAX_HEADER_BYTES", "N", "largest request line + headers (default 16384)"},
    [S_MAX_UPLOAD] = {"max-upload-bytes", "PODIUM_MAX_UPLOAD_BYTES", "N", "largest data set upload (default 2147483648)"},
    [S_REQUEST_TIMEOUT] = {"request-timeout", "PODIUM_REQUEST_TIMEOUT", "SECONDS", "idle connection timeout (default 60)"},
    [S_SHUTDOWN_GRACE] = {"shutdown-grace", "PODIUM_SHUTDOWN_GRACE", "SECONDS", "on SIGTERM, how long in-flight requests may finish (default 10)"},
    [S_BOOTSTRAP_KEY_FILE] = {"bootstrap-key-file", "PODIUM_BOOTSTRAP_KEY_FILE", "PATH", "on an empty database, write the first admin key here (mode 0600)"},
    [S_LOG_LEVEL] = {"log-level", "PODIUM_LOG_LEVEL", "LEVEL", "debug, info, warn or error (default info)"},
    [S_WEB_DIR] = {"web-dir", "PODIUM_WEB_DIR", "DIR", "the dashboard's files, served at / (default build/web)"},
    [S_CORS_ORIGINS] = {"cors-origins", "PODIUM_CORS_ORIGINS", "LIST", "web origins whose pages may call the API, comma-separated (default none)"},
    [S_SSE_HEARTBEAT] = {"sse-heartbeat", "PODIUM_SSE_HEARTBEAT", "SECONDS", "comment line sent on an idle event stream (default 15)"},
    [S_AUTH_CACHE] = {"auth-cache", "PODIUM_AUTH_CACHE", "SECONDS", "how long a verified API key is trusted without a query; 0: never (default 10)"},
    [S_MIGRATE] = {"migrate", NULL, NULL, "apply pending migrations (and bootstrap an empty database), then exit"},
    [S_ROUTES] = {"routes", NULL, NULL, "print the route table and exit"},
    [S_HELP] = {"help", NULL, NULL, "this text"},
    [S_VERSION] = {"version", NULL, NULL, "print the version and exit"},
};

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* Apply one setting's text value. */
static int apply(struct server_config *cfg, int which, const char *value,
                 const char *source, char *err, size_t errlen)
{
    long v;
    switch (which) {
    case S_BIND: cfg->bind = value; return 0;
    case S_DATABASE_URL: cfg->database_url = value; return 0;
    case S_BOOTSTRAP_KEY_FILE: cfg->bootstrap_key_file = value; return 0;
    case S_WEB_DIR: cfg->web_dir = value; return 0;
    case S_CORS_ORIGINS: {
        char why[300];
        if (cors_check_list(value, why, sizeof why) < 0) {
            snprintf(err, errlen, "%s: %s", source, why);
            return -1;
        }
        cfg->cors_origins = value;
        return 0;
    }
    case S_SSE_HEARTBEAT:
        if (parse_int(value, 1, 3600, &v) < 0) break;
        cfg->sse_heartbeat_s = (int)v;
        return 0;
    case S_AUTH_CACHE:
        if (parse_int(value, 0, 300, &v) < 0) break;
        cfg->auth_cache_s = (int)v;
        return 0;
    case S_LOG_LEVEL:
        if (strcmp(value, "debug") && strcmp(value, "info") &&
            strcmp(value, "warn") && strcmp(value, "error")) break;
        cfg->log_level = value;
        return 0;
    case S_PORT:
        if (parse_int(value, 0, 65535, &v) < 0) break;
        cfg->port = (int)v;
        return 0;
    case S_THREADS:
        if (parse_int(value, 1, 1024, &v) < 0) break;
        cfg->threads = (int)v;
        return 0;
    case S_DB_POOL:
        if (parse_int(value, 1, 1024, &v) < 0) break;
        cfg->db_pool = (int)v;
        return 0;
    case S_MAX_BODY:
        if (parse_int(value, 1024, LONG_MAX, &v) < 0) break;
        cfg->max_body_bytes = (size_t)v;
        return 0;
    case S_MAX_HEADER:
        if (parse_int(value, 1024, 1 << 20, &v) < 0) break;
        cfg->max_header_bytes = (size_t)v;
        return 0;
    case S_MAX_UPLOAD:
        if (parse_int(value, 1024, LONG_MAX, &v) < 0) break;
        cfg->max_upload_bytes = (uint64_t)v;
        return 0;
    case S_REQUEST_TIMEOUT:
        if (parse_int(value, 1, 86400, &v) < 0) break;
        cfg->request_timeout_s = (int)v;
        return 0;
    case S_SHUTDOWN_GRACE:
        if (parse_int(value, 0, 3600, &v) < 0) break;
        cfg->shutdown_grace_s = (int)v;
        return 0;
    default:
        break;
    }
    snprintf(err, errlen, "%s: invalid value '%s' for %s", source, value,
             settings[which].flag);
    return -1;
}

int config_load(struct server_config *cfg, int argc, char **argv,
                char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->bind = "127.0.0.1";
    cfg->port = 8080;
    cfg->database_url = "";
    cfg->threads = 8;
    cfg->max_body_bytes = 1 << 20;
    cfg->max_header_bytes = 16 << 10;
    cfg->max_upload_bytes = (uint64_t)2 << 30;
    cfg->request_timeout_s = 60;
    cfg->shutdown_grace_s = 10;
    cfg->log_level = "info";
    cfg->web_dir = "build/web";
    cfg->cors_origins = "";
    cfg->sse_heartbeat_s = 15;
    cfg->auth_cache_s = 10;

    for (int i = 0; i < S_COUNT; i++) {
        if (settings[i].env == NULL) continue;
        const char *v = getenv(settings[i].env);
        if (v == NULL || *v == '\0') continue;
        if (apply(cfg, i, v, settings[i].env, err, errlen) < 0) return -1;
    }

    struct option opts[S_COUNT + 1];
    for (int i = 0; i < S_COUNT; i++) {
        opts[i].name = settings[i].flag;
        opts[i].has_arg = settings[i].arg ? required_argument : no_argument;
        opts[i].flag = NULL;
        opts[i].val = 256 + i;
    }
    memset(&opts[S_COUNT], 0, sizeof opts[S_COUNT]);

    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') c = 256 + S_HELP;
        if (c < 256 || c >= 256 + S_COUNT) {
            const char *bad = argv[optind - 1];
            if (optopt >= 256 && optopt < 256 + S_COUNT)
                snprintf(err, errlen, "--%s needs a value", settings[optopt - 256].flag);
            else
                snprintf(err, errlen, "unknown option '%s' (see --help)", bad);
            return -1;
        }
        int which = c - 256;
        switch (which) {
        case S_MIGRATE: cfg->migrate_only = 1; break;
        case S_ROUTES: cfg->print_routes = 1; break;
        case S_HELP: cfg->print_help = 1; break;
        case S_VERSION: cfg->print_version = 1; break;
        default: {
            char source[64];
            snprintf(source, sizeof source, "--%s", settings[which].flag);
            if (apply(cfg, which, optarg, source, err, errlen) < 0) return -1;
        }
        }
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument '%s' (see --help)", argv[optind]);
        return -1;
    }
    if (cfg->db_pool == 0) cfg->db_pool = cfg->threads;
    return 0;
}

void config_usage(FILE *out)
{
    fprintf(out,
            "usage: podium-server [options]\n\n"
            "Podium's REST API. Settings come from the environment variable named\n"
            "beside each flag; a flag wins over its variable.\n\n");
    for (int i = 0; i < S_COUNT; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", settings[i].flag,
                 settings[i].arg ? " " : "", settings[i].arg ? settings[i].arg : "");
        fprintf(out, "  %-30s %s%s%s%s\n", left, settings[i].help,
                settings[i].env ? " [" : "", settings[i].env ? settings[i].env : "",
                settings[i].env ? "]" : "");
    }
}
