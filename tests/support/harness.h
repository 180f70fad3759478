/*
 * harness.h - what the integration tests share: a fresh database per test
 * program, a real podium-server process on a free port, and an HTTP client
 * (libcurl) that returns status, headers and body.
 *
 * Everything reads the environment set by tests/run.sh (PODIUM_TEST_PG,
 * PODIUM_TEST_PGCTL, PODIUM_BIN_DIR, PODIUM_TEST_TMP). Failures inside the
 * harness fail the calling cmocka test.
 */
#ifndef PODIUM_TESTS_HARNESS_H
#define PODIUM_TESTS_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

/* A database of its own for one test program. */
struct th_db {
    char name[64];
    char conninfo[512];
};

/* Create an empty database; 0 or -1. */
int th_db_create(struct th_db *db);
void th_db_drop(struct th_db *db);
/* A connection to it (the caller PQfinishes), or NULL. */
PGconn *th_db_connect(const struct th_db *db);

struct th_server {
    pid_t pid;
    int port;
    char key[128];           /* the bootstrap admin key */
    char log_path[512];
    char key_path[512];
};

/* Start bin/podium-server on db with extra "--flag=value" arguments
 * (NULL-terminated, may be NULL) and wait for /healthz. 0 or -1. */
int th_server_start(struct th_server *s, const struct th_db *db, const char *const *extra);
/* SIGTERM and wait; returns the exit status, -1 on timeout (then it was
 * SIGKILLed), -2 when its log holds an AddressSanitizer/UBSan report. */
int th_server_stop(struct th_server *s);

/* A podium-scheduler process on db (cache and log under PODIUM_TEST_TMP),
 * with extra "--flag=value" arguments (NULL-terminated, may be NULL). */
struct th_scheduler {
    pid_t pid;
    char log_path[512];
};

int th_scheduler_start(struct th_scheduler *s, const struct th_db *db, const char *const *extra);
/* SIGTERM and wait; the exit status as th_server_stop gives it. */
int th_scheduler_stop(struct th_scheduler *s);

struct th_resp {
    long status;
    char *body;               /* NUL-terminated; may be empty */
    size_t body_len;
    char content_type[128];
    char request_id[64];
    char location[256];
    char allow[64];
    char www_authenticate[128];
    char etag[128];
};

/* One request; key may be NULL (no Authorization), content_type NULL means
 * application/json when body is given. Returns 0 if a response came back. */
int th_http(const struct th_server *s, const char *method, const char *path,
            const char *key, const char *content_type, const char *body,
            size_t body_len, struct th_resp *out);
/* Raw headers variant: headers is a NULL-terminated list of "Name: value". */
int th_http_headers(const struct th_server *s, const char *method, const char *path,
                    const char *const *headers, const char *body, size_t body_len,
                    struct th_resp *out);
/* A multipart/form-data POST (what `curl -F` sends): optional "name" and
 * "na" fields first, then a "file" part with file_name, data and
 * part_type (NULL: none). */
int th_http_form(const struct th_server *s, const char *path, const char *key,
                 const char *name, const char *na, const char *file_name,
                 const void *data, size_t len, const char *part_type, struct th_resp *out);
/* The whole of a file (tests/data/...) in a new buffer; NULL if missing. */
char *th_read_file(const char *path, size_t *len);
void th_resp_free(struct th_resp *r);
/* The body parsed as JSON (caller deletes), or NULL. */
cJSON *th_json(const struct th_resp *r);
/* A string member of the body's JSON ("a.b" walks objects); static copy. */
const char *th_json_str(const struct th_resp *r, const char *path);

/* 1 if the log file holds an AddressSanitizer/UBSan report. */
int th_log_has_sanitizer_report(const char *path);

/* Run PODIUM_TEST_PGCTL with "stop" or "start". 0 or -1. */
int th_pg_ctl(const char *action);

/* A free TCP port on 127.0.0.1. */
int th_free_port(void);

#endif
