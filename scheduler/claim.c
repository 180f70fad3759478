/*
 * claim.c - claiming trials and completing jobs (claim.h). Loop thread.
 *
 * A transaction is a chain of callbacks: each step queues the next with
 * PGQ_FRONT so nothing else uses the connection in between. A lost
 * connection (res == NULL) ends the chain; PostgreSQL rolls back.
 */
#include "scheduler/claim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "lib/log.h"
#include "scheduler/space.h"
#include "scheduler/strategy.h"

/* What a trial needs from its job and data set; the same columns (from
 * index J) in the takeover and the proposal queries. */
#define JOB_COLS                                                                         \
    "j.id, j.team_id, j.target, j.task, j.metric, j.cv::text, j.seed, "                  \
    "j.trial_timeout_seconds, "                                                          \
    "extract(epoch from (coalesce(j.started_at, now()) + j.max_seconds * "               \
    "interval '1 second' - now()))::float8, "                                            \
    "d.kind, d.format, encode(b.sha256, 'hex'), b.lo, b.encoding, j.cancel_requested, "  \
    "j.state, b.size, j.options::text"
#define JOB_FROM                                                                         \
    "jobs j LEFT JOIN datasets d ON d.id = j.dataset_id "                                \
    "LEFT JOIN blobs b ON b.id = d.blob_id"
#define N_JOB_COLS 18

static const char SQL_TAKEOVER[] =
    "UPDATE trials t SET lease_owner = $1, "
    "lease_expires_at = now() + $2::int * interval '1 second', "
    "attempts = t.attempts + 1, started_at = now(), progress = NULL, learning_curve = '[]' "
    "FROM (SELECT id FROM trials WHERE state = 'running' AND lease_expires_at < now() "
    "      AND ($3::text[] IS NULL OR family = ANY($3::text[])) "
    "      ORDER BY lease_expires_at LIMIT 1 FOR UPDATE SKIP LOCKED) c, " JOB_FROM " "
    "WHERE t.id = c.id AND j.id = t.job_id "
    "RETURNING t.id, t.seq, t.attempts, t.family, t.params::text, " JOB_COLS;

static const char SQL_LOCK_JOB[] =
    "SELECT " JOB_COLS ", j.higher_is_better, array_to_json(j.models)::text, j.strategy, "
    "j.strategy_state::text, j.max_trials, j.parallelism, j.max_failed_trials, "
    "j.dataset_id IS NULL "
    "FROM " JOB_FROM " "
    "WHERE j.state IN ('queued', 'running') AND NOT j.cancel_requested "
    "AND ($1::text[] IS NULL OR j.models && $1::text[]) "
    "AND (j.started_at IS NULL OR now() < j.started_at + j.max_seconds * interval '1 second') "
    "AND (SELECT count(*) FROM trials t WHERE t.job_id = j.id AND t.state = 'running') "
    "    < j.parallelism "
    "AND (SELECT count(*) FROM trials t WHERE t.job_id = j.id) < j.max_trials "
    "AND (SELECT count(*) FROM trials t WHERE t.job_id = j.id AND t.state = 'failed') "
    "    <= j.max_failed_trials "
    "ORDER BY j.created_at, j.id LIMIT 1 FOR UPDATE OF j SKIP LOCKED";

static const char SQL_HISTORY[] =
    "SELECT seq, family, params::text, state, score, details::text FROM trials "
    "WHERE job_id = $1 "
    "ORDER BY seq";

static const char SQL_INSERT[] =
    "WITH ins AS (INSERT INTO trials (job_id, team_id, seq, state, family, params, "
    "  lease_owner, lease_expires_at, started_at) "
    "  VALUES ($1, $2, $3::int, 'running', $4, $5::jsonb, $6, "
    "          now() + $7::int * interval '1 second', now()) RETURNING id), "
    "upd AS (UPDATE jobs SET state = 'running', started_at = coalesce(started_at, now()), "
    "  strategy_state = $8::jsonb WHERE id = $1 "
    "  RETURNING extract(epoch from (started_at + max_seconds * interval '1 second' - now()))"
    "  ::float8 AS budget_left) "
    "SELECT ins.id, upd.budget_left FROM ins, upd";

static const char SQL_FAIL_JOB[] =
    "UPDATE jobs SET state = 'failed', error = $2, finished_at = now(), "
    "started_at = coalesce(started_at, now()) WHERE id = $1";

