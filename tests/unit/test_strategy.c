/* test_strategy.c - the search strategies.
 * Random search: the known-good configurations first (the families'
 * defaults in job.models order, skipping families that do not fit the
 * task), a sequence that depends only on the seed and the history, its
 * state round-tripping through JSON (a restarted scheduler continues the
 * same search), and errors for jobs it cannot serve.
 * TPE: every proposal accepted by the trainers' own parsers, reproducible
 * and restartable, and concentrating on the better family and region of a
 * synthetic objective more than random search does.
 * ASHA: fidelities on the ladder, only the top third of a rung promoted,
 * none twice, with trials still running (asynchronous), and a restarted
 * strategy continuing identically. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "scheduler/space.h"
#include "scheduler/strategy.h"
#include "trainers/family.h"

#define N 30
#define NMAX 80

struct run {
    struct strategy_trial hist[NMAX];
    cJSON *params[NMAX];
    char *text[NMAX];
    cJSON *state;             /* the strategy's state after the last proposal */
};

static void run_free(struct run *r, int n)
{
    for (int i = 0; i < n; i++) {
        cJSON_Delete(r->params[i]);
        free(r->text[i]);
    }
    cJSON_Delete(r->state);
    r->state = NULL;
}

/* The score of trial i (1-based seq) with these params; NAN: it fails. */
typedef double (*score_fn)(int seq, const char *family, const cJSON *params);

static double score_rising(int seq, const char *family, const cJSON *params)
{
    (void)family;
    (void)params;
    return 0.5 + 0.01 * (seq - 1);
}

/* Propose n trials from scratch with ops, restoring the strategy from its
 * saved JSON text before each proposal when roundtrip is set. A trial
 * finishes (succeeds with score(), or fails when that is NAN) once `lag`
 * later trials have been proposed: lag 0 finishes each at once, lag > 0
 * keeps that many running, as parallel workers would. text[i] = "family
 * params". */
static void run_strategy(const struct strategy_ops *ops, const struct strategy_job *job, int n,
                         int roundtrip, int lag, score_fn score, struct run *r)
{
    char err[256];
    struct strategy s;
    assert_true(n <= NMAX);
    assert_int_equal(strategy_new(&s, ops, job, NULL, err, sizeof err), 0);
    for (int i = 0; i < n; i++) {
        if (roundtrip) {
            cJSON *saved = strategy_save(&s);
            char *txt = cJSON_PrintUnformatted(saved);
            cJSON_Delete(saved);
            strategy_free(&s);
            cJSON *back = cJSON_Parse(txt);
            free(txt);
            assert_int_equal(strategy_new(&s, ops, job, back, err, sizeof err), 0);
            cJSON_Delete(back);
        }
        for (int j = 0; j < i - lag; j++) {
            struct strategy_trial *t = &r->hist[j];
            if (t->state != ST_RUNNING) continue;
            t->score = score(t->seq, t->family, t->params);
            t->state = isnan(t->score) ? ST_FAILED : ST_SUCCEEDED;
            if (isnan(t->score)) t->score = 0;
        }
        const char *fam = NULL;
        cJSON *p = NULL;
        assert_int_equal(strategy_next(&s, r->hist, (size_t)i, &fam, &p, err, sizeof err), 0);
        char *pt = cJSON_PrintUnformatted(p);
        size_t len = strlen(fam) + strlen(pt) + 2;
        r->text[i] = malloc(len);
        snprintf(r->text[i], len, "%s %s", fam, pt);
        free(pt);
        r->params[i] = p;
        r->hist[i] = (struct strategy_trial){i + 1, fam, p, ST_RUNNING, 0, NULL};
    }
    r->state = strategy_save(&s);
    strategy_free(&s);
}

static void propose_n(const struct strategy_job *job, int n, int roundtrip, struct run *r)
{
    run_strategy(&strategy_random, job, n, roundtrip, 0, score_rising, r);
}

