/*
 * config.h - podium-server's settings: environment variables, then flags.
 *
 * Every setting has a PODIUM_* (or DATABASE_URL) variable and a matching
 * flag; a flag wins over the variable, the variable over the default.
 * config_usage prints the table that --help shows and the README repeats.
 */
#ifndef PODIUM_SERVER_CONFIG_H
#define PODIUM_SERVER_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct server_config {
    const char *bind;              /* PODIUM_BIND, --bind */
    int port;                      /* PODIUM_PORT, --port */
    const char *database_url;      /* DATABASE_URL, --database-url */
    int threads;                   /* PODIUM_THREADS, --threads */
    int db_pool;                   /* PODIUM_DB_POOL, --db-pool */
    size_t max_body_bytes;         /* PODIUM_MAX_BODY_BYTES, --max-body-bytes */
    size_t max_header_bytes;       /* PODIUM_MAX_HEADER_BYTES, --max-header-bytes */
    uint64_t max_upload_bytes;     /* PODIUM_MAX_UPLOAD_BYTES, --max-upload-bytes */
    int request_timeout_s;         /* PODIUM_REQUEST_TIMEOUT, --request-timeout */
    int shutdown_grace_s;          /* PODIUM_SHUTDOWN_GRACE, --shutdown-grace */
    const char *bootstrap_key_file;/* PODIUM_BOOTSTRAP_KEY_FILE, --bootstrap-key-file */
    const char *log_level;         /* PODIUM_LOG_LEVEL, --log-level */
    const char *web_dir;           /* PODIUM_WEB_DIR, --web-dir: the dashboard's files */
    const char *cors_origins;      /* PODIUM_CORS_ORIGINS, --cors-origins: "" = no CORS */
    int sse_heartbeat_s;           /* PODIUM_SSE_HEARTBEAT, --sse-heartbeat */
    int auth_cache_s;              /* PODIUM_AUTH_CACHE, --auth-cache: 0 = off */
    int migrate_only;              /* --migrate */
    int print_routes;              /* --routes */
    int print_help;                /* --help */
    int print_version;             /* --version */
};

/* Fill cfg from the environment and argv. Returns 0, or -1 with a message
 * naming the bad setting in err. The strings point into argv/environ. */
int config_load(struct server_config *cfg, int argc, char **argv,
                char *err, size_t errlen);

void config_usage(FILE *out);

#endif