/* Ensemble selection at the end of a job (trainers/ensemble.h): a job that
 * would complete successfully (not cancelled, no trial running, out of
 * trials, time or allowed failures, at least 2 succeeded trials) and has
 * no 'ensemble' trial yet gets one more trial, family 'ensemble', over its
 * top CLAIM_ENSEMBLE_K succeeded trials; SQL_COMPLETE leaves such a job
 * alone until that trial exists. Not past the job's hard end (budget plus
 * one trial timeout: the runner would kill it there anyway). Not for image
 * jobs (options.nas): ensembles are over tabular out-of-fold predictions.
 * Not for lr_find jobs: their one trial is a curve, not a model. */
#define CLAIM_ENSEMBLE_K "10"
#define CLAIM_ENSEMBLE_ROUNDS 50
#define ENSEMBLE_WANTED                                                                  \
    "(NOT j.cancel_requested AND NOT j.options ? 'nas' AND j.strategy <> 'lr_find' "    \
    " AND (SELECT count(*) FROM trials t WHERE t.job_id = j.id AND t.state = 'succeeded' " \
    "      AND t.family <> 'ensemble' AND t.score IS NOT NULL "                          \
    "      AND t.artifact_lo IS NOT NULL AND t.oof_lo IS NOT NULL) >= 2 "                \
    " AND NOT EXISTS (SELECT 1 FROM trials t WHERE t.job_id = j.id "                     \
    "      AND t.family = 'ensemble') "                                                  \
    " AND (j.started_at IS NULL OR now() < j.started_at + (j.max_seconds + "             \
    "      j.trial_timeout_seconds) * interval '1 second'))"
#define JOB_OVER                                                                         \
    "((SELECT count(*) FROM trials t WHERE t.job_id = j.id) >= j.max_trials "            \
    "  OR (j.started_at IS NOT NULL AND now() >= j.started_at + j.max_seconds * "        \
    "      interval '1 second') "                                                        \
    "  OR (SELECT count(*) FROM trials t WHERE t.job_id = j.id AND t.state = 'failed') " \
    "      > j.max_failed_trials)"

static const char SQL_LOCK_ENSEMBLE[] =
    "SELECT " JOB_COLS ", j.higher_is_better "
    "FROM " JOB_FROM " "
    "WHERE j.state IN ('queued', 'running') "
    "AND NOT EXISTS (SELECT 1 FROM trials t WHERE t.job_id = j.id AND t.state = 'running') "
    "AND " JOB_OVER " AND " ENSEMBLE_WANTED " "
    "ORDER BY j.created_at, j.id LIMIT 1 FOR UPDATE OF j SKIP LOCKED";

/* Re-read with a snapshot taken after the lock: nothing running, no
 * ensemble yet, the next seq, the members (best first). */
static const char SQL_ENSEMBLE_MEMBERS[] =
    "SELECT (SELECT count(*) FROM trials WHERE job_id = $1 "
    "        AND (family = 'ensemble' OR state = 'running')), "
    "(SELECT coalesce(max(seq), 0) FROM trials WHERE job_id = $1), "
    "(SELECT coalesce(json_agg(id ORDER BY r), '[]')::text FROM "
    "  (SELECT id, row_number() OVER (ORDER BY CASE WHEN $2::bool THEN -score ELSE score END, "
    "   seq) AS r FROM trials WHERE job_id = $1 AND state = 'succeeded' "
    "   AND family <> 'ensemble' AND score IS NOT NULL AND artifact_lo IS NOT NULL "
    "   AND oof_lo IS NOT NULL ORDER BY r LIMIT " CLAIM_ENSEMBLE_K ") m)";

static const char SQL_INSERT_ENSEMBLE[] =
    "WITH ins AS (INSERT INTO trials (job_id, team_id, seq, state, family, params, "
    "  lease_owner, lease_expires_at, started_at) "
    "  VALUES ($1, $2, $3::int, 'running', 'ensemble', $4::jsonb, $5, "
    "          now() + $6::int * interval '1 second', now()) RETURNING id) "
    "SELECT ins.id, extract(epoch from (coalesce(j.started_at, now()) + j.max_seconds * "
    "  interval '1 second' - now()))::float8 FROM ins, jobs j WHERE j.id = $1";