/* podium-train's own parser accepts the params. */
static void check_accepted(const char *family, int task, const cJSON *params)
{
    const struct pd_family *pf = pd_family_find(family);
    assert_non_null(pf);
    struct pd_task t = {task == SPACE_CLASSIFICATION ? PD_TASK_CLASSIFICATION
                                                     : PD_TASK_REGRESSION,
                        task == SPACE_CLASSIFICATION ? 3 : 0};
    void *p = NULL;
    char err[256] = "";
    if (pf->params_parse(params, &t, &p, err, sizeof err) != 0) {
        char *s = cJSON_PrintUnformatted(params);
        fail_msg("%s %s rejected: %s", family, s, err);
    }
    pf->params_free(p);
}

static const char *const MODELS[] = {"gbm", "knn", "nb", "linear"};

static void test_known_good_first(void **state)
{
    (void)state;
    struct strategy_job job = {MODELS, 4, SPACE_CLASSIFICATION, 42, 1, 0, NULL};
    struct run r = {0};
    propose_n(&job, 8, 0, &r);
    assert_string_equal(r.text[0], "gbm {}");
    assert_string_equal(r.text[1], "knn {}");
    assert_string_equal(r.text[2], "nb {}");
    assert_string_equal(r.text[3], "linear {}");
    for (int i = 4; i < 8; i++) assert_string_not_equal(strchr(r.text[i], ' '), " {}");
    run_free(&r, 8);

    /* regression: nb does not fit and is skipped */
    struct strategy_job reg = {MODELS, 4, SPACE_REGRESSION, 42, 0, 0, NULL};
    struct run q = {0};
    propose_n(&reg, 12, 0, &q);
    assert_string_equal(q.text[0], "gbm {}");
    assert_string_equal(q.text[1], "knn {}");
    assert_string_equal(q.text[2], "linear {}");
    for (int i = 0; i < 12; i++) assert_null(strstr(q.text[i], "nb "));
    run_free(&q, 12);
}

static void test_reproducible(void **state)
{
    (void)state;
    struct strategy_job job = {MODELS, 4, SPACE_CLASSIFICATION, 42, 1, 0, NULL};
    struct run a = {0}, b = {0}, c = {0};
    propose_n(&job, N, 0, &a);
    propose_n(&job, N, 0, &b);
    job.seed = 43;
    propose_n(&job, N, 0, &c);
    int differ = 0;
    for (int i = 0; i < N; i++) {
        assert_string_equal(a.text[i], b.text[i]);
        differ += strcmp(a.text[i], c.text[i]) != 0;
    }
    assert_true(differ >= N / 2);
    /* every family of the job gets explored */
    for (int m = 0; m < 4; m++) {
        int seen = 0;
        for (int i = 4; i < N; i++) seen += strncmp(a.text[i], MODELS[m], strlen(MODELS[m])) == 0;
        assert_true(seen > 0);
    }
    run_free(&a, N);
    run_free(&b, N);
    run_free(&c, N);
}

static void test_state_roundtrip(void **state)
{
    (void)state;
    struct strategy_job job = {MODELS, 4, SPACE_CLASSIFICATION, 7, 1, 0, NULL};
    struct run a = {0}, b = {0};
    propose_n(&job, N, 0, &a);
    propose_n(&job, N, 1, &b);
    for (int i = 0; i < N; i++) assert_string_equal(a.text[i], b.text[i]);
    run_free(&a, N);
    run_free(&b, N);

    char err[256];
    struct strategy s;
    cJSON *st = cJSON_Parse("{\"strategy\":\"random\",\"proposed\":3,\"observed\":2}");
    assert_int_equal(strategy_new(&s, &strategy_random, &job, st, err, sizeof err), 0);
    cJSON *saved = strategy_save(&s);
    assert_true(cJSON_Compare(st, saved, 1));
    cJSON_Delete(saved);
    cJSON_Delete(st);
    strategy_free(&s);
}

static void test_errors(void **state)
{
    (void)state;
    char err[256] = "";
    struct strategy s = {0};
    static const char *const only_nb[] = {"nb", "svm"};
    struct strategy_job job = {only_nb, 2, SPACE_REGRESSION, 1, 0, 0, NULL};
    const struct strategy_ops *all[] = {&strategy_random, &strategy_tpe, &strategy_asha};
    for (int i = 0; i < 3; i++) {
        err[0] = 0;
        assert_int_equal(strategy_new(&s, all[i], &job, NULL, err, sizeof err), -1);
        assert_non_null(strstr(err, "no model family"));
        strategy_free(&s);
    }
    assert_ptr_equal(strategy_find("random"), &strategy_random);
    assert_ptr_equal(strategy_find("tpe"), &strategy_tpe);
    assert_ptr_equal(strategy_find("asha"), &strategy_asha);
    assert_null(strategy_find("hyperband"));
    assert_null(strategy_find(NULL));
}

