/* harness.c - see harness.h. */
#include "tests/support/harness.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <curl/curl.h>

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

static PGconn *admin_connect(void)
{
    PGconn *c = PQconnectdb(env_or("PODIUM_TEST_PG", "dbname=postgres"));
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "harness: cannot connect to the test cluster: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

int th_db_create(struct th_db *db)
{
    static int seq;
    snprintf(db->name, sizeof db->name, "podium_test_%ld_%d", (long)getpid(), seq++);
    PGconn *c = admin_connect();
    if (c == NULL) return -1;
    char sql[160];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db->name);
    PGresult *res = PQexec(c, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok) fprintf(stderr, "harness: %s", PQerrorMessage(c));
    PQclear(res);
    PQfinish(c);
    snprintf(db->conninfo, sizeof db->conninfo, "%s dbname=%s",
             env_or("PODIUM_TEST_PG", ""), db->name);
    return ok ? 0 : -1;
}

void th_db_drop(struct th_db *db)
{
    PGconn *c = admin_connect();
    if (c == NULL) return;
    char sql[160];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db->name);
    PQclear(PQexec(c, sql));
    PQfinish(c);
}

PGconn *th_db_connect(const struct th_db *db)
{
    PGconn *c = PQconnectdb(db->conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "harness: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

int th_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int th_server_start(struct th_server *s, const struct th_db *db, const char *const *extra)
{
    memset(s, 0, sizeof s[0]);
    static int seq;
    const char *tmp = env_or("PODIUM_TEST_TMP", "/tmp");
    snprintf(s->log_path, sizeof s->log_path, "%s/server-%ld-%d.log", tmp, (long)getpid(), seq);
    snprintf(s->key_path, sizeof s->key_path, "%s/key-%ld-%d", tmp, (long)getpid(), seq++);
    unlink(s->key_path);
    s->port = th_free_port();
    if (s->port < 0) return -1;

    char bin[512], port[32], url[640], keyfile[600];
    snprintf(bin, sizeof bin, "%s/podium-server", env_or("PODIUM_BIN_DIR", "bin"));
    snprintf(port, sizeof port, "--port=%d", s->port);
    snprintf(url, sizeof url, "--database-url=%s", db->conninfo);
    snprintf(keyfile, sizeof keyfile, "--bootstrap-key-file=%s", s->key_path);
    const char *argv[32] = {bin, port, url, keyfile, "--threads=4"};
    int argc = 5;
    for (int i = 0; extra && extra[i] && argc < 31; i++) argv[argc++] = extra[i];
    argv[argc] = NULL;

    s->pid = fork();
    if (s->pid < 0) return -1;
    if (s->pid == 0) {
        int fd = open(s->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 300; i++) {
        struct th_resp r;
        if (th_http(s, "GET", "/healthz", NULL, NULL, NULL, 0, &r) == 0 && r.status == 200) {
            th_resp_free(&r);
            FILE *f = fopen(s->key_path, "r");
            if (f) {
                if (fgets(s->key, sizeof s->key, f)) s->key[strcspn(s->key, "\n")] = '\0';
                fclose(f);
            }
            return 0;
        }
        if (r.body) th_resp_free(&r);
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            fprintf(stderr, "harness: podium-server exited early; see %s\n", s->log_path);
            s->pid = 0;
            return -1;
        }
        sleep_ms(50);
    }
    fprintf(stderr, "harness: podium-server did not answer /healthz\n");
    return -1;
}

/* 1 if the server's log holds a sanitizer report. Under SAN=1 a report
 * must fail the test even when the server itself exits 0. */
int th_log_has_sanitizer_report(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) return 0;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, "Sanitizer") != NULL || strstr(line, "runtime error:") != NULL;
    fclose(f);
    if (found) fprintf(stderr, "harness: sanitizer report in %s\n", path);
    return found;
}

