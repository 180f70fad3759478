/* test_lrfind.c - the learning-rate finder through the API with a real
 * server, scheduler, podium-train and database (iris):
 *  - POST /v1/lr-find answers 202 with a job of the same shape as
 *    POST /v1/jobs; while it has no result (the scheduler stopped) both
 *    GETs answer 409 lr-find-pending;
 *  - once the job succeeded: the curve's arrays have equal lengths, the
 *    rates start at 1e-7 and grow, the trial stored no model, and the
 *    valley suggestion lands in the known-good range for this problem
 *    (below);
 *  - the SVG is served as image/svg+xml, is well-formed and marks the
 *    suggestion;
 *  - both carry an ETag of their own: the same tag is a 304, a repeat
 *    the same bytes;
 *  - a 422 names each bad field; a job that is not an LR finder is 404,
 *    one that failed is 409 lr-find-failed;
 *  - a cnn on an image data set (digits8x8.zip) runs its own range test
 *    (trainers/cnn.h) through the same job.
 *
 * The known-good range, [9e-4, 1.4e-2]: mlp with its defaults (one
 * hidden layer of 100, Adam, full batches of 150 rows, 200 epochs) on
 * iris, 5-fold CV (seed 0), with learning_rate_init fixed on a grid
 * 1e-5 .. 2 (podium-train). The best CV log loss was 0.088 (5e-3); the
 * rates within twice that (<= 0.176) were 9e-4 (0.169) .. 1.4e-2 (0.165),
 * each with accuracy >= 0.946; 8e-4 gave 0.191 and 1.6e-2 0.193, and 4e-4
 * 0.33 (accuracy 0.90). The test runs 300 steps: with the default 100
 * the smoothed loss lags so far behind the rate that the valley on iris
 * is 4e-4, outside the range (see MLP_AUTO_ITERATIONS in trainers/mlp.c);
 * with 300 it was 1.36e-3 here (1.4e-3 .. 2.2e-3 over three seeds). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "tests/support/harness.h"

#define GOOD_LO 9e-4
#define GOOD_HI 1.4e-2

/* GET /v1/jobs/{job}{tail} */
static struct th_resp get(const char *job, const char *tail)
{
    char path[200];
    snprintf(path, sizeof path, "/v1/jobs/%s%s", job, tail);
    struct th_resp r;
    assert_int_equal(th_http(&th_jobs.srv, "GET", path, th_jobs.srv.key, NULL, NULL, 0, &r), 0);
    return r;
}

/* GET /v1/jobs/{job}{tail} with If-None-Match: tag; the status. */
static long get_tagged(const char *job, const char *tail, const char *tag)
{
    char path[200], auth[200], inm[200];
    snprintf(path, sizeof path, "/v1/jobs/%s%s", job, tail);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", th_jobs.srv.key);
    snprintf(inm, sizeof inm, "If-None-Match: %s", tag);
    const char *h[] = {auth, inm, NULL};
    struct th_resp r;
    assert_int_equal(th_http_headers(&th_jobs.srv, "GET", path, h, NULL, 0, &r), 0);
    long status = r.status;
    th_resp_free(&r);
    return status;
}

static struct th_resp post_lrfind(const char *body)
{
    struct th_resp r;
    assert_int_equal(th_http(&th_jobs.srv, "POST", "/v1/lr-find", th_jobs.srv.key, NULL, body,
                             strlen(body), &r), 0);
    return r;
}

/* The problem type's slug ("/problems/<slug>") of a problem+json body. */
static void assert_problem(const struct th_resp *r, long status, const char *slug)
{
    if (r->status != status) fail_msg("status %ld, wanted %ld: %s", r->status, status, r->body);
    assert_non_null(strstr(r->content_type, "application/problem+json"));
    const char *type = th_json_str(r, "type");
    assert_non_null(type);
    if (strstr(type, slug) == NULL) fail_msg("problem type %s, wanted %s", type, slug);
}

/* Well-formed XML for what lrfind_svg writes: every element closed in
 * order, quoted attributes, no stray '<' or '&'. */