static const char SQL_COMPLETE[] =
    "UPDATE jobs j SET "
    "state = CASE WHEN j.cancel_requested THEN 'cancelled' "
    "  WHEN EXISTS (SELECT 1 FROM trials t WHERE t.job_id = j.id AND t.state = 'succeeded') "
    "  THEN 'succeeded' ELSE 'failed' END, "
    "error = CASE WHEN j.cancel_requested OR EXISTS (SELECT 1 FROM trials t "
    "  WHERE t.job_id = j.id AND t.state = 'succeeded') THEN j.error "
    "  ELSE coalesce('no trial succeeded; the last failure: ' || (SELECT t.failure_reason "
    "  FROM trials t WHERE t.job_id = j.id AND t.state = 'failed' ORDER BY t.seq DESC "
    "  LIMIT 1), 'no trial succeeded') END, "
    "started_at = coalesce(j.started_at, now()), finished_at = now() "
    "WHERE j.id = ANY($1::uuid[]) AND j.state IN ('queued', 'running') "
    "AND NOT EXISTS (SELECT 1 FROM trials t WHERE t.job_id = j.id AND t.state = 'running') "
    "AND (j.cancel_requested "
    "  OR (SELECT count(*) FROM trials t WHERE t.job_id = j.id) >= j.max_trials "
    "  OR (j.started_at IS NOT NULL AND now() >= j.started_at + j.max_seconds * "
    "      interval '1 second') "
    "  OR (SELECT count(*) FROM trials t WHERE t.job_id = j.id AND t.state = 'failed') "
    "      > j.max_failed_trials) "
    "AND NOT " ENSEMBLE_WANTED " "
    "RETURNING j.id, j.state";

void claim_trial_free(struct claim_trial *t)
{
    if (t == NULL) return;
    free(t->family);
    free(t->params);
    free(t->target);
    free(t->task);
    free(t->metric);
    free(t->cv);
    free(t->kind);
    free(t->format);
    free(t->sha256_hex);
    free(t->options);
    free(t);
}

static char *dup_val(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col)) return NULL;
    return strdup(PQgetvalue(r, row, col));
}

/* Fill the job part of t from columns J.. of row 0. 0 or -1 (memory). */
static int job_from_row(struct claim_trial *t, const PGresult *r, int J)
{
    snprintf(t->job_id, sizeof t->job_id, "%s", PQgetvalue(r, 0, J));
    t->target = dup_val(r, 0, J + 2);
    t->task = dup_val(r, 0, J + 3);
    t->metric = dup_val(r, 0, J + 4);
    t->cv = dup_val(r, 0, J + 5);
    t->seed = strtoll(PQgetvalue(r, 0, J + 6), NULL, 10);
    t->trial_timeout = atoi(PQgetvalue(r, 0, J + 7));
    t->budget_left = strtod(PQgetvalue(r, 0, J + 8), NULL);
    t->kind = dup_val(r, 0, J + 9);
    t->format = dup_val(r, 0, J + 10);
    t->sha256_hex = dup_val(r, 0, J + 11);
    t->lo = (unsigned)strtoul(PQgetvalue(r, 0, J + 12), NULL, 10);
    t->zstd = strcmp(PQgetvalue(r, 0, J + 13), "zstd") == 0;
    t->size = strtoll(PQgetvalue(r, 0, J + 16), NULL, 10);
    t->options = dup_val(r, 0, J + 17);
    if (!t->target || !t->task || !t->metric || !t->cv || !t->options) return -1;
    return 0;
}

/* --- one claim: takeover, else proposal ------------------------------------ */

/* Columns of the locked job beyond JOB_COLS. */
struct job_extra {
    int higher_is_better;
    char *models, *strategy, *state;
    int max_trials, parallelism, max_failed;
    int no_dataset;
};

struct claim {
    struct job_extra x;
    struct pgloop *pl;
    struct claim_config cfg;
    claim_cb cb;
    void *ctx;
    struct claim_trial *t;
    char lease_s[16];
    char team_id[40];
    char *fail_reason;     /* the job cannot go on: fail it */
    char *only;            /* NULL, or the families that may be claimed ("{a,b}") */
};

static void extra_free(struct job_extra *x)
{
    free(x->models);
    free(x->strategy);
    free(x->state);
    memset(x, 0, sizeof *x);
}

