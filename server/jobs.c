/*
 * jobs.c - see jobs.h. Everything is scoped by the caller's team.
 *
 * Here: what a job may ask for (metrics, model families) and POST
 * /v1/jobs; reading, re-budgeting and cancelling jobs, and their trials;
 * jobs_fetch, with which leaderboard.c reads a job too; and the cache of
 * rendered job resources (jobs_responses and the helpers after it), which
 * leaderboard.c and lrfind.c render into.
 *
 * A job, its trials and its leaderboard carry an ETag made from the job's
 * latest event seq (etag.h). A GET with If-None-Match is first held
 * against the seq the server knows from NOTIFY (events.h): when it
 * matches, the answer is 304 with no query at all. Otherwise the job is
 * read with its seq in the same statement, and the tag describes what was
 * read (the seq is read first, so a tag is never newer than its body).
 *
 * Leaderboards (leaderboard.c) and LR-finder results (lrfind.c) are also
 * kept rendered (rcache.h): a poll without If-None-Match of a body whose
 * version is known gets the bytes rendered for that version, and
 * concurrent misses wait for one render. The job's own GET is not kept
 * (its progress clock fields move between events, so a kept body would
 * be a stale one), nor are the trials (a full answer is read from the
 * database each time; tests/integration/test_events.c relies on that).
 */
#include "server/jobs.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/pgjson.h"
#include "server/etag.h"
#include "server/events.h"
#include "server/imagejobs.h"
#include "server/rcache.h"
#include "server/resource.h"
#include "server/server.h"
#include "server/validate.h"

/* --- what a job may ask for ----------------------------------------------------- */

static const struct jobs_metric metrics[] = {
    {"accuracy", 1, 1}, {"balanced_accuracy", 1, 1}, {"logloss", 1, 0},
    {"roc_auc", 1, 1},  {"f1_macro", 1, 1},          {"rmse", 0, 0},
    {"mae", 0, 0},      {"r2", 0, 1},
};

struct family_info { const char *name; int regression; };

static const struct family_info families[] = {
    {"linear", 1}, {"rf", 1}, {"extratrees", 1}, {"gbm", 1}, {"knn", 1}, {"nb", 0}, {"mlp", 1},
};

#define N_FAMILIES (sizeof families / sizeof families[0])

const struct jobs_metric *jobs_metric_find(const char *name)
{
    for (size_t i = 0; i < sizeof metrics / sizeof metrics[0]; i++)
        if (strcmp(metrics[i].name, name) == 0) return &metrics[i];
    return NULL;
}

static const struct family_info *family_find(const char *name)
{
    for (size_t i = 0; i < N_FAMILIES; i++)
        if (strcmp(families[i].name, name) == 0) return &families[i];
    return NULL;
}

/* Progress and the best trial so far, computed from the trials. */
#define JOB_PROGRESS                                                                  \
    ", (SELECT json_build_object("                                                     \
    "     'trials', count(*), 'succeeded', count(*) FILTER (WHERE t.state = 'succeeded')," \
    "     'running', count(*) FILTER (WHERE t.state = 'running'),"                     \
    "     'failed', count(*) FILTER (WHERE t.state = 'failed'),"                       \
    "     'cancelled', count(*) FILTER (WHERE t.state = 'cancelled'),"                 \
    "     'max_trials', j.max_trials,"                                                 \
    "     'elapsed_seconds', extract(epoch FROM coalesce(j.finished_at, now()) - j.started_at)," \
    "     'remaining_seconds', CASE WHEN j.started_at IS NULL THEN j.max_seconds"     \
    "        WHEN j.finished_at IS NOT NULL THEN 0"                                    \
    "        ELSE greatest(0, j.max_seconds - extract(epoch FROM now() - j.started_at)) END)" \
    "   FROM trials t WHERE t.job_id = j.id) AS progress,"                             \
    " (SELECT json_build_object('model_id', t.id, 'family', t.family, 'score', t.score," \
    "     'score_std', t.score_std, 'params', t.params)"                              \
    "   FROM trials t WHERE t.job_id = j.id AND t.state = 'succeeded'"                 \
    "     AND t.artifact_lo IS NOT NULL"                                                \
    "   ORDER BY CASE WHEN j.higher_is_better THEN -t.score ELSE t.score END, t.seq LIMIT 1) AS best"

#define not_found resource_not_found