static void assert_well_formed(const char *s)
{
    char stack[64][32];
    int depth = 0, roots = 0;
    const char *p = s;
    if (strncmp(p, "<?xml", 5) == 0) {
        p = strstr(p, "?>");
        assert_non_null(p);
        p += 2;
    }
    while (*p) {
        if (*p != '<') {
            if (*p == '&') {
                const char *semi = strchr(p, ';');
                assert_non_null(semi);
                assert_true(semi - p <= 8);
            }
            assert_true(depth > 0 || *p == '\n' || *p == ' ');
            p++;
            continue;
        }
        if (strncmp(p, "<!--", 4) == 0) {
            p = strstr(p, "-->");
            assert_non_null(p);
            p += 3;
            continue;
        }
        int closing = p[1] == '/';
        const char *n = p + 1 + closing;
        size_t k = strcspn(n, " \t\n/>");
        assert_true(k > 0 && k < 32);
        /* to the end of the tag, skipping quoted values */
        const char *q = n + k;
        char quote = 0;
        for (; *q && (quote || *q != '>'); q++) {
            if (quote) {
                if (*q == quote) quote = 0;
                else assert_true(*q != '<');
            } else if (*q == '"' || *q == '\'') {
                quote = *q;
            }
        }
        assert_int_equal(*q, '>');
        int self = q[-1] == '/';
        if (closing) {
            assert_true(depth > 0);
            depth--;
            assert_true(strlen(stack[depth]) == k && strncmp(stack[depth], n, k) == 0);
        } else if (!self) {
            assert_true(depth < 64);
            if (depth == 0) roots++;
            snprintf(stack[depth++], sizeof stack[0], "%.*s", (int)k, n);
        } else if (depth == 0) {
            roots++;
        }
        p = q + 1;
    }
    assert_int_equal(depth, 0);
    assert_int_equal(roots, 1);
}

/* Wait until the scheduler has logged "started" (its SIGTERM handler is
 * in place from then on: a stop before it would kill it). */