static void done(struct claim *c, struct claim_trial *t)
{
    if (t != c->t) claim_trial_free(c->t);
    extra_free(&c->x);
    c->cb(c->ctx, t);
    free(c->fail_reason);
    free(c->only);
    free(c);
}

static void on_rolled_back(void *ctx, PGresult *res)
{
    (void)res;
    done(ctx, NULL);
}

static void abort_tx(struct claim *c)
{
    if (pgloop_query(c->pl, "ROLLBACK", 0, NULL, PGQ_FRONT, on_rolled_back, c) < 0) done(c, NULL);
}

/* A step failed: res NULL = the connection is gone (and with it the
 * transaction); else log and roll back. */
static void rollback(struct claim *c, PGresult *res, const char *why)
{
    if (res == NULL) {
        done(c, NULL);
        return;
    }
    if (why != NULL && PQresultStatus(res) == PGRES_FATAL_ERROR)
        log_msg(LOG_WARN, "proposing a trial: %s: %s", why, PQresultErrorMessage(res));
    abort_tx(c);
}

static void on_committed(void *ctx, PGresult *res)
{
    struct claim *c = ctx;
    if (!pgloop_ok(res)) {
        /* lost at COMMIT: if it did commit, the lease expires and another
         * claim takes the trial over */
        done(c, NULL);
        return;
    }
    if (c->fail_reason) {
        log_msg(LOG_WARN, "job %s failed: %s", c->t->job_id, c->fail_reason);
        done(c, NULL);
        return;
    }
    log_msg(LOG_INFO, "trial %s: job %s seq %d, %s %s", c->t->id, c->t->job_id, c->t->seq,
            c->t->family, c->t->params);
    done(c, c->t);
}

static void commit(struct claim *c)
{
    if (pgloop_query(c->pl, "COMMIT", 0, NULL, PGQ_FRONT, on_committed, c) < 0) done(c, NULL);
}

static void on_inserted(void *ctx, PGresult *res)
{
    struct claim *c = ctx;
    if (!pgloop_ok(res) || PQntuples(res) != 1) {
        rollback(c, res, "insert");
        return;
    }
    snprintf(c->t->id, sizeof c->t->id, "%s", PQgetvalue(res, 0, 0));
    c->t->budget_left = strtod(PQgetvalue(res, 0, 1), NULL);
    c->t->attempts = 1;
    commit(c);
}

static void on_job_failed(void *ctx, PGresult *res)
{
    struct claim *c = ctx;
    if (!pgloop_ok(res)) {
        rollback(c, res, "failing the job");
        return;
    }
    commit(c);
}

static void fail_job(struct claim *c, const char *reason)
{
    c->fail_reason = strdup(reason);
    const char *v[] = {c->t->job_id, reason};
    if (pgloop_query(c->pl, SQL_FAIL_JOB, 2, v, PGQ_FRONT, on_job_failed, c) < 0) abort_tx(c);
}

static int trial_state(const char *s)
{
    if (strcmp(s, "succeeded") == 0) return ST_SUCCEEDED;
    if (strcmp(s, "failed") == 0) return ST_FAILED;
    if (strcmp(s, "cancelled") == 0) return ST_CANCELLED;
    return ST_RUNNING;
}

static void on_history(void *ctx, PGresult *res);

/* --- the ensemble trial ---------------------------------------------------- */

static void on_ensemble_members(void *ctx, PGresult *res)
{
    struct claim *c = ctx;
    if (!pgloop_ok(res) || PQntuples(res) != 1) {
        rollback(c, res, "read the ensemble members");
        return;
    }
    cJSON *ids = cJSON_Parse(PQgetvalue(res, 0, 2));
    if (atoi(PQgetvalue(res, 0, 0)) != 0 || !cJSON_IsArray(ids) || cJSON_GetArraySize(ids) < 2) {
        cJSON_Delete(ids);
        abort_tx(c);   /* another scheduler was first, or too few members */
        return;
    }
    cJSON *params = cJSON_CreateObject();
    char *text = NULL;
    if (params) {
        cJSON_AddItemToObject(params, "members", ids);
        ids = NULL;
        cJSON_AddNumberToObject(params, "rounds", CLAIM_ENSEMBLE_ROUNDS);
        text = cJSON_PrintUnformatted(params);
    }
    cJSON_Delete(ids);
    cJSON_Delete(params);
    c->t->seq = atoi(PQgetvalue(res, 0, 1)) + 1;
    c->t->family = strdup("ensemble");
    c->t->params = text ? strdup(text) : NULL;
    char seq_s[16];
    snprintf(seq_s, sizeof seq_s, "%d", c->t->seq);
    const char *v[] = {c->t->job_id, c->team_id, seq_s, text, c->cfg.owner, c->lease_s};
    if (!text || !c->t->family || !c->t->params ||
        pgloop_query(c->pl, SQL_INSERT_ENSEMBLE, 6, v, PGQ_FRONT, on_inserted, c) < 0)
        abort_tx(c);
    cJSON_free(text);
}

