/*
 * lrfind.c - see lrfind.h. Everything is scoped by the caller's team.
 *
 * The two GETs of a result are tagged like a job's trials (etag.h: the
 * job's latest event seq, which moves with every trial change), answered
 * 304 from memory for an unchanged poll, and their bodies are rendered
 * once per seq and kept in the jobs' response cache (jobs.h); a 409 (no
 * result yet) is neither tagged nor kept.
 */
#include "server/lrfind.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/pgjson.h"
#include "nn/lrfind.h"
#include "server/events.h"
#include "server/imagejobs.h"
#include "server/jobs.h"
#include "server/rcache.h"
#include "server/resource.h"
#include "server/server.h"
#include "server/validate.h"
#include "trainers/family.h"

#define LRFIND_API_MIN_ITERATIONS 10
#define LRFIND_API_MAX_ITERATIONS 1000
#define LRFIND_API_MAX_END 1e6
#define LRFIND_JOB_SECONDS "600"

/* --- POST /v1/lr-find ---------------------------------------------------------- */

/* The task of a table's target column (as POST /v1/jobs decides it):
 * the profile's task for its suggested target, else from the column's
 * type. NULL: no such column. */
static const char *table_task(const cJSON *profile, const char *target)
{
    const char *ptarget = cJSON_GetStringValue(cJSON_GetObjectItem(profile, "target"));
    const char *ptask = cJSON_GetStringValue(cJSON_GetObjectItem(profile, "task"));
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(profile, "columns")) {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(c, "name"));
        if (name == NULL || strcmp(name, target) != 0) continue;
        if (ptarget && ptask && *ptask && strcmp(ptarget, target) == 0) return ptask;
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(c, "type"));
        double distinct = cJSON_GetNumberValue(cJSON_GetObjectItem(c, "distinct"));
        if (type && strcmp(type, "float") == 0) return "regression";
        if (type && strcmp(type, "integer") == 0) return distinct <= 20 ? "classification" : "regression";
        return "classification";
    }
    return NULL;
}

/* options -> {"start", "end", "iterations", "suggestion"} with defaults. */
static cJSON *lr_options(struct validator *v, const cJSON *in)
{
    cJSON *out = cJSON_CreateObject();
    if (out == NULL) return NULL;
    double start = 1e-7, end = 10;
    long iterations = 100;
    const char *suggestion = "valley";
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(in, "options");
    if (o != NULL && !cJSON_IsNull(o) && !cJSON_IsObject(o)) {
        validate_error(v, "options", "must be an object {start, end, iterations, suggestion}");
        o = NULL;
    }
    if (o) validate_only(v, o, "options",
                         (const char *const[]){"start", "end", "iterations", "suggestion", NULL});
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, "start");
    int start_ok = 1;
    if (it && !cJSON_IsNull(it)) {
        if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || !(it->valuedouble > 0)) {
            validate_error(v, "options.start", "must be a number > 0");
            start_ok = 0;
        } else {
            start = it->valuedouble;
        }
    }
    it = cJSON_GetObjectItemCaseSensitive(o, "end");
    int end_ok = 1;
    if (it && !cJSON_IsNull(it)) {
        if (!cJSON_IsNumber(it) || !(it->valuedouble > 0) || !(it->valuedouble <= LRFIND_API_MAX_END)) {
            validate_error(v, "options.end", "must be a number > 0 and at most 1e6");
            end_ok = 0;
        } else {
            end = it->valuedouble;
        }
    }
    if (start_ok && end_ok && !(end > start))
        validate_error(v, "options.end", "must be greater than start (%g)", start);
    it = cJSON_GetObjectItemCaseSensitive(o, "iterations");
    if (it && !cJSON_IsNull(it)) {
        double d = cJSON_GetNumberValue(it);
        if (!cJSON_IsNumber(it) || d != floor(d) || d < LRFIND_API_MIN_ITERATIONS ||
            d > LRFIND_API_MAX_ITERATIONS)
            validate_error(v, "options.iterations", "must be an integer from %d to %d",
                           LRFIND_API_MIN_ITERATIONS, LRFIND_API_MAX_ITERATIONS);
        else
            iterations = (long)d;
    }
    it = cJSON_GetObjectItemCaseSensitive(o, "suggestion");
    if (it && !cJSON_IsNull(it)) {
        if (cJSON_IsString(it) && lrfind_method_parse(it->valuestring) >= 0)
            suggestion = lrfind_method_name(lrfind_method_parse(it->valuestring));
        else
            validate_error(v, "options.suggestion", "must be \"valley\", \"steep\" or \"minimum\"");
    }
    cJSON_AddNumberToObject(out, "start", start);
    cJSON_AddNumberToObject(out, "end", end);
    cJSON_AddNumberToObject(out, "iterations", (double)iterations);
    cJSON_AddStringToObject(out, "suggestion", suggestion);
    return out;
}