/* An integer member in [lo, hi], dflt when absent. */
static long validate_int(struct validator *v, const cJSON *obj, const char *name, const char *field,
                         long lo, long hi, long dflt)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (it == NULL || cJSON_IsNull(it)) return dflt;
    double d = cJSON_GetNumberValue(it);
    if (!cJSON_IsNumber(it) || d != floor(d) || d < (double)lo || d > (double)hi) {
        validate_error(v, field, "must be an integer from %ld to %ld", lo, hi);
        return dflt;
    }
    return (long)d;
}

/* The dataset's profile facts a job needs: its kind, suggested target and
 * task, and the type and distinct count of the chosen target column. */
struct dataset_facts {
    int found;
    char kind[16];
    char target[256];
    char task[32];
    cJSON *profile;
};

static int load_dataset(struct http_req *r, const char *id, struct dataset_facts *f)
{
    memset(f, 0, sizeof *f);
    const char *p[2] = {id, r->auth.team_id};
    PGresult *res = pool_exec(&r->db,
        "SELECT kind, profile FROM datasets WHERE id = $1 AND team_id = $2", 2, p);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        PQclear(res);
        return -1;
    }
    if (PQntuples(res) == 1) {
        f->found = 1;
        snprintf(f->kind, sizeof f->kind, "%s", PQgetvalue(res, 0, 0));
        f->profile = cJSON_Parse(PQgetvalue(res, 0, 1));
        const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(f->profile, "target"));
        const char *k = cJSON_GetStringValue(cJSON_GetObjectItem(f->profile, "task"));
        snprintf(f->target, sizeof f->target, "%s", t ? t : "");
        snprintf(f->task, sizeof f->task, "%s", k ? k : "");
    }
    PQclear(res);
    return 0;
}

/* The task for a target other than the suggested one: from its column. */
static const char *task_of_column(const cJSON *profile, const char *target)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(profile, "columns")) {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(c, "name"));
        if (name == NULL || strcmp(name, target) != 0) continue;
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(c, "type"));
        double distinct = cJSON_GetNumberValue(cJSON_GetObjectItem(c, "distinct"));
        if (type && strcmp(type, "float") == 0) return "regression";
        if (type && strcmp(type, "integer") == 0) return distinct <= 20 ? "classification" : "regression";
        return "classification";
    }
    return NULL; /* no such column */
}

