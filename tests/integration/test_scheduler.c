/* test_scheduler.c - the real bin/podium-scheduler (and podium-train) as
 * child processes on a fresh database per test: a search job end to end,
 * a trainer killed mid-trial, a scheduler killed and its trials taken over,
 * three schedulers sharing a job, cancellation, the time budget, and
 * PostgreSQL restarting under a running job. A job with two or more
 * succeeded trials ends with one more, family 'ensemble' (the counts of
 * the search's own trials leave it out). Data sets are inserted with
 * lib/blob.h (zstd, as the server stores CSV) and jobs with SQL.
 * PODIUM_TEST_KEEP_DB=1 keeps each test's database for a post-mortem. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <zlib.h>

#include "lib/blob.h"
#include "lib/migrate.h"
#include "tests/support/harness.h"

#define MAX_SCHED 4

struct ctx {
    char syn[40];            /* 4000 rows x 10 features, 3 classes */
    struct th_db db;
    PGconn *conn;
    char team[40];
    char dataset[40];
    char cache[512];
    pid_t sched[MAX_SCHED];
    char log[MAX_SCHED][600];
    int n;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {}
}

/* One value of a query (static copy; "" for NULL or no row). */
static const char *q1(PGconn *c, const char *fmt, ...)
{
    static char out[4096];
    char sql[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "query failed: %s: %s", sql, PQerrorMessage(c));
        PQclear(r);
        fail();
    }
    snprintf(out, sizeof out, "%s", PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    return out;
}

static long qn(PGconn *c, const char *fmt, ...)
{
    char sql[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    return atol(q1(c, "%s", sql));
}

/* Reconnect after a PostgreSQL restart. */
static void reconnect(struct ctx *x)
{
    if (PQstatus(x->conn) == CONNECTION_OK) {
        PGresult *r = PQexec(x->conn, "SELECT 1");
        int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
        PQclear(r);
        if (ok) return;
    }
    PQfinish(x->conn);
    x->conn = th_db_connect(&x->db);
    assert_non_null(x->conn);
}

static void add_dataset_as(struct ctx *x, const char *path, const char *kind,
                           const char *format, int zstd, char *out_id)
{
    size_t len;
    char *data = th_read_file(path, &len);
    assert_non_null(data);
    char err[256];
    PQclear(PQexec(x->conn, "BEGIN"));
    struct blob_writer *w = blob_writer_new(x->conn, err, sizeof err);
    assert_non_null(w);
    if (zstd) assert_int_equal(blob_writer_compress(w), 0);
    assert_int_equal(blob_writer_write(w, data, len, err, sizeof err), 0);
    assert_int_equal(blob_writer_close(w, err, sizeof err), 0);
    unsigned char sha[32];
    char hex[65];
    blob_writer_sha256(w, sha);
    crypto_hex(sha, 32, hex);
    char sql[1024];
    snprintf(sql, sizeof sql,
             "WITH b AS (INSERT INTO blobs (team_id, sha256, lo, size, encoding) "
             "VALUES ('%s', '\\x%s', %u, %zu, '%s') RETURNING id) "
             "INSERT INTO datasets (team_id, blob_id, name, kind, format, content_type, profile) "
             "SELECT '%s', id, 'd', '%s', '%s', 'text/csv', '{}' FROM b RETURNING id",
             x->team, hex, blob_writer_oid(w), len, zstd ? "zstd" : "identity", x->team, kind,
             format);
    blob_writer_free(w);
    snprintf(out_id, 40, "%s", q1(x->conn, "%s", sql));
    PQclear(PQexec(x->conn, "COMMIT"));
    free(data);
}

/* A data set on which a trial takes seconds (mlp ~3 s, gbm ~1.5 s). */
static void write_synthetic(char *path, size_t len)
{
    snprintf(path, len, "%s/synthetic.csv", getenv("PODIUM_TEST_TMP"));
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int j = 0; j < 10; j++) fprintf(f, "x%d,", j);
    fprintf(f, "species\n");
    uint64_t r = 12345;
    for (int i = 0; i < 4000; i++) {
        int c = i % 3;
        for (int j = 0; j < 10; j++) {
            r = r * 6364136223846793005ULL + 1442695040888963407ULL;
            double u = (double)(r >> 11) / 9007199254740992.0;
            fprintf(f, "%.3f,", c * 0.3 + 2 * u);
        }
        fprintf(f, "c%d\n", c);
    }
    fclose(f);
}

static void add_dataset(struct ctx *x, const char *path, char *out_id)
{
    add_dataset_as(x, path, "tabular", "csv", 1, out_id);
}