int th_server_stop(struct th_server *s)
{
    if (s->pid <= 0) return -1;
    kill(s->pid, SIGTERM);
    for (int i = 0; i < 400; i++) {
        int status;
        pid_t w = waitpid(s->pid, &status, WNOHANG);
        if (w == s->pid) {
            s->pid = 0;
            if (th_log_has_sanitizer_report(s->log_path)) return -2;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        sleep_ms(50);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
    return -1;
}

int th_scheduler_start(struct th_scheduler *s, const struct th_db *db, const char *const *extra)
{
    static int seq;
    const char *tmp = env_or("PODIUM_TEST_TMP", "/tmp");
    snprintf(s->log_path, sizeof s->log_path, "%s/scheduler-%ld-%d.log", tmp, (long)getpid(), seq++);
    char bin[512], url[640], cache[600];
    snprintf(bin, sizeof bin, "%s/podium-scheduler", env_or("PODIUM_BIN_DIR", "bin"));
    snprintf(url, sizeof url, "--database-url=%s", db->conninfo);
    snprintf(cache, sizeof cache, "--cache-dir=%s/cache-%ld", tmp, (long)getpid());
    const char *argv[32] = {bin, url, cache, "--sweep-seconds=1"};
    int argc = 4;
    for (int i = 0; extra && extra[i] && argc < 31; i++) argv[argc++] = extra[i];
    argv[argc] = NULL;
    s->pid = fork();
    if (s->pid < 0) return -1;
    if (s->pid == 0) {
        int fd = open(s->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int in = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        if (in >= 0) dup2(in, STDIN_FILENO);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    return 0;
}

int th_scheduler_stop(struct th_scheduler *s)
{
    struct th_server as_server = {.pid = s->pid};
    snprintf(as_server.log_path, sizeof as_server.log_path, "%s", s->log_path);
    int rc = th_server_stop(&as_server);
    s->pid = 0;
    return rc;
}

/* --- HTTP ------------------------------------------------------------------ */

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    struct th_resp *r = ud;
    size_t len = size * n;
    char *b = realloc(r->body, r->body_len + len + 1);
    if (b == NULL) return 0;
    memcpy(b + r->body_len, data, len);
    r->body = b;
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return len;
}

static void copy_header(const char *line, size_t len, const char *name, char *out, size_t outlen)
{
    size_t n = strlen(name);
    if (len <= n + 1 || strncasecmp(line, name, n) != 0 || line[n] != ':') return;
    const char *v = line + n + 1;
    size_t vlen = len - n - 1;
    while (vlen && (*v == ' ')) v++, vlen--;
    while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n')) vlen--;
    if (vlen >= outlen) vlen = outlen - 1;
    memcpy(out, v, vlen);
    out[vlen] = '\0';
}

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
    struct th_resp *r = ud;
    size_t len = size * n;
    copy_header(data, len, "Content-Type", r->content_type, sizeof r->content_type);
    copy_header(data, len, "X-Request-Id", r->request_id, sizeof r->request_id);
    copy_header(data, len, "Location", r->location, sizeof r->location);
    copy_header(data, len, "Allow", r->allow, sizeof r->allow);
    copy_header(data, len, "WWW-Authenticate", r->www_authenticate, sizeof r->www_authenticate);
    copy_header(data, len, "ETag", r->etag, sizeof r->etag);
    return len;
}

int th_http_headers(const struct th_server *s, const char *method, const char *path,
                    const char *const *headers, const char *body, size_t body_len,
                    struct th_resp *out)
{
    memset(out, 0, sizeof *out);
    out->body = calloc(1, 1);
    CURL *c = curl_easy_init();
    if (c == NULL) return -1;
    char url[8192];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", s->port, path);
    struct curl_slist *h = NULL;
    for (int i = 0; headers && headers[i]; i++) h = curl_slist_append(h, headers[i]);
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return rc == CURLE_OK ? 0 : -1;
}

int th_http(const struct th_server *s, const char *method, const char *path,
            const char *key, const char *content_type, const char *body,
            size_t body_len, struct th_resp *out)
{
    char auth[256], ct[256];
    const char *headers[3] = {NULL, NULL, NULL};
    int n = 0;
    if (key) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
        headers[n++] = auth;
    }
    if (body) {
        snprintf(ct, sizeof ct, "Content-Type: %s", content_type ? content_type : "application/json");
        headers[n++] = ct;
    }
    return th_http_headers(s, method, path, headers, body, body_len, out);
}

int th_http_form(const struct th_server *s, const char *path, const char *key,
                 const char *name, const char *na, const char *file_name,
                 const void *data, size_t len, const char *part_type, struct th_resp *out)
{
    memset(out, 0, sizeof *out);
    out->body = calloc(1, 1);
    CURL *c = curl_easy_init();
    if (c == NULL) return -1;
    char url[4096], auth[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", s->port, path);
    struct curl_slist *h = NULL;
    if (key) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
        h = curl_slist_append(h, auth);
    }
    h = curl_slist_append(h, "Expect:");
    curl_mime *mime = curl_mime_init(c);
    curl_mimepart *part;
    if (name) {
        part = curl_mime_addpart(mime);
        curl_mime_name(part, "name");
        curl_mime_data(part, name, CURL_ZERO_TERMINATED);
    }
    if (na) {
        part = curl_mime_addpart(mime);
        curl_mime_name(part, "na");
        curl_mime_data(part, na, CURL_ZERO_TERMINATED);
    }
    if (data) {
        part = curl_mime_addpart(mime);
        curl_mime_name(part, "file");
        curl_mime_data(part, data, len);
        if (file_name) curl_mime_filename(part, file_name);
        if (part_type) curl_mime_type(part, part_type);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    curl_mime_free(mime);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return rc == CURLE_OK ? 0 : -1;
}

char *th_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        if (len) *len = (size_t)n;
    }
    return buf;
}