/* The trial to be of the job row just locked (JOB_COLS first). 0 or -1. */
static int take_job_row(struct claim *c, const PGresult *res)
{
    c->t = calloc(1, sizeof *c->t);
    if (c->t == NULL || job_from_row(c->t, res, 0) < 0) return -1;
    snprintf(c->team_id, sizeof c->team_id, "%s", PQgetvalue(res, 0, 1));
    return 0;
}

static void on_ensemble_locked(void *ctx, PGresult *res)
{
    struct claim *c = ctx;
    if (!pgloop_ok(res)) {
        rollback(c, res, "lock a job for its ensemble");
        return;
    }
    if (PQntuples(res) == 0) {
        abort_tx(c);
        return;
    }
    if (take_job_row(c, res) < 0) {
        abort_tx(c);
        return;
    }
    const char *v[] = {c->t->job_id, PQgetvalue(res, 0, N_JOB_COLS)[0] == 't' ? "true" : "false"};
    if (pgloop_query(c->pl, SQL_ENSEMBLE_MEMBERS, 2, v, PGQ_FRONT, on_ensemble_members, c) < 0)
        abort_tx(c);
}

static void on_locked(void *ctx, PGresult *res)
{
    struct claim *c = ctx;
    if (!pgloop_ok(res)) {
        rollback(c, res, "lock a job");
        return;
    }
    if (PQntuples(res) == 0) {
        /* no job with room: maybe one that wants its ensemble (a CPU
         * trial: not when only GPU slots are free) */
        if (c->only) {
            abort_tx(c);
            return;
        }
        if (pgloop_query(c->pl, SQL_LOCK_ENSEMBLE, 0, NULL, PGQ_FRONT, on_ensemble_locked, c) < 0)
            abort_tx(c);
        return;
    }
    if (take_job_row(c, res) < 0) {
        abort_tx(c);
        return;
    }
    struct job_extra *x = &c->x;
    int J = N_JOB_COLS;
    x->higher_is_better = PQgetvalue(res, 0, J)[0] == 't';
    x->models = dup_val(res, 0, J + 1);
    x->strategy = dup_val(res, 0, J + 2);
    x->state = dup_val(res, 0, J + 3);
    x->max_trials = atoi(PQgetvalue(res, 0, J + 4));
    x->parallelism = atoi(PQgetvalue(res, 0, J + 5));
    x->max_failed = atoi(PQgetvalue(res, 0, J + 6));
    x->no_dataset = PQgetvalue(res, 0, J + 7)[0] == 't';
    const char *v[] = {c->t->job_id};
    if (pgloop_query(c->pl, SQL_HISTORY, 1, v, PGQ_FRONT, on_history, c) < 0) abort_tx(c);
}