static int setup(void **state)
{
    struct ctx *x = calloc(1, sizeof *x);
    assert_non_null(x);
    assert_int_equal(th_db_create(&x->db), 0);
    x->conn = th_db_connect(&x->db);
    assert_non_null(x->conn);
    char err[256];
    assert_true(migrate_apply(x->conn, podium_migrations, podium_migrations_count, err,
                              sizeof err) >= 0);
    snprintf(x->team, sizeof x->team, "%s",
             q1(x->conn, "INSERT INTO teams (name) VALUES ('t') RETURNING id"));
    add_dataset(x, "tests/data/tabular/iris.csv", x->dataset);
    char syn[600];
    write_synthetic(syn, sizeof syn);
    add_dataset(x, syn, x->syn);
    snprintf(x->cache, sizeof x->cache, "%s/cache-%s", getenv("PODIUM_TEST_TMP"), x->db.name);
    *state = x;
    return 0;
}

static int stop_sched(struct ctx *x, int i);

static int teardown(void **state)
{
    struct ctx *x = *state;
    for (int i = 0; i < x->n; i++) stop_sched(x, i);
    PQfinish(x->conn);
    if (getenv("PODIUM_TEST_KEEP_DB") == NULL) th_db_drop(&x->db);
    free(x);
    return 0;
}

/* A job; extra is "col = value" pairs overriding the defaults. */
static const char *add_job(struct ctx *x, const char *models, int max_trials, int parallelism,
                           int max_seconds, int trial_timeout, const char *dataset)
{
    static char id[40];
    snprintf(id, sizeof id, "%s",
             q1(x->conn,
                "INSERT INTO jobs (team_id, dataset_id, target, task, metric, "
                "higher_is_better, models, strategy, max_trials, max_seconds, "
                "trial_timeout_seconds, max_failed_trials, parallelism, cv, seed) "
                "VALUES ('%s', '%s', 'species', 'classification', 'accuracy', true, "
                "'%s', 'random', %d, %d, %d, 3, %d, '{\"folds\": 3}', 42) RETURNING id",
                x->team, dataset ? dataset : x->dataset, models, max_trials, max_seconds,
                trial_timeout, parallelism));
    q1(x->conn, "NOTIFY podium_jobs, '%s'", id);
    return id;
}

/* Start a scheduler with extra args (NULL-terminated). Returns its index. */
static int start_sched(struct ctx *x, const char *id, ...)
{
    assert_true(x->n < MAX_SCHED);
    int i = x->n++;
    const char *bin = getenv("PODIUM_BIN_DIR");
    char path[600];
    snprintf(path, sizeof path, "%s/podium-scheduler", bin ? bin : "bin");
    char tmp[300], name[64];
    snprintf(tmp, sizeof tmp, "%s", getenv("PODIUM_TEST_TMP") ? getenv("PODIUM_TEST_TMP") : "/tmp");
    snprintf(name, sizeof name, "%s", x->db.name);
    snprintf(x->log[i], sizeof x->log[i], "%s/%s-%s.log", tmp, name, id);
    const char *argv[32];
    int a = 0;
    static char db_arg[700], cache_arg[700], id_arg[200];
    argv[a++] = path;
    snprintf(db_arg, sizeof db_arg, "--database-url=%s", x->db.conninfo);
    snprintf(cache_arg, sizeof cache_arg, "--cache-dir=%s", x->cache);
    snprintf(id_arg, sizeof id_arg, "--id=%s", id);
    argv[a++] = db_arg;
    argv[a++] = cache_arg;
    argv[a++] = id_arg;
    argv[a++] = "--sweep-seconds=1";
    va_list ap;
    va_start(ap, id);
    const char *s;
    while ((s = va_arg(ap, const char *)) != NULL && a < 30) argv[a++] = s;
    va_end(ap);
    argv[a] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(x->log[i], O_WRONLY | O_CREAT | O_APPEND, 0644);
        int in = open("/dev/null", O_RDONLY);
        if (fd < 0 || in < 0) _exit(120);
        dup2(in, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(path, (char *const *)argv);
        _exit(121);
    }
    x->sched[i] = pid;
    return i;
}