static void wait_started(const struct th_scheduler *s)
{
    double t0 = th_now_s();
    for (;;) {
        char *log = th_read_file(s->log_path, NULL);
        int up = log && strstr(log, "started") != NULL;
        free(log);
        if (up) return;
        if (th_now_s() - t0 > 30) fail_msg("the scheduler did not start; see %s", s->log_path);
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static void iris_mlp_suggestion_is_good(void **state)
{
    /* no scheduler: the job stays queued, and has no result */
    wait_started(&th_jobs.sched);
    assert_int_equal(th_scheduler_stop(&th_jobs.sched), 0);
    char body[512];
    snprintf(body, sizeof body,
             "{\"dataset_id\": \"%s\", \"model\": {\"family\": \"mlp\"},"
             " \"options\": {\"iterations\": 300}}", th_jobs.dataset);
    struct th_resp r = post_lrfind(body);
    if (r.status != 202) fail_msg("POST /v1/lr-find: %ld %s", r.status, r.body);
    assert_non_null(strstr(r.location, "/v1/jobs/"));
    cJSON *job = th_json(&r);
    th_resp_free(&r);
    char id[64];
    snprintf(id, sizeof id, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(job, "id")));
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(job, "strategy")), "lr_find");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(job, "target")), "species");
    const cJSON *opts = cJSON_GetObjectItem(job, "options");
    const cJSON *lf = cJSON_GetObjectItem(opts, "lr_find");
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(lf, "iterations")), 300);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(lf, "suggestion")), "valley");
    assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(lf, "start")) == 1e-7);

    /* the same members as a search job's 202 */
    snprintf(body, sizeof body,
             "{\"dataset_id\": \"%s\", \"models\": [\"nb\"], \"budget\": {\"max_trials\": 1}}",
             th_jobs.dataset);
    struct th_resp s;
    assert_int_equal(th_http(&th_jobs.srv, "POST", "/v1/jobs", th_jobs.srv.key, NULL, body,
                             strlen(body), &s), 0);
    assert_int_equal(s.status, 202);
    cJSON *search = th_json(&s);
    th_resp_free(&s);
    assert_int_equal(cJSON_GetArraySize(search), cJSON_GetArraySize(job));
    const cJSON *m;
    cJSON_ArrayForEach(m, search) assert_non_null(cJSON_GetObjectItem(job, m->string));
    char search_id[64];
    snprintf(search_id, sizeof search_id, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(search, "id")));
    cJSON_Delete(search);
    cJSON_Delete(job);

    r = get(id, "/lr-find");
    assert_problem(&r, 409, "lr-find-pending");
    th_resp_free(&r);
    r = get(id, "/lr-find.svg");
    assert_problem(&r, 409, "lr-find-pending");
    th_resp_free(&r);
    r = get(search_id, "/lr-find");
    assert_problem(&r, 404, "not-lr-find");
    th_resp_free(&r);
    r = get("00000000-0000-0000-0000-000000000000", "/lr-find");
    assert_problem(&r, 404, "not-found");
    th_resp_free(&r);

    const char *extra[] = {"--slots=2", NULL};
    assert_int_equal(th_scheduler_start(&th_jobs.sched, &th_jobs.db, extra), 0);
    const char *final = th_wait_job(&th_jobs.srv, id, "succeeded", 60);
    if (strcmp(final, "succeeded") != 0) fprintf(stderr, "job ended %s; see %s\n", final, th_jobs.sched.log_path);
    assert_string_equal(final, "succeeded");

    /* one trial, succeeded, no model file behind it (and no ensemble) */
    r = get(id, "/trials");
    assert_int_equal(r.status, 200);
    cJSON *trials = th_json(&r);
    th_resp_free(&r);
    const cJSON *items = cJSON_GetObjectItem(trials, "items");
    assert_int_equal(cJSON_GetArraySize(items), 1);
    const cJSON *t = cJSON_GetArrayItem(items, 0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(t, "state")), "succeeded");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(t, "family")), "mlp");
    char model_path[200];
    snprintf(model_path, sizeof model_path, "/v1/models/%s/artifact",
             cJSON_GetStringValue(cJSON_GetObjectItem(t, "id")));
    cJSON_Delete(trials);
    assert_int_equal(th_http(&th_jobs.srv, "GET", model_path, th_jobs.srv.key, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 404);
    th_resp_free(&r);

    r = get(id, "/lr-find");
    if (r.status != 200) fail_msg("GET lr-find: %ld %s", r.status, r.body);
    cJSON *res = th_json(&r);
    th_resp_free(&r);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(res, "state")), "succeeded");
    const cJSON *curve = cJSON_GetObjectItem(res, "curve");
    const cJSON *lrs = cJSON_GetObjectItem(curve, "lrs");
    int n = cJSON_GetArraySize(lrs);
    assert_true(n >= 30 && n <= 300);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(curve, "losses")), n);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(curve, "smoothed")), n);
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(res, "iterations")), n);
    double prev = 0;
    for (int i = 0; i < n; i++) {
        double x = cJSON_GetNumberValue(cJSON_GetArrayItem(lrs, i));
        if (i == 0) assert_true(fabs(x - 1e-7) <= 1e-7 * 1e-9);
        else assert_true(x > prev);
        prev = x;
    }
    assert_true(prev < 10);
    const cJSON *sg = cJSON_GetObjectItem(res, "suggestion");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(sg, "method")), "valley");
    double lr = cJSON_GetNumberValue(cJSON_GetObjectItem(sg, "lr"));
    fprintf(stderr, "iris mlp: %d steps, valley %.4g (known good %g .. %g)\n", n, lr, GOOD_LO, GOOD_HI);
    assert_true(lr >= GOOD_LO && lr <= GOOD_HI);
    const cJSON *all = cJSON_GetObjectItem(res, "suggestions");
    assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(all, "valley")) == lr);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(all, "steep")));
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(all, "minimum")));
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(res, "min_loss")));
    cJSON_Delete(res);

    r = get(id, "/lr-find.svg");
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.content_type, "image/svg+xml"));
    assert_well_formed(r.body);
    assert_non_null(strstr(r.body, "id=\"suggestion\""));
    assert_non_null(strstr(r.body, "valley: "));
    th_resp_free(&r);

    /* Both are tagged: the same tag is a 304 (a poll from memory), the
     * JSON's tag is not the drawing's, and a repeat is the same bytes. */
    static const char *const tails[] = {"/lr-find", "/lr-find.svg"};
    char tags[2][128];
    for (int i = 0; i < 2; i++) {
        struct th_resp a = get(id, tails[i]), b = get(id, tails[i]);
        assert_int_equal(a.status, 200);
        assert_int_equal(b.status, 200);
        assert_true(strlen(a.etag) > 4);
        assert_string_equal(a.etag, b.etag);
        assert_int_equal(a.body_len, b.body_len);
        assert_memory_equal(a.body, b.body, a.body_len);
        snprintf(tags[i], sizeof tags[i], "%s", a.etag);
        assert_int_equal(get_tagged(id, tails[i], a.etag), 304);
        assert_int_equal(get_tagged(id, tails[i], "\"p1-0-lrf.json\""), 200);
        th_resp_free(&a);
        th_resp_free(&b);
    }
    assert_string_not_equal(tags[0], tags[1]);
    assert_int_equal(get_tagged(id, "/lr-find.svg", tags[0]), 200);
    /* An answer that is not a result (here a 404: not a finder) has no tag. */
    r = get(search_id, "/lr-find");
    assert_string_equal(r.etag, "");
    th_resp_free(&r);
}