/* Check params as podium-train will (when the family is built in here):
 * its message "name: ..." becomes field model.params.name. */
static void check_params(struct validator *v, const char *family, const cJSON *params, int regression)
{
    const struct pd_family *f = pd_family_find(family);
    if (f == NULL || f->params_parse == NULL) return;
    struct pd_task task = {regression ? PD_TASK_REGRESSION : PD_TASK_CLASSIFICATION,
                           regression ? 0 : 2};
    void *p = NULL;
    char msg[300] = "";
    if (f->params_parse(params, &task, &p, msg, sizeof msg) == 0) {
        f->params_free(p);
        return;
    }
    size_t k = strcspn(msg, ": ");
    char field[96] = "model.params";
    if (k > 0 && k < 64 && msg[k] == ':' && strncmp(msg, "params", k) != 0)
        snprintf(field, sizeof field, "model.params.%.*s", (int)k, msg);
    validate_error(v, field, "%s", msg);
}

int lrfind_create(struct http_req *r)
{
    int ret;
    cJSON *in = http_json_body(r, 0, &ret);
    if (in == NULL) return ret;
    if (http_db(r) == NULL) {
        cJSON_Delete(in);
        return http_problem_db_unavailable(r, "starting an LR finder");
    }
    struct validator v;
    validator_init(&v);
    cJSON *profile = NULL, *options = NULL, *image = NULL;
    char *options_text = NULL;
    char kind[16] = "";
    validate_only(&v, in, NULL,
                  (const char *const[]){"dataset_id", "model", "target", "options", "seed", NULL});

    const char *dataset_id = validate_string(&v, in, "dataset_id", 1, 36, 36);
    if (dataset_id && !http_is_uuid(dataset_id)) {
        validate_error(&v, "dataset_id", "must be a data set id (a UUID)");
        dataset_id = NULL;
    }
    int found = 0;
    if (dataset_id) {
        const char *p[2] = {dataset_id, r->auth.team_id};
        PGresult *res = pool_exec(&r->db,
            "SELECT kind, profile FROM datasets WHERE id = $1 AND team_id = $2", 2, p);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            ret = http_problem_db(r, res);
            PQclear(res);
            goto out;
        }
        if (PQntuples(res) == 1) {
            found = 1;
            snprintf(kind, sizeof kind, "%s", PQgetvalue(res, 0, 0));
            profile = cJSON_Parse(PQgetvalue(res, 0, 1));
        } else {
            validate_error(&v, "dataset_id", "no such data set in your team");
        }
        PQclear(res);
    }
    int images = found && strcmp(kind, "images") == 0;

    /* model */
    const char *family = NULL;
    const cJSON *params = NULL;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(in, "model");
    if (model == NULL || cJSON_IsNull(model)) {
        validate_error(&v, "model", "is required: {\"family\": \"mlp\" | \"cnn\", \"params\": {...}}");
    } else if (!cJSON_IsObject(model)) {
        validate_error(&v, "model", "must be an object {\"family\": ..., \"params\": {...}}");
    } else {
        validate_only(&v, model, "model", (const char *const[]){"family", "params", NULL});
        const cJSON *fam = cJSON_GetObjectItemCaseSensitive(model, "family");
        if (!cJSON_IsString(fam)) {
            validate_error(&v, "model.family", "is required: \"mlp\" or \"cnn\"");
        } else if (strcmp(fam->valuestring, "mlp") == 0 || strcmp(fam->valuestring, "cnn") == 0) {
            family = fam->valuestring;
            if (found && !images && strcmp(family, "cnn") == 0) {
                validate_error(&v, "model.family", "cnn trains on images: this data set is a table (use mlp)");
                family = NULL;
            }
        } else {
            validate_error(&v, "model.family",
                           "must be \"mlp\" or \"cnn\" (the families with a learning-rate finder)");
        }
        params = cJSON_GetObjectItemCaseSensitive(model, "params");
        if (params && !cJSON_IsNull(params) && !cJSON_IsObject(params)) {
            validate_error(&v, "model.params", "must be an object");
            params = NULL;
        }
        if (cJSON_IsNull(params)) params = NULL;
    }

    /* target and task */
    const char *target = validate_string(&v, in, "target", 0, 1, 255);
    const char *task = NULL;
    if (images) {
        if (target && strcmp(target, "class") != 0)
            validate_error(&v, "target", "an image data set's target is its images' class: "
                                         "give \"class\" or nothing");
        target = "class";
        task = "classification";
    } else if (found) {
        if (target == NULL && cJSON_GetObjectItemCaseSensitive(in, "target") == NULL)
            target = cJSON_GetStringValue(cJSON_GetObjectItem(profile, "target"));
        if (target == NULL || !*target)
            validate_error(&v, "target", "is required: the data set's profile suggests none");
        else if ((task = table_task(profile, target)) == NULL)
            validate_error(&v, "target", "the data set has no column '%s'", target);
    }
    if (family && task) check_params(&v, family, params, strcmp(task, "regression") == 0);

    cJSON *lr = lr_options(&v, in);
    const cJSON *seed_it = cJSON_GetObjectItemCaseSensitive(in, "seed");
    long seed = 0;
    if (seed_it && !cJSON_IsNull(seed_it)) {
        double d = cJSON_GetNumberValue(seed_it);
        if (!cJSON_IsNumber(seed_it) || d != floor(d) || d < 0 || d > 2147483647)
            validate_error(&v, "seed", "must be an integer from 0 to 2147483647");
        else
            seed = (long)d;
    }
    /* an image job's size images are converted to: the defaults of image
     * search jobs (server/imagejobs.h) */
    if (images && !validator_failed(&v)) {
        cJSON *empty = cJSON_CreateObject();
        struct validator iv;
        validator_init(&iv);
        cJSON *io = empty ? imagejobs_options(&iv, empty, profile) : NULL;
        image = cJSON_DetachItemFromObjectCaseSensitive(io, "image");
        cJSON_Delete(io);
        cJSON_Delete(empty);
        validator_free(&iv);
    }
    options = cJSON_CreateObject();
    if (options && lr) {
        cJSON_AddItemToObject(options, "lr_find", lr);
        lr = NULL;
        cJSON_AddItemToObject(options, "model_params",
                              params ? cJSON_Duplicate(params, 1) : cJSON_CreateObject());
        if (image) {
            cJSON_AddItemToObject(options, "image", image);
            image = NULL;
        }
    }
    cJSON_Delete(lr);
    if (validator_failed(&v)) {
        ret = http_problem_invalid(r, validator_take(&v));
        goto out;
    }
    if (options == NULL || (images && !cJSON_GetObjectItem(options, "image")) ||
        (options_text = cJSON_PrintUnformatted(options)) == NULL) {
        ret = http_problem(r, 500, "internal", "Out of memory", NULL, "starting an LR finder");
        goto out;
    }
    int regression = strcmp(task, "regression") == 0;
    const char *metric = images ? "accuracy" : regression ? "rmse" : "logloss";
    char models[16], seed_s[24];
    snprintf(models, sizeof models, "{%s}", family);
    snprintf(seed_s, sizeof seed_s, "%ld", seed);
    const char *p[10] = {r->auth.team_id, dataset_id, target, task, metric,
                         images ? "true" : "false", models,
                         images ? "{\"holdout\": 0.2}" : "{\"folds\": 5}", seed_s, options_text};
    PGresult *res = pool_exec(&r->db,
        "WITH j AS (INSERT INTO jobs (team_id, dataset_id, target, task, metric, higher_is_better,"
        "   models, strategy, max_trials, max_seconds, trial_timeout_seconds, max_failed_trials,"
        "   parallelism, cv, seed, options)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7::text[], 'lr_find', 1, " LRFIND_JOB_SECONDS ", "
        LRFIND_JOB_SECONDS ", 0, 1, $8::jsonb, $9, $10::jsonb)"
        " RETURNING *), n AS (SELECT pg_notify('podium_jobs', id::text) FROM j)"
        " SELECT " JOBS_COLUMNS " FROM j, n",
        10, p);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ret = http_problem_db(r, res);
        PQclear(res);
        goto out;
    }
    cJSON *job = pgjson_row(res, 0);
    PQclear(res);
    char location[80];
    snprintf(location, sizeof location, "/v1/jobs/%s",
             cJSON_GetStringValue(cJSON_GetObjectItem(job, "id")));
    ret = http_respond_json_at(r, 202, job, location);
