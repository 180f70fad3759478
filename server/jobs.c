/*
 * jobs.c - see jobs.h. Everything is scoped by the caller's team.
 *
 * A job, its trials and its leaderboard carry an ETag made from the job's
 * latest event seq (etag.h). A GET with If-None-Match is first held
 * against the seq the server knows from NOTIFY (events.h): when it
 * matches, the answer is 304 with no query at all. Otherwise the job is
 * read with its seq in the same statement, and the tag describes what was
 * read (the seq is read first, so a tag is never newer than its body).
 *
 * Leaderboards are also kept rendered (rcache.h): a poll without
 * If-None-Match of a board whose version is known gets the bytes rendered
 * for that version, and concurrent misses wait for one render. The job's
 * own GET is not kept (its progress clock fields move between events, so
 * a kept body would be a stale one), nor are the trials (a full answer
 * is read from the database each time; tests/integration/test_events.c
 * relies on that).
 */
#include "server/jobs.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/blob.h"
#include "lib/crypto.h"
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

struct metric_info { const char *name; int classification; int higher_is_better; };

static const struct metric_info metrics[] = {
    {"accuracy", 1, 1}, {"balanced_accuracy", 1, 1}, {"logloss", 1, 0},
    {"roc_auc", 1, 1},  {"f1_macro", 1, 1},          {"rmse", 0, 0},
    {"mae", 0, 0},      {"r2", 0, 1},
};

struct family_info { const char *name; int regression; };

static const struct family_info families[] = {
    {"linear", 1}, {"rf", 1}, {"extratrees", 1}, {"gbm", 1}, {"knn", 1}, {"nb", 0}, {"mlp", 1},
};

#define N_FAMILIES (sizeof families / sizeof families[0])

static const struct metric_info *metric_find(const char *name)
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