static void a_failed_finder_says_so(void **state)
{
    /* parameters the server accepts that podium-train cannot fit: the
     * network would be too large */
    char body[512];
    snprintf(body, sizeof body,
             "{\"dataset_id\": \"%s\", \"model\": {\"family\": \"mlp\", \"params\":"
             " {\"hidden_layer_sizes\": [65536, 65536, 65536]}}}", th_jobs.dataset);
    struct th_resp r = post_lrfind(body);
    assert_int_equal(r.status, 202);
    char id[64];
    snprintf(id, sizeof id, "%s", th_json_str(&r, "id"));
    th_resp_free(&r);
    assert_string_equal(th_wait_job(&th_jobs.srv, id, "failed", 60), "failed");
    r = get(id, "/lr-find");
    assert_problem(&r, 409, "lr-find-failed");
    assert_non_null(strstr(r.body, "hidden_layer_sizes"));
    th_resp_free(&r);
}

/* Each case's body (with %s for the data set) and a field its 422 names. */
static void bad_requests_name_their_fields(void **state)
{
    static const struct { const char *body, *field; } cases[] = {
        {"{\"dataset_id\": \"%s\", \"model\": {\"family\": \"gbm\"}}", "model.family"},
        {"{\"dataset_id\": \"%s\", \"model\": {\"family\": \"cnn\"}}", "model.family"},
        {"{\"dataset_id\": \"%s\"}", "model"},
        {"{\"dataset_id\": \"%s\", \"model\": {\"family\": \"mlp\", \"params\": {\"learning_rate_init\": -1}}}",
         "model.params.learning_rate_init"},
        {"{\"dataset_id\": \"%s\", \"model\": {\"family\": \"mlp\", \"params\": {\"depth\": 3}}}",
         "model.params.depth"},
        {"{\"dataset_id\": \"%s\", \"model\": {\"family\": \"mlp\"}, \"options\": {\"start\": 0}}", "options.start"},
        {"{\"dataset_id\": \"%s\", \"model\": {\"family\": \"mlp\"}, \"options\": {\"start\": 1, \"end\": 0.1}}",
         "options.end"},
        {"{\"dataset_id\": \"%s\", \"model\": {\"family\": \"mlp\"}, \"options\": {\"end\": 1e9}}", "options.end"},
        {"{\"dataset_id\": \"%s\", \"model\": {\"family\": \"mlp\"}, \"options\": {\"iterations\": 5}}",
         "options.iterations"},
        {"{\"dataset_id\": \"%s\", \"model\": {\"family\": \"mlp\"}, \"options\": {\"iterations\": 1001}}",
         "options.iterations"},
        {"{\"dataset_id\": \"%s\", \"model\": {\"family\": \"mlp\"}, \"options\": {\"suggestion\": \"best\"}}",
         "options.suggestion"},
        {"{\"dataset_id\": \"%s\", \"model\": {\"family\": \"mlp\"}, \"options\": {\"beta\": 0.9}}",
         "options.beta"},
        {"{\"dataset_id\": \"%s\", \"model\": {\"family\": \"mlp\"}, \"target\": \"nope\"}", "target"},
        {"{\"dataset_id\": \"%s\", \"model\": {\"family\": \"mlp\"}, \"strategy\": \"tpe\"}", "strategy"},
        {"{\"dataset_id\": \"00000000-0000-0000-0000-00000000000%s\", \"model\": {\"family\": \"mlp\"}}",
         "dataset_id"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[512];
        /* the data set's id where the case says %s */
        const char *at = strstr(cases[i].body, "%s");
        assert_non_null(at);
        snprintf(body, sizeof body, "%.*s%s%s", (int)(at - cases[i].body), cases[i].body,
                 strstr(cases[i].body, "00000000-") ? "0" : th_jobs.dataset, at + 2);
        struct th_resp r = post_lrfind(body);
        if (r.status != 422) fail_msg("case %zu: %ld %s", i, r.status, r.body);
        cJSON *p = th_json(&r);
        int named = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItem(p, "errors")) {
            const char *f = cJSON_GetStringValue(cJSON_GetObjectItem(e, "field"));
            named |= f && strcmp(f, cases[i].field) == 0;
        }
        if (!named) fail_msg("case %zu: no error for %s in %s", i, cases[i].field, r.body);
        cJSON_Delete(p);
        th_resp_free(&r);
    }
    /* several at once */
    char body[512];
    snprintf(body, sizeof body,
             "{\"dataset_id\": \"%s\", \"model\": {\"family\": \"knn\"},"
             " \"options\": {\"iterations\": 2, \"suggestion\": 1}}", th_jobs.dataset);
    struct th_resp r = post_lrfind(body);
    assert_int_equal(r.status, 422);
    cJSON *p = th_json(&r);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(p, "errors")), 3);
    cJSON_Delete(p);
    th_resp_free(&r);
}