out:
    validator_free(&v);
    cJSON_free(options_text);
    cJSON_Delete(options);
    cJSON_Delete(image);
    cJSON_Delete(profile);
    cJSON_Delete(in);
    return ret;
}

/* --- reading the result ------------------------------------------------------------ */

/* The job's lr_find record (details.lr_find of its latest succeeded trial,
 * as a new object) and its family; NULL after answering 404 (no such job,
 * or not an lr_find job) or 409 (no result yet, or never). */
static cJSON *fetch_record(struct http_req *r, char *family, size_t family_len, char *state,
                           size_t state_len, char job_id[37], int64_t *seq, int *ret)
{
    uint64_t epoch = events_epoch(r->srv->events);
    PGresult *res = resource_fetch(r, "job_id", "job",
        "SELECT j.strategy, j.state, j.error, j.models[1],"
        " (SELECT t.details -> 'lr_find' FROM trials t WHERE t.job_id = j.id"
        "   AND t.state = 'succeeded' AND t.details ? 'lr_find' ORDER BY t.seq DESC LIMIT 1)::text,"
        " j.id, coalesce(h.seq, 0), coalesce(h.job_seq, 0), coalesce(h.board_seq, 0)"
        " FROM jobs j LEFT JOIN job_event_heads h ON h.job_id = j.id"
        " WHERE j.id = $1 AND j.team_id = $2", ret);
    if (res == NULL) return NULL;
    /* What was read is what the tag says (one statement, one snapshot). */
    struct events_job known;
    snprintf(known.team_id, sizeof known.team_id, "%s", r->auth.team_id);
    for (int v = 0; v < EVENTS_VIEWS; v++)
        known.seq[v] = strtoll(PQgetvalue(res, 0, 6 + v), NULL, 10);
    snprintf(job_id, 37, "%s", PQgetvalue(res, 0, 5));
    events_note(r->srv->events, job_id, &known, epoch);
    *seq = known.seq[EVENTS_ALL];
    const char *id = http_param(r, "job_id");
    if (strcmp(PQgetvalue(res, 0, 0), "lr_find") != 0) {
        PQclear(res);
        *ret = http_problem(r, 404, "not-lr-find", "Not an LR-finder job", NULL,
                            "job %s is a search job, not a learning-rate finder (POST /v1/lr-find "
                            "starts one)", id);
        return NULL;
    }
    snprintf(state, state_len, "%s", PQgetvalue(res, 0, 1));
    snprintf(family, family_len, "%s", PQgetvalue(res, 0, 3));
    cJSON *rec = PQgetisnull(res, 0, 4) ? NULL : cJSON_Parse(PQgetvalue(res, 0, 4));
    if (!cJSON_IsObject(rec)) {
        cJSON_Delete(rec);
        int over = strcmp(state, "queued") != 0 && strcmp(state, "running") != 0;
        if (over)
            *ret = http_problem(r, 409, "lr-find-failed", "No LR-finder result", NULL,
                                "job %s is %s without a result%s%.600s", id, state,
                                PQgetisnull(res, 0, 2) ? "" : ": ", PQgetvalue(res, 0, 2));
        else
            *ret = http_problem(r, 409, "lr-find-pending", "LR finder still running", NULL,
                                "job %s is %s: the range test has no result yet; ask again "
                                "when the job has succeeded", id, state);
        PQclear(res);
        return NULL;
    }
    PQclear(res);
    return rec;
}