static int exec_ok(PGconn *db, const char *sql)
{
    PGresult *res = PQexec(db, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    return ok ? 0 : -1;
}

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
    const struct metric_info *mi = NULL;
    if (metric) {
        mi = metric_find(metric);
        if (mi == NULL)
            validate_error(&v, "metric", "must be one of accuracy, balanced_accuracy, logloss, "
                                         "roc_auc, f1_macro (classification), rmse, mae, r2 (regression)");
        else if (task && strcmp(task, "auto") != 0 && mi->classification != classification)
            validate_error(&v, "metric", "%s does not apply to %s", metric, task);
    }
    if (mi == NULL && task && strcmp(task, "auto") != 0)
        mi = metric_find(images ? "accuracy" : classification ? "logloss" : "rmse");

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

/* One job of the caller's team, with progress; NULL (response queued) when
 * it is not there. seq (may be NULL) gets its latest event seqs, which the
 * event table also learns. */
static PGresult *fetch_job(struct http_req *r, int *ret, int64_t seq[EVENTS_VIEWS])
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
    PGresult *res = fetch_job(r, &ret, seq);
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
    res = fetch_job(r, &ret, NULL);
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
    PGresult *job = fetch_job(r, &ret, seq);
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

/* --- leaderboards ---------------------------------------------------------------------- */

/* Leaderboard rows: rank, model, family, params, the job's metric and the
 * others, costs. `where` selects the trials (t) of jobs (j). A model is a
 * succeeded trial with an artifact (an LR-finder trial has none). */
#define LEADERBOARD_SQL(where)                                                          \
    "SELECT rank() OVER (ORDER BY CASE WHEN j.higher_is_better THEN -t.score ELSE t.score END)" \
    "   AS rank, t.id AS model_id, t.job_id, t.family, t.params, j.metric, t.score,"    \
    "   t.score_std, t.metrics, t.fit_seconds, t.predict_us_per_row, t.model_bytes,"    \
    "   " PGJSON_TS("t.finished_at") " AS trained_at, t.details"                        \
    " FROM trials t JOIN jobs j ON j.id = t.job_id"                                      \
    " WHERE t.state = 'succeeded' AND t.artifact_lo IS NOT NULL AND " where              \
    " ORDER BY rank, t.finished_at, t.id"

static int wants_csv(struct http_req *r)
{
    const char *accept = http_header(r, "Accept");
    return accept && strstr(accept, "text/csv") != NULL;
}

/* --- rendered leaderboards (rcache.h) ----------------------------------------------- */

/* Every poller of a leaderboard gets the bytes rendered once for its
 * version: a job's board at its board seq (events.h, kept current by
 * NOTIFY), a team's at a digest of its jobs' board seqs. Keys hold the
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

/* The CSV form of a leaderboard: this header, then a line per row of
 * LEADERBOARD_SQL's columns (or the team board's, which has the same). */
#define LEADERBOARD_CSV_HEADER                                                        \
    "rank,model_id,job_id,family,metric,score,score_std,fit_seconds,"                 \
    "predict_us_per_row,model_bytes,params\n"

static void csv_rows(FILE *f, const PGresult *res, int rows)
{
    for (int i = 0; i < rows; i++) {
        const char *params = PQgetvalue(res, i, 4);
        fprintf(f, "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,\"", PQgetvalue(res, i, 0),
                PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
                PQgetvalue(res, i, 5), PQgetvalue(res, i, 6), PQgetvalue(res, i, 7),
                PQgetvalue(res, i, 9), PQgetvalue(res, i, 10), PQgetvalue(res, i, 11));
        for (const char *c = params; *c; c++) {
            if (*c == '"') fputc('"', f);
            fputc(*c, f);
        }
        fputs("\"\n", f);
    }
}

/* A leaderboard as JSON, or CSV for Accept: text/csv, into *body (malloc'd)
 * and *len; head is taken. 0, or -1 out of memory. */
static int render_leaderboard(PGresult *res, cJSON *head, int csv, char **body, size_t *len)
{
    int rows = PQntuples(res);
    *body = NULL;
    *len = 0;
    if (csv) {
        FILE *f = open_memstream(body, len);
        if (f == NULL) {
            cJSON_Delete(head);
            return -1;
        }
        fputs(LEADERBOARD_CSV_HEADER, f);
        csv_rows(f, res, rows);
        fclose(f);
        cJSON_Delete(head);
    } else {
        cJSON_AddItemToObject(head, "items", pgjson_rows(res));
        *body = cJSON_PrintUnformatted(head);
        cJSON_Delete(head);
        *len = *body ? strlen(*body) : 0;
    }
    return *body ? 0 : -1;
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

/* GET /v1/jobs/{id}/leaderboard. An unchanged poll is a 304 from memory;
 * any other poll of a job the events table knows is the body rendered for
 * its current board seq (one render per seq, single flight); a job it does
 * not know is read (which teaches the table) and its board then looked up
 * at the seq read. */
int jobs_leaderboard(struct http_req *r)
{
    int ret;
    int csv = wants_csv(r);
    const char *variant = csv ? "lb.csv" : "lb.json";
    struct rcache_flight *flight;
    if (jobs_from_memory(r, EVENTS_BOARD, variant, &flight, &ret)) return ret;
    int64_t seq[EVENTS_VIEWS];
    PGresult *job = fetch_job(r, &ret, seq);
    if (job == NULL) {
        rcache_abandon(jobs_responses(), flight);
        return ret;
    }
    char job_id[37];
    snprintf(job_id, sizeof job_id, "%s", PQgetvalue(job, 0, PQfnumber(job, "id")));
    if (jobs_cached_at(r, job_id, variant, seq[EVENTS_BOARD], &flight, &ret)) {
        PQclear(job);
        return ret;
    }
    cJSON *head = cJSON_CreateObject();
    cJSON_AddStringToObject(head, "job_id", PQgetvalue(job, 0, PQfnumber(job, "id")));
    cJSON_AddStringToObject(head, "metric", PQgetvalue(job, 0, PQfnumber(job, "metric")));
    cJSON_AddBoolToObject(head, "higher_is_better",
                          PQgetvalue(job, 0, PQfnumber(job, "higher_is_better"))[0] == 't');
    cJSON_AddStringToObject(head, "state", PQgetvalue(job, 0, PQfnumber(job, "state")));
    PQclear(job);
    const char *p[2] = {http_param(r, "job_id"), r->auth.team_id};
    PGresult *res = pool_exec(&r->db, LEADERBOARD_SQL("t.job_id = $1 AND t.team_id = $2"), 2, p);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rcache_abandon(jobs_responses(), flight);
        cJSON_Delete(head);
        ret = http_problem_db(r, res);
        PQclear(res);
        return ret;
    }
    char *body;
    size_t len;
    int rc = render_leaderboard(res, head, csv, &body, &len);
    PQclear(res);
    if (rc < 0) {
        rcache_abandon(jobs_responses(), flight);
        return MHD_NO;
    }
    return jobs_respond_job(r, flight, job_id, variant, seq[EVENTS_BOARD],
                            csv ? "text/csv" : "application/json", body, len);
}

/* --- the team leaderboard ------------------------------------------------------------- */

/*
 * GET /v1/leaderboards?dataset_id=…[&target=…][&metric=…][&limit=…][&cursor=…]:
 * every model the team trained on that data set (and target), ranked by
 * one metric. Scores from different metrics do not compare: the metric
 * (and the target) default to the most recent job's.
 *
 * The order is total and stable: by score in the metric's direction, ties
 * by model id in the same direction (descending when higher is better),
 * so that one index (migrations/0008: trials by team, score and id, over
 * models only) serves both directions, forwards or backwards. The rank is
 * 1 + the number of models with a strictly better score (ties share it).
 *
 * JSON is paged by keyset, never by OFFSET: a page is the `limit` models
 * after the cursor's (score, id), an index seek whatever its depth. The
 * cursor (`next` links to the following page) carries the board it
 * belongs to (target and metric, so a new job cannot switch the board
 * under a client walking it) and the position and rank of the last model
 * it has seen, from which the page's ranks follow without counting what
 * lies before it. It is hex, not signed: it holds nothing the client may
 * not ask for anyway (the team comes from the key), and a forged position
 * only misnumbers the forger's own page. `total` (the board's models) is
 * on the first page only: it is a count of every model (about 40 ms at
 * 100,000, bench/db_scale.sh), paid once per version there, since the
 * first page is kept, but on every page of a walk it would cost a hundred
 * times the page itself.
 *
 * Versions (rcache.h): the jobs the board shows and the version of each
 * of their boards are read first, in one small statement, into a digest.
 * The first page (no cursor) is rendered once per digest and kept under
 * the team, the data set, the representation, the limit and the target
 * and metric picked (every input of the body); its tag is a hash of the
 * body. Pages after a cursor are rendered each time and not kept: a
 * client walking a 100,000-model board would otherwise push every board
 * that pollers read out of the shared cache.
 *
 * CSV (Accept: text/csv) is the whole board, streamed: the digest and
 * every batch of TEAM_EXPORT_BATCH rows are read in one REPEATABLE READ
 * transaction (a consistent snapshot however long the client takes), each
 * batch a keyset seek like a page, and a batch is rendered only when
 * libmicrohttpd has sent the last, so memory holds one batch whatever the
 * size of the board. It is not kept in the response cache: a large
 * export is over the cache's largest body (rcache.h) anyway, and an
 * export is a download, not a poll. Its tag is made from the digest and
 * the key, so an unchanged export is still a 304 without reading a row.
 */

#define TEAM_PAGE_DEFAULT 100
#define TEAM_PAGE_MAX 1000
#define TEAM_EXPORT_BATCH 1000
#define TEAM_CURSOR_MAX 1200     /* hex digits: 600 bytes hold any cursor */

/* The board: whose, which data set, and the target and metric picked. */
struct team_board {
    char team[37];
    char dataset[37];
    char target[256];
    char metric[32];
    int higher;             /* the metric's direction */
};

/* Where a page starts. set == 0: at the top. Otherwise after the model id
 * whose score is `score` (PostgreSQL's text of the float8, which reads
 * back as the same value), with `pos` models up to and including it, the
 * last of them ranked `rank`. */
struct board_pos {
    int set;
    char score[40];
    char id[37];
    long long pos;
    long long rank;
};

/* A board's models (t) of its jobs (j): $1 team, $2 data set, $3 target,
 * $4 metric. A model always has a score (the scheduler stores none
 * without); the condition keeps the query and the index's predicate
 * the same. */
#define TEAM_BOARD_WHERE                                                               \
    " t.team_id = $1 AND t.state = 'succeeded' AND t.artifact_lo IS NOT NULL"          \
    " AND t.score IS NOT NULL AND j.dataset_id = $2 AND j.target = $3 AND j.metric = $4"

/* A page of LEADERBOARD_SQL's columns: $5 the score before the page (its
 * ties keep rank $7), $6 the models before it, $8 how many, and $9 the id
 * before it for a page after a cursor. The inner query is the index seek;
 * the outer one only numbers its rows. */
#define TEAM_PAGE_SQL(keyset, dir)                                                     \
    "SELECT CASE WHEN b.score = $5::float8 THEN $7::bigint"                           \
    "   ELSE $6::bigint + rank() OVER (ORDER BY b.score " dir ") END AS rank,"        \
    " b.model_id, b.job_id, b.family, b.params, b.metric, b.score, b.score_std,"      \
    " b.metrics, b.fit_seconds, b.predict_us_per_row, b.model_bytes, b.trained_at,"   \
    " b.details"                                                                      \
    " FROM (SELECT t.id AS model_id, t.job_id, t.family, t.params, j.metric, t.score," \
    "     t.score_std, t.metrics, t.fit_seconds, t.predict_us_per_row, t.model_bytes," \
    "     " PGJSON_TS("t.finished_at") " AS trained_at, t.details"                    \
    "   FROM trials t JOIN jobs j ON j.id = t.job_id"                                  \
    "   WHERE" TEAM_BOARD_WHERE keyset                                                \
    "   ORDER BY t.score " dir ", t.id " dir " LIMIT $8) b"                           \
    " ORDER BY b.score " dir ", b.model_id " dir

/* [higher is better][after a cursor] */
static const char *const team_page_sql[2][2] = {
    {TEAM_PAGE_SQL("", "ASC"),
     TEAM_PAGE_SQL(" AND (t.score, t.id) > ($5::float8, $9::uuid)", "ASC")},
    {TEAM_PAGE_SQL("", "DESC"),
     TEAM_PAGE_SQL(" AND (t.score, t.id) < ($5::float8, $9::uuid)", "DESC")},
};

/* Up to limit models of b after `after`. The caller PQclears. */
static PGresult *team_page(struct pool_conn *db, const struct team_board *b,
                           const struct board_pos *after, long limit)
{
    char pos[24], rank[24], lim[24];
    snprintf(pos, sizeof pos, "%lld", after->set ? after->pos : 0);
    snprintf(rank, sizeof rank, "%lld", after->rank);
    snprintf(lim, sizeof lim, "%ld", limit);
    const char *p[9] = {b->team, b->dataset, b->target, b->metric,
                        after->set ? after->score : NULL, pos, after->set ? rank : NULL, lim,
                        after->id};
    return pool_exec(db, team_page_sql[b->higher][after->set], after->set ? 9 : 8, p);
}

/* The position after row `row` of a page that started at `at`. */
static void board_pos_at(const PGresult *res, int row, const struct board_pos *at,
                         struct board_pos *out)
{
    long long before = at->set ? at->pos : 0;
    out->set = 1;
    snprintf(out->score, sizeof out->score, "%s", PQgetvalue(res, row, 6));
    snprintf(out->id, sizeof out->id, "%s", PQgetvalue(res, row, 1));
    out->rank = strtoll(PQgetvalue(res, row, 0), NULL, 10);
    out->pos = before + row + 1;
}

/* A cursor: "c1", the metric, pos, rank, score, id and the target, one a
 * line (the target last: it is the one part that may hold a newline), in
 * hex. out holds TEAM_CURSOR_MAX + 1. 0, or -1 when it does not fit. */
static int cursor_encode(const struct team_board *b, const struct board_pos *at, char *out)
{
    char text[TEAM_CURSOR_MAX / 2 + 1];
    int n = snprintf(text, sizeof text, "c1\n%s\n%lld\n%lld\n%s\n%s\n%s", b->metric, at->pos,
                     at->rank, at->score, at->id, b->target);
    if (n < 0 || (size_t)n >= sizeof text) return -1;
    crypto_hex((const unsigned char *)text, (size_t)n, out);
    return 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* A float8 as PostgreSQL writes it: digits, sign, point and exponent, or
 * Infinity (a board's score is never NaN: the condition on the index
 * seek would then be another order). */
static int is_float_text(const char *s)
{
    if (strcmp(s, "Infinity") == 0 || strcmp(s, "-Infinity") == 0) return 1;
    if (*s == '\0' || strlen(s) > 32 || strspn(s, "0123456789+-.eE") != strlen(s)) return 0;
    char *end;
    strtod(s, &end);
    return *end == '\0';
}

/* Split off the next line of *s (NUL-terminating it). */
static char *next_line(char **s)
{
    char *line = *s, *nl = line ? strchr(line, '\n') : NULL;
    if (nl == NULL) return NULL;
    *nl = '\0';
    *s = nl + 1;
    return line;
}

/* Read a cursor into *at, metric (32) and target (256). 0, or -1 when it
 * is not one this server wrote. */
static int cursor_decode(const char *hex, struct board_pos *at, char *metric, char *target)
{
    size_t n = strlen(hex);
    char text[TEAM_CURSOR_MAX / 2 + 1];
    if (n == 0 || n > TEAM_CURSOR_MAX || n % 2) return -1;
    for (size_t i = 0; i < n; i += 2) {
        int hi = hex_value(hex[i]), lo = hex_value(hex[i + 1]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return -1;
        text[i / 2] = (char)(hi << 4 | lo);
    }
    text[n / 2] = '\0';
    char *s = text;
    const char *fmt = next_line(&s), *met = next_line(&s), *pos = next_line(&s),
               *rank = next_line(&s), *score = next_line(&s), *id = next_line(&s);
    if (id == NULL || strcmp(fmt, "c1") != 0 || metric_find(met) == NULL ||
        !is_float_text(score) || !http_is_uuid(id) || strlen(s) > 255)
        return -1;
    char *end1, *end2;
    errno = 0;
    long long p = strtoll(pos, &end1, 10), k = strtoll(rank, &end2, 10);
    if (errno || *pos == '\0' || *end1 || *rank == '\0' || *end2 || p < 1 || k < 1 || k > p ||
        p > (1LL << 40))
        return -1;
    memset(at, 0, sizeof *at);
    at->set = 1;
    at->pos = p;
    at->rank = k;
    snprintf(at->score, sizeof at->score, "%s", score);
    snprintf(at->id, sizeof at->id, "%s", id);
    snprintf(metric, 32, "%s", met);
    snprintf(target, 256, "%s", s);
    return 0;
}

/* A strong tag: "\"" + 32 hex digits of SHA-256 over data + "\"". */
static void hash_tag(char out[ETAG_MAX], const void *data, size_t len)
{
    unsigned char d[CRYPTO_SHA256_LEN];
    crypto_sha256(data, len, d);
    out[0] = '"';
    crypto_hex(d, 16, out + 1);
    strcat(out, "\"");
}

/* --- the CSV export, streamed --- */

struct team_export {
    struct pool_conn db;    /* in the export's transaction until export_done */
    struct team_board board;
    struct board_pos at;    /* the last model rendered */
    char *text;             /* the batch rendered, handed out from off */
    size_t len, off;
    int last;               /* the batch rendered was the last */
};

/* Read and render the next batch (after the header when header). 0, or -1
 * when the statement failed (*res_out, when given, then gets the result). */
static int export_batch(struct team_export *e, int header, PGresult **res_out)
{
    PGresult *res = team_page(&e->db, &e->board, &e->at, TEAM_EXPORT_BATCH);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        if (res_out) *res_out = res;
        else PQclear(res);
        return -1;
    }
    int rows = PQntuples(res);
    free(e->text);
    e->text = NULL;
    e->len = e->off = 0;
    FILE *f = open_memstream(&e->text, &e->len);
    if (f == NULL) {
        PQclear(res);
        return -1;
    }
    if (header) fputs(LEADERBOARD_CSV_HEADER, f);
    csv_rows(f, res, rows);
    if (fclose(f) != 0) {
        PQclear(res);
        return -1;
    }
    if (rows > 0) board_pos_at(res, rows - 1, &e->at, &e->at);
    e->last = rows < TEAM_EXPORT_BATCH;
    PQclear(res);
    return 0;
}

static ssize_t export_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct team_export *e = cls;
    while (e->off == e->len) {
        if (e->last) return MHD_CONTENT_READER_END_OF_STREAM;
        if (export_batch(e, 0, NULL) < 0) {
            log_msg(LOG_WARN, "team leaderboard export: %s", PQerrorMessage(e->db.pg));
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    }
    size_t take = e->len - e->off < max ? e->len - e->off : max;
    memcpy(buf, e->text + e->off, take);
    e->off += take;
    return (ssize_t)take;
}

static void export_done(void *cls)
{
    struct team_export *e = cls;
    if (e->db.pg) {
        PQclear(PQexec(e->db.pg, "ROLLBACK"));   /* read only: nothing to keep */
        pool_release(&e->db);
    }
    free(e->text);
    free(e);
}

/* Answer the CSV export of b, read in the transaction r's connection is
 * in (the handler began it before reading the version): 304 for a
 * matching tag, else the header and first batch now (so a failure is
 * still a problem response) and the rest as the client takes it. The
 * connection goes with the response. */
static int export_respond(struct http_req *r, const struct team_board *b, const char *etag)
{
    int ret;
    if (etag_match(http_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH), etag)) {
        exec_ok(r->db.pg, "ROLLBACK");
        return http_respond_not_modified(r, etag);
    }
    struct team_export *e = calloc(1, sizeof *e);
    if (e == NULL) {
        exec_ok(r->db.pg, "ROLLBACK");
        return MHD_NO;
    }
    e->board = *b;
    e->db = r->db;
    r->has_db = 0;
    memset(&r->db, 0, sizeof r->db);
    PGresult *res = NULL;
    if (export_batch(e, 1, &res) < 0) {
        ret = res ? http_problem_db(r, res) : MHD_NO;
        PQclear(res);
        export_done(e);
        return ret;
    }
    const char *headers[] = {MHD_HTTP_HEADER_ETAG, etag, NULL};
    return http_respond_callback(r, 200, MHD_SIZE_UNKNOWN, "text/csv", headers, export_read, e,
                                 export_done);
}

/* --- the handler --- */

/* A 400 naming a query parameter. */
#define bad_param(r, name, ...) \
    http_problem(r, 400, "invalid-parameter", "Invalid parameter", name, __VA_ARGS__)

/* The JSON page of b after `after`: the total (first page only), the
 * page, and next. head is taken. 0, or a queued problem (*ret). */
static int page_json(struct http_req *r, const struct team_board *b, const struct board_pos *after,
                     long limit, cJSON *head, char **body, size_t *len, int *ret)
{
    *body = NULL;
    PGresult *res = NULL;
    if (!after->set) {
        const char *p[4] = {b->team, b->dataset, b->target, b->metric};
        res = pool_exec(&r->db,
            "SELECT count(*) FROM trials t JOIN jobs j ON j.id = t.job_id WHERE" TEAM_BOARD_WHERE,
            4, p);
        if (PQresultStatus(res) == PGRES_TUPLES_OK) {
            cJSON_AddNumberToObject(head, "total", strtod(PQgetvalue(res, 0, 0), NULL));
            PQclear(res);
            res = NULL;
        }
    }
    /* One more than the page: whether there is a next one. */
    if (res == NULL) res = team_page(&r->db, b, after, limit + 1);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        cJSON_Delete(head);
        *ret = http_problem_db(r, res);
        PQclear(res);
        return -1;
    }
    int rows = PQntuples(res);
    cJSON *items = pgjson_rows(res);
    cJSON_AddNumberToObject(head, "limit", (double)limit);
    if (rows > limit) {
        cJSON_DeleteItemFromArray(items, rows - 1);
        struct board_pos last;
        board_pos_at(res, (int)limit - 1, after, &last);
        char cursor[TEAM_CURSOR_MAX + 1], next[TEAM_CURSOR_MAX + 128];
        if (cursor_encode(b, &last, cursor) == 0) {
            snprintf(next, sizeof next, "/v1/leaderboards?dataset_id=%s&limit=%ld&cursor=%s",
                     b->dataset, limit, cursor);
            cJSON_AddStringToObject(head, "next", next);
        } else {
            cJSON_AddNullToObject(head, "next");   /* cannot happen: bounded parts */
        }
    } else {
        cJSON_AddNullToObject(head, "next");
    }
    PQclear(res);
    cJSON_AddItemToObject(head, "items", items);
    *body = cJSON_PrintUnformatted(head);
    cJSON_Delete(head);
    if (*body == NULL) {
        *ret = MHD_NO;
        return -1;
    }
    *len = strlen(*body);
    return 0;
}