int jobs_create(struct http_req *r)
{
    int ret;
    cJSON *in = http_json_body(r, 0, &ret);
    if (in == NULL) return ret;
    if (http_db(r) == NULL) {
        cJSON_Delete(in);
        return http_problem_db_unavailable(r, "creating a job");
    }
    struct validator v;
    validator_init(&v);
    validate_only(&v, in, NULL, (const char *const[]){"dataset_id", "target", "task", "metric", "models",
                                                "strategy", "budget", "cv", "seed", "parallelism",
                                                "options", NULL});
    struct dataset_facts ds = {0};
    const char *dataset_id = validate_string(&v, in, "dataset_id", 1, 36, 36);
    if (dataset_id && !http_is_uuid(dataset_id)) {
        validate_error(&v, "dataset_id", "must be a data set id (a UUID)");
        dataset_id = NULL;
    }
    if (dataset_id) {
        if (load_dataset(r, dataset_id, &ds) < 0) {
            validator_free(&v);
            cJSON_Delete(in);
            return http_problem_db_unavailable(r, "reading the data set");
        }
        if (!ds.found) validate_error(&v, "dataset_id", "no such data set in your team");
    }
    /* An image job (server/imagejobs.h): the class is the target, the
     * task classification, the families and strategies those of image
     * search, and options say how images are sized and searched. */
    int images = ds.found && strcmp(ds.kind, "images") == 0;
    cJSON *options = NULL;
    if (images) options = imagejobs_options(&v, in, ds.profile);
    else if (cJSON_GetObjectItem(in, "options"))
        validate_error(&v, "options", "only jobs on image data sets take options");

    const char *target = validate_string(&v, in, "target", 0, 1, 255);
    if (ds.found && target == NULL && cJSON_GetObjectItem(in, "target") == NULL) target = ds.target;
    if (images && target && *target && strcmp(target, "class") != 0)
        validate_error(&v, "target", "an image data set's target is its images' class "
                                     "(the folder name or IDX label): give \"class\" or nothing");
    if (images) target = "class";
    const char *task = validate_enum(&v, in, "task",
                                     (const char *const[]){"auto", "classification", "regression", NULL},
                                     "auto");
    if (images && task && strcmp(task, "regression") == 0)
        validate_error(&v, "task", "image jobs are classification");
    if (images) task = "classification";
    if (!images && ds.found && target && *target && task) {
        const char *col_task = task_of_column(ds.profile, target);
        if (col_task == NULL) validate_error(&v, "target", "the data set has no column '%s'", target);
        else if (strcmp(task, "auto") == 0)
            task = strcmp(target, ds.target) == 0 && ds.task[0] ? ds.task : col_task;
    }
    int classification = task && strcmp(task, "classification") == 0;

    const char *metric = validate_string(&v, in, "metric", 0, 1, 64);
    const struct jobs_metric *mi = NULL;
    if (metric) {
        mi = jobs_metric_find(metric);
        if (mi == NULL)
            validate_error(&v, "metric", "must be one of accuracy, balanced_accuracy, logloss, "
                                         "roc_auc, f1_macro (classification), rmse, mae, r2 (regression)");
        else if (task && strcmp(task, "auto") != 0 && mi->classification != classification)
            validate_error(&v, "metric", "%s does not apply to %s", metric, task);
    }
    if (mi == NULL && task && strcmp(task, "auto") != 0)
        mi = jobs_metric_find(images ? "accuracy" : classification ? "logloss" : "rmse");

    /* models: the families to search in the order given (repeats dropped),
     * default every applicable one. */
    char models[256] = "{";
    int chosen[N_FAMILIES] = {0};
    const cJSON *m = cJSON_GetObjectItem(in, "models");
    if (m && !cJSON_IsNull(m)) {
        if (!cJSON_IsArray(m) || cJSON_GetArraySize(m) == 0 || cJSON_GetArraySize(m) > 64) {
            validate_error(&v, "models", "must be a non-empty array of model families");
        } else {
            int i = 0;
            const cJSON *it;
            cJSON_ArrayForEach(it, m) {
                char field[32];
                snprintf(field, sizeof field, "models[%d]", i++);
                if (images) {
                    const char *name = cJSON_GetStringValue(it);
                    if (!imagejobs_family(name)) {
                        validate_error(&v, field, "must be one of cnn, knn, mlp, linear (image data)");
                    } else if (strstr(models, name) == NULL) {
                        strncat(models, models[1] ? "," : "", sizeof models - strlen(models) - 1);
                        strncat(models, name, sizeof models - strlen(models) - 1);
                    }
                    continue;
                }
                const struct family_info *fi = cJSON_IsString(it) ? family_find(it->valuestring) : NULL;
                if (fi == NULL) {
                    validate_error(&v, field, "must be one of linear, rf, extratrees, gbm, knn, nb, mlp");
                    continue;
                }
                if (!classification && !fi->regression && task && strcmp(task, "auto") != 0) {
                    validate_error(&v, field, "%s does not do regression", fi->name);
                    continue;
                }
                size_t k = (size_t)(fi - families);
                if (chosen[k]++) continue;
                strncat(models, models[1] ? "," : "", sizeof models - strlen(models) - 1);
                strncat(models, fi->name, sizeof models - strlen(models) - 1);
            }
        }
    } else if (images) {
        for (size_t i = 0; imagejobs_families[i]; i++) {
            strncat(models, models[1] ? "," : "", sizeof models - strlen(models) - 1);
            strncat(models, imagejobs_families[i], sizeof models - strlen(models) - 1);
        }
    } else {
        for (size_t i = 0; i < N_FAMILIES; i++) {
            if (!classification && !families[i].regression) continue;
            strncat(models, models[1] ? "," : "", sizeof models - strlen(models) - 1);
            strncat(models, families[i].name, sizeof models - strlen(models) - 1);
        }
    }
    strncat(models, "}", sizeof models - strlen(models) - 1);

    const cJSON *s = cJSON_GetObjectItem(in, "strategy");
    const char *strategy = images ? imagejobs_strategies[0] : "random";
    if (images && s && !cJSON_IsNull(s)) {
        strategy = cJSON_GetStringValue(s);
        if (!imagejobs_strategy(strategy)) {
            validate_error(&v, "strategy", "must be darts, evolution or random (image data)");
            strategy = imagejobs_strategies[0];
        }
    } else if (s && !cJSON_IsNull(s)) {
        static const char *const known[] = {"random", "tpe", "asha"};
        strategy = NULL;
        for (size_t i = 0; cJSON_IsString(s) && i < sizeof known / sizeof known[0]; i++)
            if (strcmp(s->valuestring, known[i]) == 0) strategy = known[i];
        if (strategy == NULL) {
            validate_error(&v, "strategy", "must be random, tpe or asha");
            strategy = "random";
        }
    }

    const cJSON *budget = cJSON_GetObjectItem(in, "budget");
    if (budget && !cJSON_IsObject(budget)) validate_error(&v, "budget", "must be an object");
    if (cJSON_IsObject(budget))
        validate_only(&v, budget, "budget", (const char *const[]){"max_trials", "max_seconds",
                                                        "trial_timeout_seconds",
                                                        "max_failed_trials", NULL});
    long max_trials = validate_int(&v, budget, "max_trials", "budget.max_trials", 1, 100000, 20);
    long max_seconds = validate_int(&v, budget, "max_seconds", "budget.max_seconds", 1, 604800, 600);
    long trial_timeout = validate_int(&v, budget, "trial_timeout_seconds",
                                      "budget.trial_timeout_seconds", 1, 86400, 300);
    long max_failed = validate_int(&v, budget, "max_failed_trials", "budget.max_failed_trials", 0,
                                   100000, max_trials);

    const cJSON *cv = cJSON_GetObjectItem(in, "cv");
    char cv_json[64] = "{\"folds\": 5}";
    if (images) snprintf(cv_json, sizeof cv_json, "{\"holdout\": 0.2}");
    if (cv && !cJSON_IsNull(cv)) {
        if (!cJSON_IsObject(cv)) {
            validate_error(&v, "cv", "must be {\"folds\": k} or {\"holdout\": fraction}");
        } else {
            validate_only(&v, cv, "cv", (const char *const[]){"folds", "holdout", NULL});
            const cJSON *folds = cJSON_GetObjectItem(cv, "folds");
            const cJSON *holdout = cJSON_GetObjectItem(cv, "holdout");
            if (folds && holdout) validate_error(&v, "cv", "give folds or holdout, not both");
            else if (holdout) {
                double h = cJSON_GetNumberValue(holdout);
                if (!cJSON_IsNumber(holdout) || !(h >= 0.05 && h <= 0.5))
                    validate_error(&v, "cv.holdout", "must be a fraction from 0.05 to 0.5");
                else snprintf(cv_json, sizeof cv_json, "{\"holdout\": %.6g}", h);
            } else {
                long k = validate_int(&v, cv, "folds", "cv.folds", 2, 20, 5);
                snprintf(cv_json, sizeof cv_json, "{\"folds\": %ld}", k);
            }
        }
    }
    long seed = validate_int(&v, in, "seed", "seed", 0, 2147483647, 0);
    long parallelism = validate_int(&v, in, "parallelism", "parallelism", 1, 1024, 2);

    char *options_text = NULL;
    if (validator_failed(&v) || (images && (options_text = cJSON_PrintUnformatted(options)) == NULL)) {
        cJSON_Delete(options);
        cJSON_Delete(ds.profile);
        cJSON_Delete(in);
        if (!validator_failed(&v)) {
            validator_free(&v);
            return http_problem(r, 500, "internal", "Out of memory", NULL, "creating the job");
        }
        return http_problem_invalid(r, validator_take(&v));
    }
    cJSON_Delete(options);
    validator_free(&v);

    char nums[6][24];
    snprintf(nums[0], sizeof nums[0], "%ld", max_trials);
    snprintf(nums[1], sizeof nums[1], "%ld", max_seconds);
    snprintf(nums[2], sizeof nums[2], "%ld", trial_timeout);
    snprintf(nums[3], sizeof nums[3], "%ld", max_failed);
    snprintf(nums[4], sizeof nums[4], "%ld", parallelism);
    snprintf(nums[5], sizeof nums[5], "%ld", seed);
    const char *p[16] = {r->auth.team_id, dataset_id, target, task, mi->name,
                         mi->higher_is_better ? "true" : "false", models, strategy,
                         nums[0], nums[1], nums[2], nums[3], nums[4], cv_json, nums[5],
                         options_text ? options_text : "{}"};
    PGresult *res = pool_exec(&r->db,
        "WITH j AS (INSERT INTO jobs (team_id, dataset_id, target, task, metric, higher_is_better,"
        "   models, strategy, max_trials, max_seconds, trial_timeout_seconds, max_failed_trials,"
        "   parallelism, cv, seed, options)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7::text[], $8, $9, $10, $11, $12, $13, $14::jsonb, $15,"
        "   $16::jsonb)"
        " RETURNING *), n AS (SELECT pg_notify('podium_jobs', id::text) FROM j)"
        " SELECT " JOBS_COLUMNS " FROM j, n",
        16, p);
    cJSON_free(options_text);
    cJSON_Delete(ds.profile);
    cJSON_Delete(in);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ret = http_problem_db(r, res);
        PQclear(res);
        return ret;
    }
    cJSON *job = pgjson_row(res, 0);
    PQclear(res);
    char location[80];
    snprintf(location, sizeof location, "/v1/jobs/%s",
             cJSON_GetStringValue(cJSON_GetObjectItem(job, "id")));
    return http_respond_json_at(r, 202, job, location);
}