static cJSON *take(cJSON *from, const char *name)
{
    cJSON *it = cJSON_DetachItemFromObjectCaseSensitive(from, name);
    return it ? it : cJSON_CreateNull();
}

#define VARIANT_JSON "lrf.json"
#define VARIANT_SVG "lrf.svg"

/* The head both GETs share: the answer from memory (*ret, NULL back), or
 * the stored record to render for this request, which then leads the
 * flight of its variant (rcache.h) and must finish it. */
static cJSON *record_to_render(struct http_req *r, const char *variant,
                               struct rcache_flight **flight, char family[64], char state[32],
                               char job_id[37], int64_t *seq, int *ret)
{
    if (jobs_from_memory(r, EVENTS_ALL, variant, flight, ret)) return NULL;
    cJSON *rec = fetch_record(r, family, 64, state, 32, job_id, seq, ret);
    if (rec == NULL || jobs_cached_at(r, job_id, variant, *seq, flight, ret)) {
        rcache_abandon(jobs_responses(), *flight);
        cJSON_Delete(rec);
        return NULL;
    }
    return rec;
}

int lrfind_get(struct http_req *r)
{
    int ret;
    struct rcache_flight *flight;
    char family[64], state[32], job_id[37];
    int64_t seq;
    cJSON *rec = record_to_render(r, VARIANT_JSON, &flight, family, state, job_id, &seq, &ret);
    if (rec == NULL) return ret;
    cJSON *out = cJSON_CreateObject();
    cJSON *curve = cJSON_CreateObject();
    if (out == NULL || curve == NULL) {
        rcache_abandon(jobs_responses(), flight);
        cJSON_Delete(out);
        cJSON_Delete(curve);
        cJSON_Delete(rec);
        return MHD_NO;
    }
    cJSON_AddStringToObject(out, "job_id", http_param(r, "job_id"));
    cJSON_AddStringToObject(out, "state", state);
    cJSON_AddStringToObject(out, "family", family);
    cJSON_AddItemToObject(curve, "lrs", take(rec, "lrs"));
    cJSON_AddItemToObject(curve, "losses", take(rec, "losses"));
    cJSON_AddItemToObject(curve, "smoothed", take(rec, "smoothed"));
    cJSON_AddItemToObject(out, "curve", curve);
    static const char *const rest[] = {"suggestion", "suggestions", "stopped_early", "iterations",
                                       "min_loss", "config"};
    for (size_t i = 0; i < sizeof rest / sizeof rest[0]; i++)
        cJSON_AddItemToObject(out, rest[i], take(rec, rest[i]));
    cJSON_Delete(rec);
    char *text = cJSON_PrintUnformatted(out);
    cJSON_Delete(out);
    if (text == NULL) {
        rcache_abandon(jobs_responses(), flight);
        return MHD_NO;
    }
    return jobs_respond_job(r, flight, job_id, VARIANT_JSON, seq, "application/json", text,
                            strlen(text));
}