int leaderboards_team(struct http_req *r)
{
    int ret;
    const char *dataset = http_query(r, "dataset_id");
    if (!http_is_uuid(dataset))
        return bad_param(r, "dataset_id", "dataset_id is required and must be a data set id");
    const char *target = http_query(r, "target");
    const char *metric = http_query(r, "metric");
    if (metric && metric_find(metric) == NULL)
        return bad_param(r, "metric", "unknown metric '%s'", metric);
    if (target && strlen(target) > 255) return bad_param(r, "target", "target is a column name");
    int csv = wants_csv(r);
    const char *cursor = http_query(r, "cursor");
    long limit = TEAM_PAGE_DEFAULT;
    if (csv && http_query(r, "limit"))
        return bad_param(r, "limit", "the CSV export is every model: page the JSON form");
    if (csv && cursor)
        return bad_param(r, "cursor", "the CSV export is every model: page the JSON form");
    if (resource_query_int(r, "limit", 1, TEAM_PAGE_MAX, TEAM_PAGE_DEFAULT, &limit, &ret) < 0)
        return ret;
    struct board_pos after = {0};
    char cur_metric[32], cur_target[256];
    if (cursor) {
        if (cursor_decode(cursor, &after, cur_metric, cur_target) < 0)
            return bad_param(r, "cursor", "cursor must be a leaderboard's `next` cursor, unchanged");
        if ((metric && strcmp(metric, cur_metric) != 0) || (target && strcmp(target, cur_target) != 0))
            return bad_param(r, "cursor", "the cursor is of another board (target '%s', metric %s)",
                             cur_target, cur_metric);
        metric = cur_metric;
        target = cur_target;
    }
    if (http_db(r) == NULL) return http_problem_db_unavailable(r, "leaderboard");
    /* The export reads everything, the version first, in one snapshot. */
    if (csv && exec_ok(r->db.pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") < 0)
        return http_problem_db_unavailable(r, "leaderboard");
    const char *p[4] = {r->auth.team_id, dataset, target, metric};
    PGresult *pick = pool_exec(&r->db,
        "WITH p AS (SELECT target, metric FROM jobs WHERE team_id = $1 AND dataset_id = $2"
        "   AND ($3::text IS NULL OR target = $3) AND ($4::text IS NULL OR metric = $4)"
        "   ORDER BY created_at DESC LIMIT 1)"
        " SELECT p.target, p.metric,"
        "   (SELECT md5(coalesce(string_agg(j.id::text || ':' || coalesce(h.board_seq, 0)::text,"
        "                                   ',' ORDER BY j.id), ''))"
        "      FROM jobs j LEFT JOIN job_event_heads h ON h.job_id = j.id"
        "     WHERE j.team_id = $1 AND j.dataset_id = $2 AND j.target = p.target"
        "       AND j.metric = p.metric)"
        " FROM p", 4, p);
    if (PQresultStatus(pick) != PGRES_TUPLES_OK) {
        ret = http_problem_db(r, pick);
        PQclear(pick);
        return ret;
    }
    if (PQntuples(pick) == 0) {
        /* No job on this data set (target, metric): an empty board. */
        PQclear(pick);
        if (csv) {
            exec_ok(r->db.pg, "ROLLBACK");
            char *text = strdup(LEADERBOARD_CSV_HEADER);
            if (text == NULL) return MHD_NO;
            return http_respond_bytes(r, 200, "text/csv", text, strlen(text), NULL);
        }
        cJSON *head = cJSON_CreateObject();
        cJSON_AddStringToObject(head, "dataset_id", dataset);
        cJSON_AddNumberToObject(head, "total", 0);
        cJSON_AddNumberToObject(head, "limit", (double)limit);
        cJSON_AddNullToObject(head, "next");
        cJSON_AddItemToObject(head, "items", cJSON_CreateArray());
        return http_respond_json(r, 200, head);
    }
    struct team_board b = {0};
    snprintf(b.team, sizeof b.team, "%s", r->auth.team_id);
    snprintf(b.dataset, sizeof b.dataset, "%s", dataset);
    snprintf(b.target, sizeof b.target, "%s", PQgetvalue(pick, 0, 0));
    snprintf(b.metric, sizeof b.metric, "%s", PQgetvalue(pick, 0, 1));
    const struct metric_info *mi = metric_find(b.metric);
    b.higher = mi ? mi->higher_is_better : 0;
    char version[40], key[420];
    snprintf(version, sizeof version, "%s", PQgetvalue(pick, 0, 2));
    PQclear(pick);
    /* The target last: the other parts cannot hold a '/'. */
    if (csv) {
        snprintf(key, sizeof key, "team/%s/%s/lb.csv/%s/%s\n%s", b.team, b.dataset, b.metric,
                 b.target, version);
        char etag[ETAG_MAX];
        hash_tag(etag, key, strlen(key));
        return export_respond(r, &b, etag);
    }
    snprintf(key, sizeof key, "team/%s/%s/lb.json/%ld/%s/%s", b.team, b.dataset, limit, b.metric,
             b.target);
    struct rcache_flight *flight = NULL;
    if (!after.set && jobs_cached(r, key, version, r->auth.team_id, &flight, &ret)) return ret;
    cJSON *head = cJSON_CreateObject();
    cJSON_AddStringToObject(head, "dataset_id", dataset);
    cJSON_AddStringToObject(head, "target", b.target);
    cJSON_AddStringToObject(head, "metric", b.metric);
    cJSON_AddBoolToObject(head, "higher_is_better", b.higher);
    char *body;
    size_t len;
    if (page_json(r, &b, &after, limit, head, &body, &len, &ret) < 0) {
        rcache_abandon(jobs_responses(), flight);
        return ret;
    }
    char etag[ETAG_MAX];
    hash_tag(etag, body, len);
    if (!after.set)
        return jobs_respond_stored(r, flight, key, version, "application/json", body, len, etag);
    if (etag_match(http_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH), etag)) {
        free(body);
        return http_respond_not_modified(r, etag);
    }
    return http_respond_bytes(r, 200, "application/json", body, len, etag);
}

/* --- models ------------------------------------------------------------------------ */

int models_get(struct http_req *r)
{
    return resource_get(r, "model_id", "model",
        "SELECT t.id, t.job_id, j.dataset_id, j.target, j.task, t.family, t.params, j.metric,"
        " t.score, t.score_std, t.metrics, t.fit_seconds, t.predict_us_per_row, t.model_bytes,"
        " encode(t.artifact_sha256, 'hex') AS artifact_sha256, t.details,"
        " " PGJSON_TS("t.finished_at") " AS trained_at"
        " FROM trials t JOIN jobs j ON j.id = t.job_id"
        " WHERE t.id = $1 AND t.team_id = $2 AND t.state = 'succeeded'"
        " AND t.artifact_lo IS NOT NULL");
}

struct artifact_stream {
    struct pool_conn db;
    struct blob_reader *blob;
    const char *pending;   /* read, not yet handed out (see content_read) */
    size_t pending_len;
};

static ssize_t artifact_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct artifact_stream *a = cls;
    if (a->pending_len == 0) {
        const void *data;
        ssize_t n = blob_reader_read(a->blob, &data);
        if (n == 0) return MHD_CONTENT_READER_END_OF_STREAM;
        if (n < 0) return MHD_CONTENT_READER_END_WITH_ERROR;
        a->pending = data;
        a->pending_len = (size_t)n;
    }
    size_t take = a->pending_len < max ? a->pending_len : max;
    memcpy(buf, a->pending, take);
    a->pending += take;
    a->pending_len -= take;
    return (ssize_t)take;
}