/* --- reading ------------------------------------------------------------------ */

int jobs_list(struct http_req *r)
{
    int ret;
    long limit;
    if (resource_query_int(r, "limit", 1, 500, 50, &limit, &ret) < 0) return ret;
    if (http_db(r) == NULL) return http_problem_db_unavailable(r, "jobs");
    const char *state = http_query(r, "state");
    if (state && strcmp(state, "queued") && strcmp(state, "running") && strcmp(state, "succeeded") &&
        strcmp(state, "failed") && strcmp(state, "cancelled"))
        return http_problem(r, 400, "invalid-parameter", "Invalid parameter", "state",
                            "state must be queued, running, succeeded, failed or cancelled");
    char lim_s[24];
    snprintf(lim_s, sizeof lim_s, "%ld", limit);
    const char *p[3] = {r->auth.team_id, lim_s, state};
    PGresult *res = pool_exec(&r->db,
        "SELECT " JOBS_COLUMNS JOB_PROGRESS " FROM jobs j WHERE j.team_id = $1"
        " AND ($3::text IS NULL OR j.state = $3) ORDER BY j.created_at DESC, j.id DESC LIMIT $2",
        3, p);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ret = http_problem_db(r, res);
        PQclear(res);
        return ret;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddItemToObject(out, "items", pgjson_rows(res));
    PQclear(res);
    return http_respond_json(r, 200, out);
}