/* SIGTERM, wait up to 15 s; the exit status (-1: had to SIGKILL). */
static int stop_sched(struct ctx *x, int i)
{
    if (x->sched[i] <= 0) return 0;
    kill(x->sched[i], SIGTERM);
    int st = 0;
    double t0 = now_s();
    for (;;) {
        pid_t p = waitpid(x->sched[i], &st, WNOHANG);
        if (p == x->sched[i]) break;
        if (now_s() - t0 > 15) {
            kill(x->sched[i], SIGKILL);
            waitpid(x->sched[i], &st, 0);
            x->sched[i] = 0;
            return -1;
        }
        sleep_ms(50);
    }
    x->sched[i] = 0;
    if (th_log_has_sanitizer_report(x->log[i])) return -2;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void kill_sched(struct ctx *x, int i)
{
    kill(x->sched[i], SIGKILL);
    waitpid(x->sched[i], NULL, 0);
    x->sched[i] = 0;
}

static void dump_logs(struct ctx *x)
{
    for (int i = 0; i < x->n; i++) {
        size_t len;
        char *s = th_read_file(x->log[i], &len);
        if (s) {
            fprintf(stderr, "---- %s (last 6000 bytes)\n%s\n", x->log[i],
                    len > 6000 ? s + len - 6000 : s);
            free(s);
        }
    }
}

static int log_contains(struct ctx *x, int i, const char *what)
{
    size_t len;
    char *s = th_read_file(x->log[i], &len);
    int found = s != NULL && strstr(s, what) != NULL;
    free(s);
    return found;
}

/* Wait until the job is in a final state; returns it ("" on timeout). */
static const char *wait_job(struct ctx *x, const char *job, double timeout)
{
    static char st[32];
    double t0 = now_s();
    while (now_s() - t0 < timeout) {
        reconnect(x);
        snprintf(st, sizeof st, "%s", q1(x->conn, "SELECT state FROM jobs WHERE id = '%s'", job));
        if (strcmp(st, "succeeded") == 0 || strcmp(st, "failed") == 0 ||
            strcmp(st, "cancelled") == 0)
            return st;
        sleep_ms(50);
    }
    dump_logs(x);
    return "";
}

/* pids of podium-train processes whose parent is ppid (0: any of ours). */
static int trainer_pids(pid_t ppid, pid_t *out, int max)
{
    DIR *d = opendir("/proc");
    int n = 0;
    if (d == NULL) return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < max) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0) continue;
        char path[300], cmd[1024];
        snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
        FILE *f = fopen(path, "r");
        if (f == NULL) continue;
        size_t len = fread(cmd, 1, sizeof cmd - 1, f);
        fclose(f);
        cmd[len] = '\0';
        /* the whole command line: a script's argv[0] is its interpreter */
        for (size_t k = 0; k < len; k++)
            if (cmd[k] == '\0') cmd[k] = ' ';
        if (strstr(cmd, "podium-train") == NULL) continue;
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        f = fopen(path, "r");
        if (f == NULL) continue;
        char stat[1024];
        len = fread(stat, 1, sizeof stat - 1, f);
        fclose(f);
        stat[len] = '\0';
        const char *rp = strrchr(stat, ')');
        char state = 0;
        long parent = 0;
        if (rp == NULL || sscanf(rp + 2, "%c %ld", &state, &parent) != 2) continue;
        if (state == 'Z') continue;
        if (ppid == 0 || parent == ppid) out[n++] = (pid_t)pid;
    }
    closedir(d);
    return n;
}

static void check_no_dup_seq(struct ctx *x, const char *job)
{
    assert_int_equal(qn(x->conn,
                        "SELECT count(*) FROM (SELECT seq FROM trials WHERE job_id = '%s' "
                        "GROUP BY seq HAVING count(*) > 1) d",
                        job),
                     0);
    assert_int_equal(qn(x->conn, "SELECT coalesce(max(seq), 0) - count(*) FROM trials "
                                 "WHERE job_id = '%s'", job), 0);
}