static void artifact_done(void *cls)
{
    struct artifact_stream *a = cls;
    blob_reader_close(a->blob);
    if (a->db.pg) {
        PQclear(PQexec(a->db.pg, "COMMIT"));
        pool_release(&a->db);
    }
    free(a);
}

int models_artifact(struct http_req *r)
{
    int ret;
    PGresult *res = resource_fetch(r, "model_id", "model",
        "SELECT t.artifact_lo, encode(t.artifact_sha256, 'hex'), encode(t.artifact_sha256, 'base64'),"
        " t.id, t.family"
        " FROM trials t WHERE t.id = $1 AND t.team_id = $2 AND t.state = 'succeeded'"
        " AND t.artifact_lo IS NOT NULL", &ret);
    if (res == NULL) return ret;
    Oid lo = (Oid)strtoul(PQgetvalue(res, 0, 0), NULL, 10);
    char etag[80], digest[80], disposition[120];
    snprintf(etag, sizeof etag, "\"%s\"", PQgetvalue(res, 0, 1));
    snprintf(digest, sizeof digest, "sha-256=:%s:", PQgetvalue(res, 0, 2));
    snprintf(disposition, sizeof disposition, "attachment; filename=\"%s-%.8s.pdm\"",
             PQgetvalue(res, 0, 4), PQgetvalue(res, 0, 3));
    PQclear(res);
    const char *inm = http_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH);
    if (inm && strstr(inm, etag)) return http_respond_not_modified(r, etag);

    struct artifact_stream *a = calloc(1, sizeof *a);
    if (a == NULL) return MHD_NO;
    a->db = r->db;
    r->has_db = 0;
    memset(&r->db, 0, sizeof r->db);
    char err[256];
    if (exec_ok(a->db.pg, "BEGIN READ ONLY") < 0 ||
        (a->blob = blob_reader_open(a->db.pg, lo, 0, err, sizeof err)) == NULL) {
        ret = http_problem_db_unavailable(r, "opening the artifact");
        artifact_done(a);
        return ret;
    }
    /* The size from the object itself: pg_largeobject is not readable by
     * an ordinary database role. */
    int64_t end = blob_reader_seek(a->blob, 0, SEEK_END);
    if (end < 0 || blob_reader_seek(a->blob, 0, SEEK_SET) != 0) {
        ret = http_problem_db_unavailable(r, "sizing the artifact");
        artifact_done(a);
        return ret;
    }
    uint64_t size = (uint64_t)end;
    const char *headers[] = {MHD_HTTP_HEADER_ETAG, etag, "Repr-Digest", digest,
                             MHD_HTTP_HEADER_CONTENT_DISPOSITION, disposition, NULL};
    return http_respond_callback(r, 200, size, "application/octet-stream", headers, artifact_read,
                                 a, artifact_done);
}