/* ---- TPE ---- */

static const char *const ALL7[] = {"linear", "rf", "extratrees", "gbm", "knn", "nb", "mlp"};

static double num(const cJSON *params, const char *name, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, name);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

/* A synthetic objective (higher is better): gbm scores up to 1 with
 * learning_rate near 0.1 (0.9 for its defaults, which say nothing about
 * it); linear 0.4; rf 0.45 less a little per min_samples_leaf; every other
 * family 0.3; knn always fails. */
static double score_gbm_lr(int seq, const char *family, const cJSON *params)
{
    (void)seq;
    if (strcmp(family, "knn") == 0) return NAN;
    if (strcmp(family, "gbm") == 0) {
        if (cJSON_GetObjectItemCaseSensitive(params, "learning_rate") == NULL) return 0.9;
        double d = log(num(params, "learning_rate", 0.1) / 0.1);
        return exp(-d * d);
    }
    if (strcmp(family, "linear") == 0) return 0.4;
    if (strcmp(family, "rf") == 0) return 0.45 - 0.001 * num(params, "min_samples_leaf", 1);
    return 0.3;
}

/* As score_gbm_lr, and every 7th trial fails whatever it is. */
static double score_flaky(int seq, const char *family, const cJSON *params)
{
    return seq % 7 == 0 ? NAN : score_gbm_lr(seq, family, params);
}

static void test_tpe_valid_params(void **state)
{
    (void)state;
    for (int task = SPACE_CLASSIFICATION; task <= SPACE_REGRESSION; task++) {
        struct strategy_job job = {ALL7, 7, task, 11, 1, 0, NULL};
        struct run r = {0};
        run_strategy(&strategy_tpe, &job, NMAX, 0, 3, score_flaky, &r);
        size_t nfam = task == SPACE_CLASSIFICATION ? 7 : 6;
        for (int i = 0; i < NMAX; i++) {
            if ((size_t)i < nfam) assert_string_equal(strchr(r.text[i], ' '), " {}");
            check_accepted(r.hist[i].family, task, r.params[i]);
            if (strcmp(r.hist[i].family, "linear") == 0 && task == SPACE_CLASSIFICATION &&
                (size_t)i >= nfam) {
                const cJSON *pen = cJSON_GetObjectItemCaseSensitive(r.params[i], "penalty");
                int elastic = cJSON_IsString(pen) && strcmp(pen->valuestring, "elasticnet") == 0;
                assert_int_equal(
                    cJSON_GetObjectItemCaseSensitive(r.params[i], "l1_ratio") != NULL, elastic);
            }
            if (task == SPACE_REGRESSION) assert_string_not_equal(r.hist[i].family, "nb");
        }
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(r.state, "strategy")->valuestring,
                            "tpe");
        run_free(&r, NMAX);
    }
}

static void test_tpe_reproducible(void **state)
{
    (void)state;
    struct strategy_job job = {MODELS, 4, SPACE_CLASSIFICATION, 5, 1, 0, NULL};
    struct run a = {0}, b = {0}, c = {0};
    run_strategy(&strategy_tpe, &job, 50, 0, 2, score_flaky, &a);
    run_strategy(&strategy_tpe, &job, 50, 1, 2, score_flaky, &b);   /* restarted each time */
    job.seed = 6;
    run_strategy(&strategy_tpe, &job, 50, 0, 2, score_flaky, &c);
    int differ = 0;
    for (int i = 0; i < 50; i++) {
        assert_string_equal(a.text[i], b.text[i]);
        differ += strcmp(a.text[i], c.text[i]) != 0;
    }
    assert_true(differ >= 25);
    /* the same history gives the same proposal, in a fresh strategy too */
    char err[256];
    struct strategy s;
    const char *fam;
    cJSON *p;
    struct strategy_trial h[40];
    memcpy(h, a.hist, sizeof h);
    h[38].state = h[39].state = ST_RUNNING;   /* as they were (lag 2) */
    job.seed = 5;
    assert_int_equal(strategy_new(&s, &strategy_tpe, &job, NULL, err, sizeof err), 0);
    assert_int_equal(strategy_next(&s, h, 40, &fam, &p, err, sizeof err), 0);
    assert_string_equal(fam, a.hist[40].family);
    assert_true(cJSON_Compare(p, a.params[40], 1));
    cJSON_Delete(p);
    strategy_free(&s);
    run_free(&a, 50);
    run_free(&b, 50);
    run_free(&c, 50);
}