/* 1: iris, random search over four families, 8 trials, 2 at a time. */
static void test_iris_job(void **state)
{
    struct ctx *x = *state;
    start_sched(x, "a", "--slots=2", NULL);
    char job[40];
    snprintf(job, sizeof job, "%s", add_job(x, "{linear,knn,nb,gbm}", 8, 2, 600, 120, NULL));
    const char *st = wait_job(x, job, 60);
    if (strcmp(st, "succeeded") != 0) dump_logs(x);
    assert_string_equal(st, "succeeded");
    assert_int_equal(qn(x->conn, "SELECT count(*) FROM trials WHERE job_id = '%s' AND state = "
                                 "'succeeded' AND family <> 'ensemble'", job), 8);
    check_no_dup_seq(x, job);
    /* then one ensemble over them, as the last trial (trainers/ensemble.h) */
    assert_int_equal(qn(x->conn, "SELECT count(*) FROM trials WHERE job_id = '%s' AND "
                                 "family = 'ensemble' AND state = 'succeeded' AND seq = 9", job), 1);
    /* known-good first: the families' defaults in the job's order */
    assert_string_equal(q1(x->conn, "SELECT string_agg(family || params::text, ' ' ORDER BY seq) "
                                    "FROM trials WHERE job_id = '%s' AND seq <= 4", job),
                        "linear{} knn{} nb{} gbm{}");
    double best = atof(q1(x->conn, "SELECT max(score) FROM trials WHERE job_id = '%s'", job));
    assert_true(best >= 0.93);
    assert_int_equal(qn(x->conn, "SELECT count(*) FROM trials WHERE job_id = '%s' AND "
                                 "(artifact_lo IS NULL OR oof_lo IS NULL OR "
                                 "length(artifact_sha256) <> 32 OR metrics IS NULL "
                                 "OR fit_seconds IS NULL OR model_bytes IS NULL)", job), 0);
    assert_true(qn(x->conn, "SELECT min(length(lo_get(artifact_lo))) FROM trials "
                            "WHERE job_id = '%s'", job) > 0);
    assert_int_equal(qn(x->conn, "SELECT count(*) FROM trials WHERE job_id = '%s' AND "
                                 "artifact_sha256 <> sha256(lo_get(artifact_lo))", job), 0);
    assert_true(strlen(q1(x->conn, "SELECT finished_at FROM jobs WHERE id = '%s'", job)) > 0);
    /* the temp files are gone */
    char dir[700];
    snprintf(dir, sizeof dir, "%s/trials", x->cache);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d)) != NULL) files += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(files, 0);
    assert_int_equal(stop_sched(x, 0), 0);
}

/* A job row with every column given (SQL fragments). */
static const char *add_job_sql(struct ctx *x, const char *dataset, const char *target,
                               const char *task, const char *models, int max_trials,
                               int trial_timeout, int max_failed)
{
    static char id[40];
    snprintf(id, sizeof id, "%s",
             q1(x->conn,
                "INSERT INTO jobs (team_id, dataset_id, target, task, metric, "
                "higher_is_better, models, strategy, max_trials, max_seconds, "
                "trial_timeout_seconds, max_failed_trials, parallelism, cv, seed) "
                "VALUES ('%s', '%s', '%s', '%s', '%s', %s, '%s', 'random', %d, 600, %d, %d, "
                "1, '{\"holdout\": 0.25}', 1) RETURNING id",
                x->team, dataset, target, task,
                strcmp(task, "regression") == 0 ? "rmse" : "accuracy",
                strcmp(task, "regression") == 0 ? "false" : "true", models, max_trials,
                trial_timeout, max_failed));
    q1(x->conn, "NOTIFY podium_jobs, '%s'", id);
    return id;
}

/* Wait for a podium-train child of the scheduler; its pid or 0. */
static pid_t wait_trainer(pid_t sched, double timeout)
{
    double t0 = now_s();
    while (now_s() - t0 < timeout) {
        pid_t p[8];
        if (trainer_pids(sched, p, 8) > 0) return p[0];
        sleep_ms(5);
    }
    return 0;
}

/* 2: a trainer SIGKILLed mid-trial fails that trial only. */
static void test_trainer_killed(void **state)
{
    struct ctx *x = *state;
    int i = start_sched(x, "a", "--slots=1", NULL);
    char job[40];
    snprintf(job, sizeof job, "%s", add_job(x, "{gbm}", 3, 1, 600, 120, x->syn));
    pid_t p = wait_trainer(x->sched[i], 20);
    assert_true(p > 0);
    sleep_ms(200);
    kill(p, SIGKILL);
    assert_string_equal(wait_job(x, job, 60), "succeeded");
    assert_int_equal(qn(x->conn, "SELECT count(*) FROM trials WHERE job_id = '%s' AND state = "
                                 "'failed' AND failure_reason LIKE '%%SIGKILL%%'", job), 1);
    assert_int_equal(qn(x->conn, "SELECT count(*) FROM trials WHERE job_id = '%s' AND state = "
                                 "'succeeded' AND family <> 'ensemble'", job), 2);
    assert_int_equal(stop_sched(x, i), 0);
}

/* 3: a scheduler SIGKILLed mid-job; another takes its trials over. */
static void test_takeover(void **state)
{
    struct ctx *x = *state;
    int a = start_sched(x, "a", "--slots=2", "--lease-seconds=3", NULL);
    char job[40];
    snprintf(job, sizeof job, "%s", add_job(x, "{gbm,rf}", 4, 2, 600, 120, x->syn));
    assert_true(wait_trainer(x->sched[a], 20) > 0);
    sleep_ms(300);
    long running = qn(x->conn, "SELECT count(*) FROM trials WHERE job_id = '%s' AND state = "
                               "'running'", job);
    assert_true(running >= 1);
    kill_sched(x, a);
    int b = start_sched(x, "b", "--slots=2", "--lease-seconds=3", NULL);
    assert_string_equal(wait_job(x, job, 60), "succeeded");
    assert_int_equal(qn(x->conn, "SELECT count(*) FROM trials WHERE job_id = '%s' AND state = "
                                 "'succeeded' AND family <> 'ensemble'", job), 4);
    check_no_dup_seq(x, job);
    assert_int_equal(qn(x->conn, "SELECT max(attempts) FROM trials WHERE job_id = '%s'", job), 2);
    assert_int_equal(qn(x->conn, "SELECT count(*) FROM trials WHERE job_id = '%s' AND "
                                 "attempts = 2 AND lease_owner = 'b'", job), running);
    assert_int_equal(stop_sched(x, b), 0);
}