/* The job's team and latest event seq, read with the job (and dropped
 * from its JSON by job_json). */
#define JOB_HEAD                                                                      \
    ", j.team_id AS _team_id, coalesce(h.seq, 0) AS _seq,"                             \
    " coalesce(h.job_seq, 0) AS _job_seq, coalesce(h.board_seq, 0) AS _board_seq"      \
    " FROM jobs j LEFT JOIN job_event_heads h ON h.job_id = j.id"

PGresult *jobs_fetch(struct http_req *r, int *ret, int64_t seq[EVENTS_VIEWS])
{
    uint64_t epoch = events_epoch(r->srv->events);
    PGresult *res = resource_fetch(r, "job_id", "job",
        "SELECT " JOBS_COLUMNS JOB_PROGRESS JOB_HEAD " WHERE j.id = $1 AND j.team_id = $2", ret);
    if (res == NULL) return NULL;
    struct events_job known;
    snprintf(known.team_id, sizeof known.team_id, "%s",
             PQgetvalue(res, 0, PQfnumber(res, "_team_id")));
    static const char *const cols[EVENTS_VIEWS] = {"_seq", "_job_seq", "_board_seq"};
    for (int v = 0; v < EVENTS_VIEWS; v++)
        known.seq[v] = strtoll(PQgetvalue(res, 0, PQfnumber(res, cols[v])), NULL, 10);
    events_note(r->srv->events, PQgetvalue(res, 0, PQfnumber(res, "id")), &known, epoch);
    if (seq) memcpy(seq, known.seq, sizeof known.seq);
    return res;
}

static cJSON *job_json(const PGresult *res)
{
    cJSON *job = pgjson_row(res, 0);
    static const char *const hidden[] = {"_team_id", "_seq", "_job_seq", "_board_seq"};
    for (size_t i = 0; i < sizeof hidden / sizeof hidden[0]; i++)
        cJSON_DeleteItemFromObject(job, hidden[i]);
    return job;
}

static int is_get(const struct http_req *r)
{
    return strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
}

int jobs_poll_from_memory(struct http_req *r, int view, const char *variant, int weak, int *ret)
{
    const char *inm = http_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH);
    const char *id = http_param(r, "job_id");
    if (inm == NULL || !is_get(r) || !http_is_uuid(id)) return 0;
    char low[37];
    for (int i = 0; i < 36; i++) low[i] = (char)tolower((unsigned char)id[i]);
    low[36] = '\0';
    struct events_job j;
    if (!events_peek(r->srv->events, low, &j)) return 0;
    if (strcmp(j.team_id, r->auth.team_id) != 0) {
        *ret = not_found(r, "job");
        return 1;
    }
    char etag[ETAG_MAX];
    etag_job(etag, j.seq[view], variant, weak);
    if (!etag_match(inm, etag)) return 0;
    *ret = http_respond_not_modified(r, etag);
    return 1;
}