/* mean |log(lr / 0.1)| over the gbm proposals [from, to) that set it */
static double lr_distance(const struct run *r, int from, int to, int *count)
{
    double sum = 0;
    int n = 0;
    for (int i = from; i < to; i++) {
        if (strcmp(r->hist[i].family, "gbm") != 0) continue;
        const cJSON *lr = cJSON_GetObjectItemCaseSensitive(r->params[i], "learning_rate");
        if (!cJSON_IsNumber(lr)) continue;
        sum += fabs(log(lr->valuedouble / 0.1));
        n++;
    }
    *count = n;
    return n ? sum / n : INFINITY;
}

static void test_tpe_concentrates(void **state)
{
    (void)state;
    static const char *const fams[] = {"gbm", "knn", "linear", "rf"};
    int tpe_gbm = 0, rnd_gbm = 0;
    double tpe_d = 0, rnd_d = 0;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        struct strategy_job job = {fams, 4, SPACE_CLASSIFICATION, seed, 1, 0, NULL};
        struct run t = {0}, r = {0};
        run_strategy(&strategy_tpe, &job, 60, 0, 0, score_gbm_lr, &t);
        run_strategy(&strategy_random, &job, 60, 0, 0, score_gbm_lr, &r);
        int nt, nr, gt = 0, gr = 0;
        for (int i = 40; i < 60; i++) {
            gt += strcmp(t.hist[i].family, "gbm") == 0;
            gr += strcmp(r.hist[i].family, "gbm") == 0;
        }
        tpe_gbm += gt;
        rnd_gbm += gr;
        double dt = lr_distance(&t, 40, 60, &nt), dr = lr_distance(&r, 4, 60, &nr);
        print_message("seed %d: gbm among trials 41-60: tpe %d, random %d; mean |log(lr/0.1)|: "
                      "tpe %.3f (trials 41-60), random %.3f (trials 5-60)\n",
                      (int)seed, gt, gr, dt, dr);
        assert_true(nt > 0 && nr > 0);
        tpe_d += dt;
        rnd_d += dr;
        run_free(&t, 60);
        run_free(&r, 60);
    }
    /* 3 x 20 later proposals: most TPE's are gbm, a quarter of random's */
    assert_true(tpe_gbm >= 40);
    assert_true(tpe_gbm > rnd_gbm + 15);
    assert_true(tpe_d < 0.6 * rnd_d);
}

/* Lower is better: TPE must follow the job's direction. */
static double score_gbm_lr_loss(int seq, const char *family, const cJSON *params)
{
    return 1.0 - score_gbm_lr(seq, family, params);
}

static void test_tpe_direction(void **state)
{
    (void)state;
    static const char *const fams[] = {"gbm", "linear", "rf"};
    struct strategy_job job = {fams, 3, SPACE_REGRESSION, 9, 0, 30, NULL};
    struct run t = {0};
    run_strategy(&strategy_tpe, &job, 60, 0, 1, score_gbm_lr_loss, &t);
    int gbm = 0;
    for (int i = 40; i < 60; i++) gbm += strcmp(t.hist[i].family, "gbm") == 0;
    assert_true(gbm >= 12);
    run_free(&t, 60);
}

/* ---- ASHA ---- */

static const char *const ASHA_MODELS[] = {"gbm", "knn", "mlp"};

/* gbm: the learning-rate objective plus what more rounds buy; mlp: better
 * with a smaller alpha, and more epochs; knn 0.5; seq % 11 fails. */