/* 4: three schedulers share one job: every seq once, every trial run once. */
static void test_three_schedulers(void **state)
{
    struct ctx *x = *state;
    int s[3];
    s[0] = start_sched(x, "a", "--slots=2", NULL);
    s[1] = start_sched(x, "b", "--slots=2", NULL);
    s[2] = start_sched(x, "c", "--slots=2", NULL);
    char job[40];
    snprintf(job, sizeof job, "%s", add_job(x, "{linear,knn,nb,gbm}", 12, 3, 600, 120, NULL));
    /* watch: never more than parallelism running at once */
    double t0 = now_s();
    long peak = 0;
    while (now_s() - t0 < 60) {
        long r = qn(x->conn, "SELECT count(*) FROM trials WHERE job_id = '%s' AND state = "
                             "'running'", job);
        if (r > peak) peak = r;
        if (strcmp(q1(x->conn, "SELECT state FROM jobs WHERE id = '%s'", job), "succeeded") == 0)
            break;
        sleep_ms(10);
    }
    assert_string_equal(wait_job(x, job, 1), "succeeded");
    assert_true(peak <= 3);
    assert_int_equal(qn(x->conn, "SELECT count(*) FROM trials WHERE job_id = '%s' AND state = "
                                 "'succeeded' AND family <> 'ensemble'", job), 12);
    check_no_dup_seq(x, job);
    /* three schedulers, one ensemble */
    assert_int_equal(qn(x->conn, "SELECT count(*) FROM trials WHERE job_id = '%s' AND "
                                 "family = 'ensemble'", job), 1);
    /* taken over never: so each trial ran exactly once */
    assert_int_equal(qn(x->conn, "SELECT max(attempts) FROM trials WHERE job_id = '%s'", job), 1);
    for (int i = 0; i < 3; i++) assert_int_equal(stop_sched(x, s[i]), 0);
}

/* 5: cancellation stops the running trials within 2 s. */
static void test_cancel(void **state)
{
    struct ctx *x = *state;
    int i = start_sched(x, "a", "--slots=2", NULL);
    char job[40];
    snprintf(job, sizeof job, "%s", add_job(x, "{mlp}", 10, 2, 600, 120, x->syn));
    assert_true(wait_trainer(x->sched[i], 20) > 0);
    sleep_ms(500);
    /* a raised budget moves the running trials' hard end (budget plus
     * one trial timeout) along with it */
    q1(x->conn, "UPDATE jobs SET max_seconds = 1200 WHERE id = '%s'", job);
    q1(x->conn, "NOTIFY podium_jobs, '%s'", job);
    int moved = 0;
    for (int k = 0; k < 50 && !moved; k++, sleep_ms(100))
        moved = log_contains(x, i, "its hard end is now in");
    assert_true(moved);
    double t0 = now_s();
    q1(x->conn, "UPDATE jobs SET cancel_requested = true WHERE id = '%s'", job);
    q1(x->conn, "NOTIFY podium_jobs, '%s'", job);
    assert_string_equal(wait_job(x, job, 10), "cancelled");
    double took = now_s() - t0;
    fprintf(stderr, "cancelled in %.2f s\n", took);
    assert_true(took <= 2.0);
    assert_int_equal(qn(x->conn, "SELECT count(*) FROM trials WHERE job_id = '%s' AND state = "
                                 "'running'", job), 0);
    assert_true(qn(x->conn, "SELECT count(*) FROM trials WHERE job_id = '%s' AND state = "
                            "'cancelled'", job) >= 1);
    pid_t p[8];
    assert_int_equal(trainer_pids(x->sched[i], p, 8), 0);
    assert_int_equal(stop_sched(x, i), 0);
}

/* 6: the time budget: no trial starts after it, the job ends by budget +
 * one trial timeout. */