/* body (taken) with its tag, or 304 when the request already has it. */
static int respond_tagged(struct http_req *r, cJSON *body, const char *etag)
{
    if (is_get(r) && etag_match(http_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH), etag)) {
        cJSON_Delete(body);
        return http_respond_not_modified(r, etag);
    }
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    if (text == NULL) return MHD_NO;
    return http_respond_bytes(r, 200, "application/json", text, strlen(text), etag);
}

/* GET /v1/jobs/{id}. The tag is weak: progress.elapsed_seconds and
 * remaining_seconds are computed when the response is made and are the
 * only members that differ between two bodies with the same tag (a
 * client showing a clock computes it from started_at and
 * budget.max_seconds; api/openapi.yaml says so). */
int jobs_get(struct http_req *r)
{
    int ret;
    if (jobs_poll_from_memory(r, EVENTS_JOB, "job", 1, &ret)) return ret;
    int64_t seq[EVENTS_VIEWS];
    PGresult *res = jobs_fetch(r, &ret, seq);
    if (res == NULL) return ret;
    cJSON *job = job_json(res);
    PQclear(res);
    char etag[ETAG_MAX];
    etag_job(etag, seq[EVENTS_JOB], "job", 1);
    return respond_tagged(r, job, etag);
}

/* PATCH /v1/jobs/{id}: raise (or lower) the budget of a job that has not
 * finished. */
int jobs_update(struct http_req *r)
{
    const char *id = http_param(r, "job_id");
    if (!http_is_uuid(id)) return not_found(r, "job");
    int ret;
    cJSON *in = http_json_body(r, 0, &ret);
    if (in == NULL) return ret;
    struct validator v;
    validator_init(&v);
    validate_only(&v, in, NULL, (const char *const[]){"budget", "parallelism", NULL});
    const cJSON *budget = cJSON_GetObjectItem(in, "budget");
    if (budget && !cJSON_IsObject(budget)) validate_error(&v, "budget", "must be an object");
    if (cJSON_IsObject(budget))
        validate_only(&v, budget, "budget", (const char *const[]){"max_trials", "max_seconds",
                                                        "trial_timeout_seconds",
                                                        "max_failed_trials", NULL});
    long vals[5] = {
        validate_int(&v, budget, "max_trials", "budget.max_trials", 1, 100000, -1),
        validate_int(&v, budget, "max_seconds", "budget.max_seconds", 1, 604800, -1),
        validate_int(&v, budget, "trial_timeout_seconds", "budget.trial_timeout_seconds", 1, 86400, -1),
        validate_int(&v, budget, "max_failed_trials", "budget.max_failed_trials", 0, 100000, -1),
        validate_int(&v, in, "parallelism", "parallelism", 1, 1024, -1),
    };
    cJSON_Delete(in);
    if (validator_failed(&v)) return http_problem_invalid(r, validator_take(&v));
    validator_free(&v);
    if (http_db(r) == NULL) return http_problem_db_unavailable(r, "updating a job");
    char s[5][24];
    const char *p[7] = {id, r->auth.team_id};
    for (int i = 0; i < 5; i++) {
        snprintf(s[i], sizeof s[i], "%ld", vals[i]);
        p[2 + i] = vals[i] >= 0 ? s[i] : NULL;
    }
    PGresult *res = pool_exec(&r->db,
        "WITH u AS (UPDATE jobs SET max_trials = coalesce($3::int, max_trials),"
        "   max_seconds = coalesce($4::int, max_seconds),"
        "   trial_timeout_seconds = coalesce($5::int, trial_timeout_seconds),"
        "   max_failed_trials = coalesce($6::int, max_failed_trials),"
        "   parallelism = coalesce($7::int, parallelism)"
        " WHERE id = $1 AND team_id = $2 AND state IN ('queued', 'running') RETURNING id),"
        " n AS (SELECT pg_notify('podium_jobs', id::text) FROM u)"
        " SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM n),"
        "        (SELECT state FROM jobs WHERE id = $1 AND team_id = $2)",
        7, p);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ret = http_problem_db(r, res);
        PQclear(res);
        return ret;
    }
    int updated = atoi(PQgetvalue(res, 0, 0));
    int exists = !PQgetisnull(res, 0, 2);
    char state[16];
    snprintf(state, sizeof state, "%s", PQgetvalue(res, 0, 2));
    PQclear(res);
    if (!exists) return not_found(r, "job");
    if (!updated)
        return http_problem(r, 409, "job-finished", "Conflict", NULL,
                            "the job has %s: its budget can no longer change", state);
    return jobs_get(r);
}