static void cnn_on_images(void **state)
{
    size_t len;
    char *zip = th_read_file("tests/data/images/digits8x8.zip", &len);
    assert_non_null(zip);
    struct th_resp r;
    assert_int_equal(th_http(&th_jobs.srv, "POST", "/v1/datasets?name=digits-lr", th_jobs.srv.key,
                             "application/zip", zip, len, &r), 0);
    free(zip);
    assert_int_equal(r.status, 201);
    char ds[64];
    snprintf(ds, sizeof ds, "%s", th_json_str(&r, "id"));
    th_resp_free(&r);
    char body[512];
    snprintf(body, sizeof body, "{\"dataset_id\": \"%s\", \"target\": \"label\", \"model\": {\"family\": \"cnn\"}}", ds);
    r = post_lrfind(body);
    assert_int_equal(r.status, 422);   /* an image set's target is its class */
    assert_non_null(strstr(r.body, "\"target\""));
    th_resp_free(&r);
    snprintf(body, sizeof body,
             "{\"dataset_id\": \"%s\", \"model\": {\"family\": \"cnn\"}, \"options\": {\"iterations\": 10}}", ds);
    r = post_lrfind(body);
    if (r.status != 202) fail_msg("POST /v1/lr-find (cnn): %ld %s", r.status, r.body);
    char id[64];
    snprintf(id, sizeof id, "%s", th_json_str(&r, "id"));
    assert_string_equal(th_json_str(&r, "target"), "class");
    th_resp_free(&r);
    const char *final = th_wait_job(&th_jobs.srv, id, "succeeded", 120);
    if (strcmp(final, "succeeded") != 0) fprintf(stderr, "cnn job ended %s; see %s\n", final, th_jobs.sched.log_path);
    assert_string_equal(final, "succeeded");
    r = get(id, "/lr-find");
    assert_int_equal(r.status, 200);
    cJSON *res = th_json(&r);
    th_resp_free(&r);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(res, "family")), "cnn");
    int n = cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(res, "curve"), "lrs"));
    assert_true(n >= 2 && n <= 10);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(cJSON_GetObjectItem(res, "suggestion"), "lr")));
    cJSON_Delete(res);
    r = get(id, "/lr-find.svg");
    assert_int_equal(r.status, 200);
    assert_well_formed(r.body);
    th_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(iris_mlp_suggestion_is_good),
        cmocka_unit_test(a_failed_finder_says_so),
        cmocka_unit_test(bad_requests_name_their_fields),
        cmocka_unit_test(cnn_on_images),
    };
    return cmocka_run_group_tests(tests, th_jobs_setup, th_jobs_teardown);
}