static void test_budget(void **state)
{
    struct ctx *x = *state;
    int i = start_sched(x, "a", "--slots=2", NULL);
    char job[40];
    snprintf(job, sizeof job, "%s", add_job(x, "{mlp}", 100, 2, 3, 4, x->syn));
    const char *st = wait_job(x, job, 30);
    assert_true(strcmp(st, "succeeded") == 0 || strcmp(st, "failed") == 0);
    assert_int_equal(qn(x->conn, "SELECT count(*) FROM trials t JOIN jobs j ON j.id = t.job_id "
                                 "WHERE j.id = '%s' AND t.started_at > j.started_at + "
                                 "interval '3 seconds' AND t.family <> 'ensemble'", job), 0);
    double over = atof(q1(x->conn, "SELECT extract(epoch from finished_at - started_at) "
                                   "FROM jobs WHERE id = '%s'", job));
    fprintf(stderr, "budget job took %.2f s\n", over);
    assert_true(over <= 3 + 4 + 1.5);
    assert_int_equal(qn(x->conn, "SELECT count(*) FROM trials WHERE job_id = '%s' AND state = "
                                 "'running'", job), 0);
    assert_int_equal(stop_sched(x, i), 0);
}

/* 7: PostgreSQL restarts during a job; the scheduler reconnects. */
static void test_pg_restart(void **state)
{
    struct ctx *x = *state;
    if (getenv("PODIUM_TEST_PGCTL") == NULL) skip();
    int i = start_sched(x, "a", "--slots=2", NULL);
    char job[40];
    snprintf(job, sizeof job, "%s", add_job(x, "{gbm,rf}", 4, 2, 600, 120, x->syn));
    assert_true(wait_trainer(x->sched[i], 20) > 0);
    assert_int_equal(th_pg_ctl("stop"), 0);
    sleep_ms(2500);   /* trials finish meanwhile: their results wait */
    assert_int_equal(th_pg_ctl("start"), 0);
    assert_string_equal(wait_job(x, job, 60), "succeeded");
    assert_true(log_contains(x, i, "database connection lost"));
    assert_int_equal(qn(x->conn, "SELECT count(*) FROM trials WHERE job_id = '%s' AND state = "
                                 "'succeeded' AND family <> 'ensemble'", job), 4);
    check_no_dup_seq(x, job);
    assert_int_equal(stop_sched(x, i), 0);
}

/* 8: a heartbeat that finds the lease gone kills the child; the trial is
 * then taken over (never two runs at once). The first attempt's "trainer"
 * is a script that never ends by itself, so only the kill can end it: a
 * real fit ends on its own after seconds (a minute on a loaded machine),
 * which a bound on time could not tell from the kill. The takeover runs
 * the real trainer. */
static void test_lease_stolen(void **state)
{
    struct ctx *x = *state;
    const char *bin = getenv("PODIUM_BIN_DIR");
    char real[600], script[600], mark[600], arg[700];
    snprintf(real, sizeof real, "%s/podium-train", bin ? bin : "bin");
    char *abs = realpath(real, NULL);
    assert_non_null(abs);
    /* the name holds "podium-train", which trainer_pids looks for */
    snprintf(script, sizeof script, "%s/%s-podium-train-stuck.sh", getenv("PODIUM_TEST_TMP"),
             x->db.name);
    snprintf(mark, sizeof mark, "%s/%s-attempt-1", getenv("PODIUM_TEST_TMP"), x->db.name);
    FILE *f = fopen(script, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\n"
               "if [ ! -e '%s' ]; then\n"
               "  : > '%s'\n"
               "  while :; do sleep 1 </dev/null >/dev/null 2>&1; done\n"
               "fi\n"
               "exec '%s' \"$@\"\n", mark, mark, abs);
    fclose(f);
    free(abs);
    assert_int_equal(chmod(script, 0755), 0);
    snprintf(arg, sizeof arg, "--trainer=%s", script);
    int i = start_sched(x, "a", "--slots=1", "--lease-seconds=3", arg, NULL);
    char job[40];
    snprintf(job, sizeof job, "%s", add_job(x, "{mlp}", 1, 1, 600, 120, x->syn));
    pid_t p = wait_trainer(x->sched[i], 20);
    assert_true(p > 0);
    q1(x->conn, "UPDATE trials SET lease_owner = 'ghost' WHERE job_id = '%s'", job);
    /* the heartbeat (1 s) notices within the lease (3 s): past it another
     * scheduler may take the trial over */
    double t0 = now_s();
    while (!log_contains(x, i, "no longer ours") && now_s() - t0 < 30) sleep_ms(20);
    double noticed = now_s() - t0;
    fprintf(stderr, "lease loss noticed in %.2f s\n", noticed);
    if (!log_contains(x, i, "no longer ours")) dump_logs(x);
    assert_true(log_contains(x, i, "no longer ours"));
    assert_true(noticed < 3.5);
    /* then SIGTERM (SIGKILL after 1 s): only that ends this child */
    double t1 = now_s();
    for (;;) {
        pid_t q[8];
        if (kill(p, 0) != 0 || trainer_pids(x->sched[i], q, 8) == 0 || q[0] != p) break;
        if (now_s() - t1 > 30) break;
        sleep_ms(20);
    }
    double gone = now_s() - t1;
    fprintf(stderr, "its child gone %.2f s later\n", gone);
    if (gone >= 1 + 4) dump_logs(x);
    assert_true(gone < 1 + 4);
    /* the takeover runs a whole fit: on a loaded machine a minute or more */
    assert_string_equal(wait_job(x, job, 180), "succeeded");
    assert_true(log_contains(x, i, "our lease was lost; child stopped"));
    assert_string_equal(q1(x->conn, "SELECT attempts || ' ' || lease_owner FROM trials "
                                    "WHERE job_id = '%s'", job), "2 a");
    assert_int_equal(stop_sched(x, i), 0);
}