static void on_history(void *ctx, PGresult *res)
{
    struct claim *c = ctx;
    struct job_extra *x = &c->x;
    char err[256] = "";
    struct strategy st = {0};
    cJSON *models = NULL, *state = NULL, *params = NULL, *saved = NULL, **hp = NULL, **hd = NULL;
    cJSON *options = NULL;
    struct strategy_trial *hist = NULL;
    const char **names = NULL;
    char *params_text = NULL, *saved_text = NULL;
    if (!pgloop_ok(res)) {
        extra_free(x);
        rollback(c, res, "read the history");
        return;
    }
    int n = PQntuples(res), running = 0, failed = 0, max_seq = 0;
    for (int i = 0; i < n; i++) {
        const char *s = PQgetvalue(res, i, 3);
        running += strcmp(s, "running") == 0;
        failed += strcmp(s, "failed") == 0;
        int seq = atoi(PQgetvalue(res, i, 0));
        if (seq > max_seq) max_seq = seq;
    }
    /* Re-check with a snapshot taken after the lock: exact counts. */
    if (running >= x->parallelism || n >= x->max_trials || failed > x->max_failed) {
        extra_free(x);
        abort_tx(c);
        return;
    }
    if (x->no_dataset || c->t->kind == NULL || c->t->sha256_hex == NULL) {
        extra_free(x);
        fail_job(c, "the job's data set was deleted");
        return;
    }
    const struct strategy_ops *ops = strategy_find(x->strategy);
    /* an image job's random search draws genotypes (nas.c) */
    if (ops == &strategy_random && c->t->kind && strcmp(c->t->kind, "images") == 0)
        ops = &strategy_nas_random;
    if (ops == NULL) {
        /* a strategy this build does not know (a newer server wrote it) */
        log_msg(LOG_WARN, "job %s: strategy %s is not built in yet; using random search",
                c->t->job_id, x->strategy);
        ops = &strategy_random;
    }
    models = cJSON_Parse(x->models ? x->models : "[]");
    state = cJSON_Parse(x->state ? x->state : "{}");
    int nm = cJSON_GetArraySize(models);
    names = calloc((size_t)nm + 1, sizeof *names);
    hist = calloc((size_t)n + 1, sizeof *hist);
    hp = calloc((size_t)n + 1, sizeof *hp);
    hd = calloc((size_t)n + 1, sizeof *hd);
    options = cJSON_Parse(c->t->options ? c->t->options : "{}");
    if (models == NULL || names == NULL || hist == NULL || hp == NULL || hd == NULL) {
        snprintf(err, sizeof err, "out of memory");
        goto oom;
    }
    int kept = 0;
    for (int i = 0; i < nm; i++) {
        const cJSON *m = cJSON_GetArrayItem(models, i);
        const char *name = cJSON_IsString(m) ? m->valuestring : "";
        /* only GPU slots free: propose among the job's GPU families */
        if (c->only && !space_family_uses_gpu(name)) continue;
        names[kept++] = name;
    }
    nm = kept;
    /* the strategy sees its own trials only: an ensemble trial (a budget
     * raised after it ran) is no point of its search space */
    size_t nh = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(PQgetvalue(res, i, 1), "ensemble") == 0) continue;
        hp[nh] = cJSON_Parse(PQgetvalue(res, i, 2));
        hist[nh].seq = atoi(PQgetvalue(res, i, 0));
        hist[nh].family = PQgetvalue(res, i, 1);
        hist[nh].params = hp[nh];
        hist[nh].state = trial_state(PQgetvalue(res, i, 3));
        hist[nh].score = PQgetisnull(res, i, 4) ? 0 : strtod(PQgetvalue(res, i, 4), NULL);
        hist[nh].details = hd[nh] = PQgetisnull(res, i, 5) ? NULL : cJSON_Parse(PQgetvalue(res, i, 5));
        nh++;
    }
    struct strategy_job sj = {
        .models = names, .n_models = (size_t)nm, .task = space_task_parse(c->t->task),
        .seed = (uint64_t)c->t->seed, .higher_is_better = x->higher_is_better,
        .max_trials = x->max_trials, .options = options,
    };
    const char *family = NULL;
    if (strategy_new(&st, ops, &sj, state, err, sizeof err) < 0 ||
        strategy_next(&st, hist, nh, &family, &params, err, sizeof err) < 0) {
        strategy_free(&st);
        for (int i = 0; i < n; i++) {
            cJSON_Delete(hp[i]);
            cJSON_Delete(hd[i]);
        }
        free(hp);
        free(hd);
        cJSON_Delete(options);
        free(hist);
        free(names);
        cJSON_Delete(models);
        cJSON_Delete(state);
        extra_free(x);
        fail_job(c, err);
        return;
    }
    saved = strategy_save(&st);
    params_text = cJSON_PrintUnformatted(params);
    saved_text = saved ? cJSON_PrintUnformatted(saved) : NULL;
    c->t->family = strdup(family);
    c->t->params = params_text ? strdup(params_text) : NULL;
    c->t->seq = max_seq + 1;
    if (!params_text || !saved_text || !c->t->family || !c->t->params) goto oom;
    char seq_s[16];
    snprintf(seq_s, sizeof seq_s, "%d", c->t->seq);
    const char *v[] = {c->t->job_id, c->team_id, seq_s, family, params_text, c->cfg.owner,
                       c->lease_s, saved_text};
    if (pgloop_query(c->pl, SQL_INSERT, 8, v, PGQ_FRONT, on_inserted, c) < 0) goto oom;
    goto out;