int jobs_cancel(struct http_req *r)
{
    const char *id = http_param(r, "job_id");
    if (!http_is_uuid(id)) return not_found(r, "job");
    if (http_db(r) == NULL) return http_problem_db_unavailable(r, "cancelling a job");
    const char *p[2] = {id, r->auth.team_id};
    /* A queued job no scheduler has touched is cancelled here and now; a
     * running one is flagged and its scheduler stops its trainers. */
    PGresult *res = pool_exec(&r->db,
        "WITH u AS (UPDATE jobs SET cancel_requested = true,"
        "   state = CASE WHEN state = 'queued' THEN 'cancelled' ELSE state END,"
        "   finished_at = CASE WHEN state = 'queued' THEN now() ELSE finished_at END"
        " WHERE id = $1 AND team_id = $2 AND state IN ('queued', 'running') RETURNING id),"
        " n AS (SELECT pg_notify('podium_jobs', id::text) FROM u)"
        " SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM n),"
        "        (SELECT state FROM jobs WHERE id = $1 AND team_id = $2)",
        2, p);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        int ret = http_problem_db(r, res);
        PQclear(res);
        return ret;
    }
    int updated = atoi(PQgetvalue(res, 0, 0));
    int exists = !PQgetisnull(res, 0, 2);
    char state[16];
    snprintf(state, sizeof state, "%s", PQgetvalue(res, 0, 2));
    PQclear(res);
    if (!exists) return not_found(r, "job");
    if (!updated)
        return http_problem(r, 409, "job-finished", "Conflict", NULL, "the job has %s already", state);
    int ret;
    res = jobs_fetch(r, &ret, NULL);
    if (res == NULL) return ret;
    cJSON *job = job_json(res);
    PQclear(res);
    return http_respond_json(r, 202, job);
}

#define TRIAL_COLUMNS                                                                  \
    "t.id, t.job_id, t.seq, t.state, t.family, t.params, t.attempts, t.score, t.score_std," \
    " t.metrics, t.fit_seconds, t.predict_us_per_row, t.model_bytes, t.failure_reason,"     \
    " t.progress, t.details, " PGJSON_TS("t.started_at") " AS started_at,"                 \
    " " PGJSON_TS("t.finished_at") " AS finished_at"

int jobs_trials(struct http_req *r)
{
    int ret;
    if (jobs_poll_from_memory(r, EVENTS_ALL, "trials", 0, &ret)) return ret;
    int64_t seq[EVENTS_VIEWS];
    PGresult *job = jobs_fetch(r, &ret, seq);
    if (job == NULL) return ret;
    PQclear(job);
    const char *p[2] = {http_param(r, "job_id"), r->auth.team_id};
    PGresult *res = pool_exec(&r->db,
        "SELECT " TRIAL_COLUMNS " FROM trials t WHERE t.job_id = $1 AND t.team_id = $2"
        " ORDER BY t.seq", 2, p);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ret = http_problem_db(r, res);
        PQclear(res);
        return ret;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddItemToObject(out, "items", pgjson_rows(res));
    PQclear(res);
    char etag[ETAG_MAX];
    etag_job(etag, seq[EVENTS_ALL], "trials", 0);
    return respond_tagged(r, out, etag);
}

int trials_get(struct http_req *r)
{
    return resource_get(r, "trial_id", "trial",
        "SELECT " TRIAL_COLUMNS ", t.learning_curve, t.stderr_tail, t.lease_owner"
        " FROM trials t WHERE t.id = $1 AND t.team_id = $2");
}

/* --- rendered job resources (rcache.h) ---------------------------------------------- */

/* Every poller of a leaderboard (leaderboard.c) gets the bytes rendered
 * once for its version: a job's board at its board seq (events.h, kept
 * current by NOTIFY), a team's at a digest of its jobs' board seqs; an
 * LR-finder result (lrfind.c) likewise at its job's seq. Keys hold the
 * team (or the job, whose team the events table knows), so a body is only
 * ever handed to its own team. */