/* 9: SIGTERM mid-trial: exit 0, the trial handed back at once, resumed by
 * the next scheduler as attempt 2. */
static void test_graceful_stop(void **state)
{
    struct ctx *x = *state;
    int a = start_sched(x, "a", "--slots=1", NULL);
    char job[40];
    snprintf(job, sizeof job, "%s", add_job(x, "{gbm}", 1, 1, 600, 120, x->syn));
    assert_true(wait_trainer(x->sched[a], 20) > 0);
    double t0 = now_s();
    assert_int_equal(stop_sched(x, a), 0);
    fprintf(stderr, "graceful stop in %.2f s\n", now_s() - t0);
    assert_true(now_s() - t0 < 5);
    assert_int_equal(qn(x->conn, "SELECT count(*) FROM trials WHERE job_id = '%s' AND state = "
                                 "'running' AND lease_expires_at <= now()", job), 1);
    int b = start_sched(x, "b", "--slots=1", NULL);
    assert_string_equal(wait_job(x, job, 60), "succeeded");
    assert_string_equal(q1(x->conn, "SELECT attempts || ' ' || lease_owner FROM trials "
                                    "WHERE job_id = '%s'", job), "2 b");
    assert_int_equal(stop_sched(x, b), 0);
}

/* 10: a trial over its timeout is killed and failed with that reason; a
 * job with no trial succeeding fails with the last reason. */
static void test_trial_timeout(void **state)
{
    struct ctx *x = *state;
    int i = start_sched(x, "a", "--slots=1", NULL);
    char job[40];
    snprintf(job, sizeof job, "%s",
             add_job_sql(x, x->syn, "species", "classification", "{mlp}", 1, 1, 0));
    double t0 = now_s();
    assert_string_equal(wait_job(x, job, 30), "failed");
    fprintf(stderr, "timed-out job failed in %.2f s\n", now_s() - t0);
    assert_true(now_s() - t0 < 1 + 3 + 2);
    assert_int_equal(qn(x->conn, "SELECT count(*) FROM trials WHERE job_id = '%s' AND state = "
                                 "'failed' AND failure_reason LIKE 'timed out after 1 s%%'", job),
                     1);
    assert_non_null(strstr(q1(x->conn, "SELECT error FROM jobs WHERE id = '%s'", job),
                           "timed out"));
    assert_int_equal(stop_sched(x, i), 0);
}

/* 11: data sets and jobs the search cannot serve: a csv.gz upload is
 * gunzipped into the cache; an image data set fails its trials with a
 * clear reason; a job whose families all miss its task fails at once. */