/* A stored array of n numbers (null = NaN) into a new double array. */
static double *numbers(const cJSON *a, size_t n)
{
    if (!cJSON_IsArray(a) || (size_t)cJSON_GetArraySize(a) != n) return NULL;
    double *v = malloc((n ? n : 1) * sizeof *v);
    if (v == NULL) return NULL;
    size_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) v[i++] = cJSON_IsNumber(e) ? e->valuedouble : NAN;
    return v;
}

int lrfind_get_svg(struct http_req *r)
{
    int ret;
    struct rcache_flight *flight;
    char family[64], state[32], job_id[37];
    int64_t seq;
    cJSON *rec = record_to_render(r, VARIANT_SVG, &flight, family, state, job_id, &seq, &ret);
    if (rec == NULL) return ret;
    const cJSON *cfgj = cJSON_GetObjectItemCaseSensitive(rec, "config");
    const cJSON *lrs = cJSON_GetObjectItemCaseSensitive(rec, "lrs");
    struct lrfind_config cfg;
    lrfind_config_init(&cfg);
    double iters = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(cfgj, "iterations"));
    const char *method = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cfgj, "suggestion"));
    double start = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(cfgj, "start"));
    double end = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(cfgj, "end"));
    if (iters >= LRFIND_MIN_ITERATIONS && iters <= LRFIND_MAX_ITERATIONS) cfg.iterations = (int)iters;
    if (method && lrfind_method_parse(method) >= 0) cfg.method = lrfind_method_parse(method);
    if (start > 0 && end > start) cfg.start_lr = start, cfg.end_lr = end;
    int n = cJSON_GetArraySize(lrs);
    double *x = NULL, *l = NULL, *s = NULL;
    struct lrfind *f = NULL;
    char *svg = NULL;
    size_t len = 0;
    char err[160] = "";
    int rc = LRFIND_EARG;
    if (n >= 1 && n <= cfg.iterations) {
        x = numbers(lrs, (size_t)n);
        l = numbers(cJSON_GetObjectItemCaseSensitive(rec, "losses"), (size_t)n);
        s = numbers(cJSON_GetObjectItemCaseSensitive(rec, "smoothed"), (size_t)n);
        if (x && l && s) rc = lrfind_from_record(&cfg, x, l, s, (size_t)n, &f, err, sizeof err);
    }
    if (rc == 0) {
        char title[160];
        snprintf(title, sizeof title, "Learning-rate range test: %s, job %s", family,
                 http_param(r, "job_id"));
        struct lrfind_svg_opts o = {0, 0, title};
        rc = lrfind_svg(f, &o, &svg, &len);
    }
    lrfind_free(f);
    free(x);
    free(l);
    free(s);
    cJSON_Delete(rec);
    if (rc != 0) rcache_abandon(jobs_responses(), flight);
    if (rc == LRFIND_ENODATA)
        return http_problem(r, 409, "lr-find-no-curve", "Nothing to draw", NULL,
                            "the range test recorded fewer than 2 finite losses");
    if (rc != 0) {
        free(svg);
        return http_problem(r, 500, "internal", "Bad stored result", NULL,
                            "the stored LR-finder record cannot be drawn%s%s", err[0] ? ": " : "", err);
    }
    return jobs_respond_job(r, flight, job_id, VARIANT_SVG, seq, "image/svg+xml", svg, len);
}