#define RESPONSES_BYTES ((size_t)32 << 20)
#define RESPONSES_WAIT_MS 5000

static struct rcache *responses;
static pthread_once_t responses_once = PTHREAD_ONCE_INIT;

static void responses_init(void)
{
    responses = rcache_new(RESPONSES_BYTES);
    if (responses == NULL) log_msg(LOG_WARN, "jobs: no memory for the response cache");
}

struct rcache *jobs_responses(void)
{
    pthread_once(&responses_once, responses_init);
    return responses;
}

/* A cached body (taken) for r: 304 when the request has its tag. */
static int respond_cached(struct http_req *r, struct rcache_body *b)
{
    if (etag_match(http_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH), b->etag)) {
        rcache_body_free(b);
        return http_respond_not_modified(r, b->etag);
    }
    return http_respond_bytes(r, 200, b->content_type, b->data, b->len, b->etag);
}

int jobs_cached(struct http_req *r, const char *key, const char *version, const char *team_id,
                struct rcache_flight **flight, int *ret)
{
    *flight = NULL;
    struct rcache *c = jobs_responses();
    if (c == NULL) return 0;
    struct rcache_body b;
    if (rcache_get(c, key, version, RESPONSES_WAIT_MS, &b, flight) != RCACHE_HIT) return 0;
    if (strcmp(b.team_id, team_id) != 0) {
        /* Cannot happen (the key holds what decides the team); render. */
        rcache_body_free(&b);
        return 0;
    }
    *ret = respond_cached(r, &b);
    return 1;
}

int jobs_respond_stored(struct http_req *r, struct rcache_flight *flight, const char *key,
                        const char *version, const char *content_type, char *body, size_t len,
                        const char *etag)
{
    struct rcache *c = jobs_responses();
    if (c) {
        struct rcache_body b = {.data = body, .len = len};
        snprintf(b.etag, sizeof b.etag, "%s", etag);
        snprintf(b.content_type, sizeof b.content_type, "%s", content_type);
        snprintf(b.team_id, sizeof b.team_id, "%s", r->auth.team_id);
        rcache_put(c, flight, key, version, &b);
    }
    if (etag_match(http_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH), etag)) {
        free(body);
        return http_respond_not_modified(r, etag);
    }
    return http_respond_bytes(r, 200, content_type, body, len, etag);
}

/* The key of a job resource's representation. */
static void job_key(char *out, size_t len, const char *job_id, const char *variant)
{
    snprintf(out, len, "job/%s/%s", job_id, variant);
}

int jobs_from_memory(struct http_req *r, int view, const char *variant,
                     struct rcache_flight **flight, int *ret)
{
    *flight = NULL;
    if (jobs_poll_from_memory(r, view, variant, 0, ret)) return 1;
    const char *id = http_param(r, "job_id");
    if (!is_get(r) || !http_is_uuid(id)) return 0;
    char low[37];
    for (int i = 0; i < 36; i++) low[i] = (char)tolower((unsigned char)id[i]);
    low[36] = '\0';
    struct events_job known;
    if (!events_peek(r->srv->events, low, &known)) return 0;
    if (strcmp(known.team_id, r->auth.team_id) != 0) {
        *ret = not_found(r, "job");
        return 1;
    }
    char key[96], version[24];
    job_key(key, sizeof key, low, variant);
    snprintf(version, sizeof version, "%" PRId64, known.seq[view]);
    return jobs_cached(r, key, version, r->auth.team_id, flight, ret);
}

int jobs_cached_at(struct http_req *r, const char *job_id, const char *variant, int64_t seq,
                   struct rcache_flight **flight, int *ret)
{
    if (*flight || !is_get(r)) return 0;
    char key[96], version[24];
    job_key(key, sizeof key, job_id, variant);
    snprintf(version, sizeof version, "%" PRId64, seq);
    return jobs_cached(r, key, version, r->auth.team_id, flight, ret);
}

int jobs_respond_job(struct http_req *r, struct rcache_flight *flight, const char *job_id,
                     const char *variant, int64_t seq, const char *content_type, char *body,
                     size_t len)
{
    char key[96], version[24], etag[ETAG_MAX];
    job_key(key, sizeof key, job_id, variant);
    snprintf(version, sizeof version, "%" PRId64, seq);
    etag_job(etag, seq, variant, 0);
    return jobs_respond_stored(r, flight, key, version, content_type, body, len, etag);
}