oom:
    abort_tx(c);
out:
    strategy_free(&st);
    for (int i = 0; hp && i < n; i++) cJSON_Delete(hp[i]);
    for (int i = 0; hd && i < n; i++) cJSON_Delete(hd[i]);
    free(hp);
    free(hd);
    cJSON_Delete(options);
    free(hist);
    free(names);
    cJSON_Delete(models);
    cJSON_Delete(state);
    cJSON_Delete(params);
    cJSON_Delete(saved);
    cJSON_free(params_text);
    cJSON_free(saved_text);
    /* c may be gone here (done() frees it and its extra columns) */
}

static void on_begun(void *ctx, PGresult *res)
{
    struct claim *c = ctx;
    if (!pgloop_ok(res)) {
        rollback(c, res, "begin");
        return;
    }
    const char *v[] = {c->only};
    if (pgloop_query(c->pl, SQL_LOCK_JOB, 1, v, PGQ_FRONT, on_locked, c) < 0) abort_tx(c);
}

static void on_takeover(void *ctx, PGresult *res)
{
    struct claim *c = ctx;
    if (res == NULL) {
        done(c, NULL);
        return;
    }
    if (!pgloop_ok(res)) log_msg(LOG_WARN, "takeover: %s", PQresultErrorMessage(res));
    if (pgloop_ok(res) && PQntuples(res) == 1) {
        struct claim_trial *t = calloc(1, sizeof *t);
        if (t == NULL || job_from_row(t, res, 5) < 0) {
            claim_trial_free(t);
            done(c, NULL);
            return;
        }
        snprintf(t->id, sizeof t->id, "%s", PQgetvalue(res, 0, 0));
        t->seq = atoi(PQgetvalue(res, 0, 1));
        t->attempts = atoi(PQgetvalue(res, 0, 2));
        t->family = dup_val(res, 0, 3);
        t->params = dup_val(res, 0, 4);
        const char *cancel = PQgetvalue(res, 0, 5 + 14), *state = PQgetvalue(res, 0, 5 + 15);
        if (cancel[0] == 't' || (strcmp(state, "queued") != 0 && strcmp(state, "running") != 0)) {
            t->finish_state = "cancelled";
            snprintf(t->finish_reason, sizeof t->finish_reason,
                     "its scheduler stopped and the job was cancelled");
        } else if (t->budget_left <= 0) {
            t->finish_state = "failed";
            snprintf(t->finish_reason, sizeof t->finish_reason,
                     "its scheduler stopped (lease expired) after the job's time budget; "
                     "not run again");
        }
        log_msg(LOG_INFO, "trial %s: took over (job %s seq %d, attempt %d)%s", t->id, t->job_id,
                t->seq, t->attempts, t->finish_state ? "; finishing it" : "");
        c->t = t;
        done(c, t);
        return;
    }
    if (pgloop_query(c->pl, "BEGIN", 0, NULL, 0 | PGQ_FRONT, on_begun, c) < 0) done(c, NULL);
}

/* "{name,...}" of the families that can use a GPU. */
static char *gpu_family_array(void)
{
    size_t cap = 3, len = 0;
    for (size_t i = 0; space_gpu_families[i]; i++) cap += strlen(space_gpu_families[i]) + 1;
    char *a = malloc(cap);
    if (a == NULL) return NULL;
    a[len++] = '{';
    for (size_t i = 0; space_gpu_families[i]; i++)
        len += (size_t)snprintf(a + len, cap - len, "%s%s", i ? "," : "", space_gpu_families[i]);
    snprintf(a + len, cap - len, "}");
    return a;
}

int claim_next(struct pgloop *pl, const struct claim_config *cfg, int gpu_only, claim_cb cb,
               void *ctx)
{
    struct claim *c = calloc(1, sizeof *c);
    if (c == NULL) return -1;
    c->pl = pl;
    c->cfg = *cfg;
    c->cb = cb;
    c->ctx = ctx;
    snprintf(c->lease_s, sizeof c->lease_s, "%d", cfg->lease_seconds);
    if (gpu_only && (c->only = gpu_family_array()) == NULL) {
        free(c);
        return -1;
    }
    const char *v[] = {cfg->owner, c->lease_s, c->only};
    if (pgloop_query(pl, SQL_TAKEOVER, 3, v, 0, on_takeover, c) < 0) {
        free(c->only);
        free(c);
        return -1;
    }
    return 0;
}