static double score_asha(int seq, const char *family, const cJSON *params)
{
    if (seq % 11 == 0) return NAN;
    if (strcmp(family, "knn") == 0) return 0.5;
    if (strcmp(family, "gbm") == 0) {
        double d = log(num(params, "learning_rate", 0.1) / 0.1);
        return 0.8 * exp(-d * d) + 0.2 * log(num(params, "n_estimators", 100)) / log(500);
    }
    return 0.5 - 0.02 * log10(num(params, "alpha", 1e-4)) +
           0.1 * log(num(params, "max_iter", 200)) / log(400);
}

static int ladder(const char *family, int rung)
{
    static const int trees[] = {20, 60, 180, 500}, epochs[] = {15, 45, 135, 400};
    assert_true(rung >= 0 && rung < 4);
    return strcmp(family, "gbm") == 0 ? trees[rung] : epochs[rung];
}

static void check_asha(const struct run *r, int n, int lag, int *promotions, int *top)
{
    const cJSON *trials = cJSON_GetObjectItemCaseSensitive(r->state, "trials");
    assert_int_equal(cJSON_GetArraySize(trials), n);
    int rung[NMAX + 1], from[NMAX + 1], parent_of[NMAX + 1] = {0};
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(trials, i);
        assert_int_equal(cJSON_GetArrayItem(e, 0)->valueint, i + 1);
        rung[i + 1] = cJSON_GetArrayItem(e, 1)->valueint;
        from[i + 1] = cJSON_GetArrayItem(e, 2)->valueint;
    }
    *promotions = 0;
    *top = 0;
    for (int s = 1; s <= n; s++) {
        const struct strategy_trial *t = &r->hist[s - 1];
        check_accepted(t->family, SPACE_CLASSIFICATION, t->params);
        if (rung[s] > *top) *top = rung[s];
        const char *fid = strcmp(t->family, "gbm") == 0 ? "n_estimators" : "max_iter";
        if (strcmp(t->family, "knn") == 0) {
            assert_int_equal(rung[s], 0);
            assert_null(cJSON_GetObjectItemCaseSensitive(t->params, "n_estimators"));
        } else {
            assert_int_equal((int)num(t->params, fid, -1), ladder(t->family, rung[s]));
        }
        if (from[s] == 0) {
            assert_int_equal(rung[s], 0);
            continue;
        }
        /* a promotion: never twice, one rung up, the parent's params */
        int p = from[s];
        (*promotions)++;
        assert_true(p < s);
        assert_int_equal(parent_of[p], 0);
        parent_of[p] = s;
        assert_int_equal(rung[s], rung[p] + 1);
        assert_string_equal(t->family, r->hist[p - 1].family);
        assert_string_not_equal(t->family, "knn");
        cJSON *a = cJSON_Duplicate(t->params, 1), *b = cJSON_Duplicate(r->hist[p - 1].params, 1);
        cJSON_DeleteItemFromObjectCaseSensitive(a, fid);
        cJSON_DeleteItemFromObjectCaseSensitive(b, fid);
        assert_true(cJSON_Compare(a, b, 1));
        cJSON_Delete(a);
        cJSON_Delete(b);
        /* ... and the parent was in the top third of the trials finished
         * at its rung when s was proposed (those with seq < s - lag) */
        int finished = 0, better = 0;
        const struct strategy_trial *pt = &r->hist[p - 1];
        assert_int_equal(pt->state, ST_SUCCEEDED);
        assert_true(p < s - lag);
        for (int q = 1; q < s - lag; q++) {
            const struct strategy_trial *o = &r->hist[q - 1];
            if (rung[q] != rung[p] || strcmp(o->family, "knn") == 0) continue;
            finished++;
            if (o->state == ST_SUCCEEDED &&
                (o->score > pt->score || (o->score == pt->score && q < p)))
                better++;
        }
        assert_true(better < finished / 3);
    }
}

static void test_asha_promotes_top_third(void **state)
{
    (void)state;
    for (int lag = 0; lag <= 4; lag += 4) {
        struct strategy_job job = {ASHA_MODELS, 3, SPACE_CLASSIFICATION, 3, 1, 0, NULL};
        struct run r = {0};
        run_strategy(&strategy_asha, &job, NMAX, 0, lag, score_asha, &r);
        assert_string_equal(r.text[0], "gbm {\"n_estimators\":20}");
        assert_string_equal(r.text[1], "knn {}");
        assert_string_equal(r.text[2], "mlp {\"max_iter\":15}");
        int promotions, top;
        check_asha(&r, NMAX, lag, &promotions, &top);
        print_message("asha lag %d: %d promotions, top rung %d\n", lag, promotions, top);
        assert_true(promotions >= 10);
        assert_true(top >= 2);
        run_free(&r, NMAX);
    }
}