void th_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

void th_resp_free(struct th_resp *r)
{
    free(r->body);
    r->body = NULL;
}

cJSON *th_json(const struct th_resp *r)
{
    return r->body ? cJSON_Parse(r->body) : NULL;
}

const char *th_json_str(const struct th_resp *r, const char *path)
{
    static char out[1024];
    out[0] = '\0';
    cJSON *doc = th_json(r);
    cJSON *cur = doc;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, "."))
        cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
    const char *v = cJSON_GetStringValue(cur);
    if (v) snprintf(out, sizeof out, "%s", v);
    cJSON_Delete(doc);
    return v ? out : NULL;
}

int th_pg_ctl(const char *action)
{
    const char *cmd = getenv("PODIUM_TEST_PGCTL");
    if (cmd == NULL) return -1;
    char line[4096];
    snprintf(line, sizeof line, "%s %s >/dev/null 2>&1", cmd, action);
    int rc = system(line);
    return rc == 0 ? 0 : -1;
}

double th_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- jobs through the API --------------------------------------------------- */

int th_upload_csv(const struct th_server *s, const char *name, const char *path,
                  char *id, size_t id_len)
{
    size_t len;
    char *csv = th_read_file(path, &len);
    if (csv == NULL) return -1;
    char url[512];
    snprintf(url, sizeof url, "/v1/datasets?name=%s", name);
    struct th_resp r;
    int rc = th_http(s, "POST", url, s->key, "text/csv", csv, len, &r) == 0 && r.status == 201 ? 0 : -1;
    if (rc == 0) snprintf(id, id_len, "%s", th_json_str(&r, "id"));
    th_resp_free(&r);
    free(csv);
    return rc;
}

int th_stack_start(struct th_stack *st, const char *const *sched_extra,
                   const char *csv_name, const char *csv_path)
{
    if (th_db_create(&st->db) < 0 || th_server_start(&st->srv, &st->db, NULL) < 0) return -1;
    if (th_scheduler_start(&st->sched, &st->db, sched_extra) < 0) return -1;
    return th_upload_csv(&st->srv, csv_name, csv_path, st->dataset, sizeof st->dataset);
}