static void test_formats_and_bad_jobs(void **state)
{
    struct ctx *x = *state;
    char gz[600], gz_id[40], img_id[40];
    snprintf(gz, sizeof gz, "%s/iris-%s.csv.gz", getenv("PODIUM_TEST_TMP"), x->db.name);
    size_t len;
    char *csv = th_read_file("tests/data/tabular/iris.csv", &len);
    assert_non_null(csv);
    gzFile g = gzopen(gz, "wb");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, csv, (unsigned)len), (int)len);
    gzclose(g);
    free(csv);
    add_dataset_as(x, gz, "tabular", "csv.gz", 0, gz_id);
    snprintf(img_id, sizeof img_id, "%s",
             q1(x->conn, "INSERT INTO datasets (team_id, blob_id, name, kind, format, "
                         "content_type, profile) SELECT team_id, blob_id, 'img', 'images', "
                         "'zip', 'application/zip', '{}' FROM datasets WHERE id = '%s' "
                         "RETURNING id", gz_id));

    int i = start_sched(x, "a", "--slots=2", NULL);
    char j1[40], j2[40], j3[40];
    snprintf(j1, sizeof j1, "%s",
             add_job_sql(x, gz_id, "species", "classification", "{knn}", 2, 60, 0));
    snprintf(j2, sizeof j2, "%s",
             add_job_sql(x, img_id, "species", "classification", "{knn}", 2, 60, 0));
    snprintf(j3, sizeof j3, "%s",
             add_job_sql(x, x->dataset, "petal_width_(cm)", "regression", "{nb}", 2, 60, 0));
    assert_string_equal(wait_job(x, j1, 30), "succeeded");
    assert_true(atof(q1(x->conn, "SELECT max(score) FROM trials WHERE job_id = '%s'", j1)) >= 0.9);
    assert_string_equal(wait_job(x, j2, 30), "failed");
    /* an "image" data set whose bytes are a CSV: the trainer says what is wrong */
    const char *why = q1(x->conn, "SELECT failure_reason FROM trials WHERE job_id = '%s'", j2);
    if (strstr(why, "archive") == NULL) fail_msg("failure reason: %s", why);
    assert_string_equal(wait_job(x, j3, 30), "failed");
    assert_int_equal(qn(x->conn, "SELECT count(*) FROM trials WHERE job_id = '%s'", j3), 0);
    assert_non_null(strstr(q1(x->conn, "SELECT error FROM jobs WHERE id = '%s'", j3),
                           "no model family"));
    assert_int_equal(stop_sched(x, i), 0);
}

/* 12: a trainer whose output is not valid UTF-8 (a log cut inside a
 * character, stray bytes in stderr and in a progress event's strings)
 * still stores its result: PostgreSQL refuses invalid UTF-8, so the
 * scheduler repairs text from its children (U+FFFD) instead of failing
 * the trial. The trainer here is a shell script around the real one. */
static void test_bad_utf8_output(void **state)
{
    struct ctx *x = *state;
    const char *bin = getenv("PODIUM_BIN_DIR");
    char real[600], script[600], arg[700];
    snprintf(real, sizeof real, "%s/podium-train", bin ? bin : "bin");
    char *abs = realpath(real, NULL);
    assert_non_null(abs);
    snprintf(script, sizeof script, "%s/%s-trainer.sh", getenv("PODIUM_TEST_TMP"), x->db.name);
    FILE *f = fopen(script, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\n"
               "printf '{\"event\":\"iteration\",\"stage\":\"warm\\377up\",\"fold\":0,"
               "\"iteration\":1,\"total\":1,\"metric\":\"log_loss\",\"value\":1.5}\\n'\n"
               "'%s' \"$@\"\n"
               "rc=$?\n"
               "i=0; while [ $i -lt 3000 ]; do printf '\\303\\251'; i=$((i+1)); done >&2\n"
               "printf '\\377 end of log' >&2\n"
               "exit $rc\n", abs);
    fclose(f);
    free(abs);
    assert_int_equal(chmod(script, 0755), 0);
    snprintf(arg, sizeof arg, "--trainer=%s", script);
    int i = start_sched(x, "a", "--slots=1", arg, NULL);
    char job[40];
    snprintf(job, sizeof job, "%s", add_job(x, "{nb}", 1, 1, 600, 120, NULL));
    const char *st = wait_job(x, job, 60);
    if (strcmp(st, "succeeded") != 0) dump_logs(x);
    assert_string_equal(st, "succeeded");
    assert_int_equal(qn(x->conn, "SELECT count(*) FROM trials WHERE job_id = '%s' AND "
                                 "family = 'nb' AND state = 'succeeded'", job), 1);
    /* the stray bytes became U+FFFD; the tail holds whole characters only */
    assert_string_equal(q1(x->conn, "SELECT learning_curve->0->>'stage' FROM trials "
                                    "WHERE job_id = '%s' AND family = 'nb'", job),
                        "warm\xEF\xBF\xBDup");
    assert_string_equal(q1(x->conn, "SELECT right(stderr_tail, 13) FROM trials "
                                    "WHERE job_id = '%s' AND family = 'nb'", job),
                        "\xC3\xA9\xEF\xBF\xBD end of log");
    assert_string_equal(q1(x->conn, "SELECT left(stderr_tail, 1) FROM trials "
                                    "WHERE job_id = '%s' AND family = 'nb'", job),
                        "\xC3\xA9");
    assert_int_equal(stop_sched(x, i), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_iris_job, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trainer_killed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_takeover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_three_schedulers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_stolen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_graceful_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trial_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_formats_and_bad_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_utf8_output, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