/* --- completing jobs ------------------------------------------------------------ */

static void on_complete_done(void *ctx, PGresult *res) { (void)ctx; (void)res; }

static void on_completed(void *ctx, PGresult *res)
{
    struct pgloop *pl = ctx;
    if (res == NULL) return;
    if (!pgloop_ok(res)) {
        log_msg(LOG_WARN, "completing jobs: %s", PQresultErrorMessage(res));
        pgloop_query(pl, "ROLLBACK", 0, NULL, PGQ_FRONT, on_complete_done, NULL);
        return;
    }
    for (int i = 0; i < PQntuples(res); i++)
        log_msg(LOG_INFO, "job %s %s", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
    pgloop_query(pl, "COMMIT", 0, NULL, PGQ_FRONT, on_complete_done, NULL);
}

static void on_complete_locked(void *ctx, PGresult *res)
{
    struct pgloop *pl = ctx;
    if (res == NULL) return;
    if (!pgloop_ok(res) || PQntuples(res) == 0) {
        if (!pgloop_ok(res)) log_msg(LOG_WARN, "completing jobs: %s", PQresultErrorMessage(res));
        pgloop_query(pl, "ROLLBACK", 0, NULL, PGQ_FRONT, on_complete_done, NULL);
        return;
    }
    /* {id,id,...} */
    size_t cap = (size_t)PQntuples(res) * 40 + 3, len = 0;
    char *arr = malloc(cap);
    if (arr == NULL) {
        pgloop_query(pl, "ROLLBACK", 0, NULL, PGQ_FRONT, on_complete_done, NULL);
        return;
    }
    arr[len++] = '{';
    for (int i = 0; i < PQntuples(res); i++)
        len += (size_t)snprintf(arr + len, cap - len, "%s%s", i ? "," : "", PQgetvalue(res, i, 0));
    snprintf(arr + len, cap - len, "}");
    const char *v[] = {arr};
    if (pgloop_query(pl, SQL_COMPLETE, 1, v, PGQ_FRONT, on_completed, pl) < 0)
        pgloop_query(pl, "ROLLBACK", 0, NULL, PGQ_FRONT, on_complete_done, NULL);
    free(arr);
}

struct complete_req {
    struct pgloop *pl;
    char job_id[40];
};

static void on_complete_begun(void *ctx, PGresult *res)
{
    struct complete_req *q = ctx;
    struct pgloop *pl = q->pl;
    char id[40];
    snprintf(id, sizeof id, "%s", q->job_id);
    free(q);
    if (res == NULL) return;
    if (!pgloop_ok(res)) {
        pgloop_query(pl, "ROLLBACK", 0, NULL, PGQ_FRONT, on_complete_done, NULL);
        return;
    }
    /* One job: wait for its lock (proposals hold it for milliseconds).
     * Every job: skip the locked ones, the next sweep gets them. */
    int rc;
    if (id[0]) {
        const char *v[] = {id};
        rc = pgloop_query(pl,
                          "SELECT id FROM jobs WHERE id = $1 AND state IN ('queued', 'running') "
                          "FOR UPDATE",
                          1, v, PGQ_FRONT, on_complete_locked, pl);
    } else {
        rc = pgloop_query(pl,
                          "SELECT id FROM jobs WHERE state IN ('queued', 'running') "
                          "FOR UPDATE SKIP LOCKED",
                          0, NULL, PGQ_FRONT, on_complete_locked, pl);
    }
    if (rc < 0) pgloop_query(pl, "ROLLBACK", 0, NULL, PGQ_FRONT, on_complete_done, NULL);
}

void claim_complete_jobs(struct pgloop *pl, const char *job_id)
{
    struct complete_req *q = calloc(1, sizeof *q);
    if (q == NULL) return;
    q->pl = pl;
    if (job_id) snprintf(q->job_id, sizeof q->job_id, "%s", job_id);
    if (pgloop_query(pl, "BEGIN", 0, NULL, 0, on_complete_begun, q) < 0) free(q);
}