static void test_asha_restart(void **state)
{
    (void)state;
    struct strategy_job job = {ASHA_MODELS, 3, SPACE_CLASSIFICATION, 8, 1, 0, NULL};
    struct run a = {0}, b = {0}, c = {0};
    run_strategy(&strategy_asha, &job, 60, 0, 2, score_asha, &a);
    run_strategy(&strategy_asha, &job, 60, 1, 2, score_asha, &b);
    for (int i = 0; i < 60; i++) assert_string_equal(a.text[i], b.text[i]);
    assert_true(cJSON_Compare(a.state, b.state, 1));
    job.seed = 9;
    run_strategy(&strategy_asha, &job, 60, 0, 2, score_asha, &c);
    int differ = 0;
    for (int i = 0; i < 60; i++) differ += strcmp(a.text[i], c.text[i]) != 0;
    assert_true(differ >= 20);

    /* the state round-trips, and a bad one is tolerated entry by entry */
    char err[256];
    struct strategy s;
    assert_int_equal(strategy_new(&s, &strategy_asha, &job, a.state, err, sizeof err), 0);
    cJSON *saved = strategy_save(&s);
    assert_true(cJSON_Compare(saved, a.state, 1));
    cJSON_Delete(saved);
    strategy_free(&s);
    cJSON *bad = cJSON_Parse("{\"proposed\":-1,\"trials\":[[1,0,0],[2,1,1],[2,0,0],[0,0,0],"
                             "[3,99,0],[4,0,4],\"x\",[5.5,0,0],[6,1]]}");
    assert_int_equal(strategy_new(&s, &strategy_asha, &job, bad, err, sizeof err), 0);
    saved = strategy_save(&s);
    char *txt = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(saved, "trials"));
    assert_string_equal(txt, "[[1,0,0],[2,1,1]]");
    free(txt);
    cJSON_Delete(saved);
    cJSON_Delete(bad);
    strategy_free(&s);
    run_free(&a, 60);
    run_free(&b, 60);
    run_free(&c, 60);
}

/* A proposal whose trial never got stored (its transaction rolled back
 * after the state was computed) does not leave a ghost entry behind. */
static void test_asha_lost_proposal(void **state)
{
    (void)state;
    struct strategy_job job = {ASHA_MODELS, 3, SPACE_CLASSIFICATION, 8, 1, 0, NULL};
    struct run a = {0};
    run_strategy(&strategy_asha, &job, 30, 0, 0, score_asha, &a);
    char err[256];
    struct strategy s;
    const char *f1, *f2;
    cJSON *p1, *p2;
    assert_int_equal(strategy_new(&s, &strategy_asha, &job, a.state, err, sizeof err), 0);
    assert_int_equal(strategy_next(&s, a.hist, 30, &f1, &p1, err, sizeof err), 0);
    /* the same history again: the same proposal, one entry for seq 31 */
    assert_int_equal(strategy_next(&s, a.hist, 30, &f2, &p2, err, sizeof err), 0);
    assert_string_equal(f1, f2);
    assert_true(cJSON_Compare(p1, p2, 1));
    cJSON *saved = strategy_save(&s);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(saved, "trials")), 31);
    cJSON_Delete(saved);
    cJSON_Delete(p1);
    cJSON_Delete(p2);
    strategy_free(&s);
    run_free(&a, 30);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_good_first),
        cmocka_unit_test(test_reproducible),
        cmocka_unit_test(test_state_roundtrip),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_tpe_valid_params),
        cmocka_unit_test(test_tpe_reproducible),
        cmocka_unit_test(test_tpe_concentrates),
        cmocka_unit_test(test_tpe_direction),
        cmocka_unit_test(test_asha_promotes_top_third),
        cmocka_unit_test(test_asha_restart),
        cmocka_unit_test(test_asha_lost_proposal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