int th_stack_stop(struct th_stack *st)
{
    int a = th_scheduler_stop(&st->sched);
    int b = th_server_stop(&st->srv);
    th_db_drop(&st->db);
    return a == 0 && b == 0 ? 0 : -1;
}

struct th_stack th_jobs;

int th_jobs_setup(void **state)
{
    const char *extra[] = {"--slots=2", NULL};
    return th_stack_start(&th_jobs, extra, "iris", "tests/data/tabular/iris.csv");
}

int th_jobs_teardown(void **state)
{
    return th_stack_stop(&th_jobs);
}

const char *th_post_job(const struct th_server *s, const char *body)
{
    static char job[64];
    struct th_resp r;
    assert_int_equal(th_http(s, "POST", "/v1/jobs", s->key, NULL, body, strlen(body), &r), 0);
    assert_int_equal(r.status, 202);
    snprintf(job, sizeof job, "%s", th_json_str(&r, "id"));
    th_resp_free(&r);
    return job;
}

int th_predict_csv(const struct th_server *s, const char *model_id, const char *csv_path,
                   struct th_resp *out)
{
    size_t len;
    char *csv = th_read_file(csv_path, &len);
    if (csv == NULL) {
        memset(out, 0, sizeof *out);
        out->body = calloc(1, 1);
        return -1;
    }
    char path[200], auth[256];
    snprintf(path, sizeof path, "/v1/models/%s/predict", model_id);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", s->key);
    const char *h[] = {auth, "Content-Type: text/csv", "Accept: text/csv", NULL};
    int rc = th_http_headers(s, "POST", path, h, csv, len, out);
    free(csv);
    return rc;
}

const char *th_wait_job(const struct th_server *s, const char *id, const char *want,
                        double timeout_s)
{
    char path[160];
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    static char state[32];
    double t0 = th_now_s();
    while (th_now_s() - t0 < timeout_s) {
        struct th_resp r;
        assert_int_equal(th_http(s, "GET", path, s->key, NULL, NULL, 0, &r), 0);
        assert_int_equal(r.status, 200);
        snprintf(state, sizeof state, "%s", th_json_str(&r, "state"));
        th_resp_free(&r);
        if (strcmp(state, want) == 0 || strcmp(state, "succeeded") == 0 ||
            strcmp(state, "failed") == 0 || strcmp(state, "cancelled") == 0)
            return state;
        sleep_ms(100);
    }
    return state;
}

/* --- trainer binaries as child processes ------------------------------------ */

int th_run(const char *prog, const char *arg1, const char *arg2, const char *in_path,
           const char *out_path, const char *err_path)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", env_or("PODIUM_BIN_DIR", "bin"), prog);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int in = open(in_path ? in_path : "/dev/null", O_RDONLY);
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int er = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || out < 0 || er < 0) _exit(120);
        dup2(in, 0);
        dup2(out, 1);
        dup2(er, 2);
        execl(path, path, arg1, arg2, (char *)NULL);
        _exit(121);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

cJSON *th_last_event(const char *path)
{
    char *s = th_read_file(path, NULL);
    assert_non_null(s);
    cJSON *last = NULL;
    for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        if (j == NULL) fail_msg("stdout line is not JSON: %.200s", line);
        assert_non_null(cJSON_GetObjectItem(j, "event"));
        cJSON_Delete(last);
        last = j;
    }
    free(s);
    assert_non_null(last);
    return last;
}

int th_has_error_for(const struct th_resp *r, const char *field)
{
    cJSON *doc = th_json(r);
    int found = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(doc, "errors")) {
        const char *f = cJSON_GetStringValue(cJSON_GetObjectItem(e, "field"));
        found |= f != NULL && strcmp(f, field) == 0;
    }
    cJSON_Delete(doc);
    return found;
}
