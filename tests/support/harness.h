/*
 * harness.h - what the integration tests share: a fresh database per test
 * program, a real podium-server process on a free port, an HTTP client
 * (libcurl) that returns status, headers and body, helpers for jobs run
 * through the API, and a runner for the podium-train/podium-predict
 * binaries as child processes.
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
/* The whole of a file (tests/data/...) in a new, NUL-terminated buffer the
 * caller frees; NULL if missing. len may be NULL. */
char *th_read_file(const char *path, size_t *len);
/* Write text to path (created or truncated); fails the test if it cannot. */
void th_write_file(const char *path, const char *text);
void th_resp_free(struct th_resp *r);
/* The body parsed as JSON (caller deletes), or NULL. */
cJSON *th_json(const struct th_resp *r);
/* 1 if the body is a problem whose "errors" name field (a 422's list). */
int th_has_error_for(const struct th_resp *r, const char *field);
/* A string member of the body's JSON ("a.b" walks objects); static copy. */
const char *th_json_str(const struct th_resp *r, const char *path);

/* --- a server, a scheduler and a data set, for tests of whole jobs -------- */

/* Its own database, a server and a scheduler on it, and one CSV uploaded. */
struct th_stack {
    struct th_db db;
    struct th_server srv;
    struct th_scheduler sched;
    char dataset[64];         /* the uploaded data set's id */
};

/* Create the database, start the server and a scheduler with sched_extra
 * (as th_scheduler_start takes it), then upload csv_path as data set
 * csv_name. 0 or -1. */
int th_stack_start(struct th_stack *st, const char *const *sched_extra,
                   const char *csv_name, const char *csv_path);
/* Stop the scheduler and the server, drop the database; 0 if both exited
 * cleanly (see th_server_stop), else -1. */
int th_stack_stop(struct th_stack *st);

/* cmocka group fixtures for tests of whole jobs: th_jobs_setup starts
 * th_jobs (a scheduler with --slots=2, tests/data/tabular/iris.csv uploaded
 * as "iris"), th_jobs_teardown stops it; both return 0 or -1. */
extern struct th_stack th_jobs;
int th_jobs_setup(void **state);
int th_jobs_teardown(void **state);

/* POST a CSV file as a new data set called name (text/csv) and copy its id
 * into id. 0, or -1 unless the answer is 201. */
int th_upload_csv(const struct th_server *s, const char *name, const char *path,
                  char *id, size_t id_len);
/* POST /v1/jobs with a JSON body; the test fails unless the answer is 202.
 * Returns the new job's id in a static buffer. */
const char *th_post_job(const struct th_server *s, const char *body);
/* POST the CSV file at csv_path to /v1/models/{model_id}/predict (text/csv
 * in, Accept: text/csv); out as th_http gives it. 0 if a response came
 * back, -1 if not or if the file cannot be read. */
int th_predict_csv(const struct th_server *s, const char *model_id, const char *csv_path,
                   struct th_resp *out);
/* Poll GET /v1/jobs/{id} every 100 ms until its state is want or a final
 * one (succeeded, failed, cancelled), or timeout_s passes; returns the last
 * state seen (static). The test fails if a poll does not answer 200. */
const char *th_wait_job(const struct th_server *s, const char *id, const char *want,
                        double timeout_s);

/* --- trainer binaries as child processes ---------------------------------- */

/* Run PODIUM_BIN_DIR/prog with arg1 and arg2 (the list ends at the first
 * NULL), stdin from in_path (NULL: /dev/null), stdout and stderr written
 * to out_path and err_path (truncated). Waits for it and returns the exit
 * code, or 128 + the signal; 120 if a file would not open, 121 if exec
 * failed. The test fails if fork does. */
int th_run(const char *prog, const char *arg1, const char *arg2, const char *in_path,
           const char *out_path, const char *err_path);
/* The last line of a JSON Lines file, parsed (the caller deletes it); the
 * test fails unless every line is a JSON object with an "event" member and
 * there is at least one. */
cJSON *th_last_event(const char *path);

/* Seconds on the monotonic clock. */
double th_now_s(void);

/* 1 if the log file holds an AddressSanitizer/UBSan report. */
int th_log_has_sanitizer_report(const char *path);

/* Run PODIUM_TEST_PGCTL with "stop" or "start". 0 or -1. */
int th_pg_ctl(const char *action);

/* A free TCP port on 127.0.0.1. */
int th_free_port(void);

#endif
