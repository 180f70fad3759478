/* test_nn_optim.c - nn/optim against PyTorch: SGD (plain, momentum with
 * weight decay, nesterov, two groups one without decay) and AdamW (three
 * settings, two groups) step by step from fixed weights and gradients,
 * clip_grad_norm_, CosineAnnealingLR and LinearLR+cosine warmup. The
 * expected numbers are in tests/data/nn_train/torch_fixtures.h, generated
 * by make_fixtures.py next to it with torch (not needed here). Also: state
 * save/restore replays bit for bit, mismatched state is refused, bad
 * configurations are refused with a message. And the optimizer on the CPU
 * backend (optim_new_on: the table's sgd_step, adam_step, sumsq) gives the
 * host optimizer's bits exactly, with one thread and with several. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "nn/backend.h"
#include "nn/optim.h"
#include "tests/data/nn_train/torch_fixtures.h"

/* torch computes in float32 (with its own operation order); we keep float
 * storage and double intermediates, so allow a few float ulps. */
static void assert_close_f(double got, double want, double rel, const char *what, int t, int i)
{
    double tol = rel * (fabs(want) > 1.0 ? fabs(want) : 1.0);
    if (!(fabs(got - want) <= tol))
        fail_msg("%s step %d param %d: got %.9g want %.9g (|diff| %.3g > %.3g)", what, t, i, got,
                 want, fabs(got - want), tol);
}

/* Run FX_T steps over FX_N weights split into groups at `split` (0 = one
 * group); the second group is no_decay. Twice: an optimizer over host
 * arrays (optim_new) and one on the CPU backend (optim_new_on: the table's
 * sgd_step/adam_step over backend memory), which must agree bit for bit
 * at every step as well as with torch. */
static void replay(const char *what, const struct optim_config *cfg, const float *w0,
                   const float *g, const float *want, size_t split)
{
    char err[128];
    struct nn_backend *be = nn_backend_cpu_new(1, err, sizeof err);
    assert_non_null(be);
    float w[FX_N], grad[FX_N];
    float *bw = be->alloc(be, FX_N), *bg = be->alloc(be, FX_N), hw[FX_N], hg[FX_N];
    assert_true(bw && bg);
    memcpy(w, w0, sizeof w);
    be->upload(be, bw, w0, FX_N);
    struct optim_group groups[2] = {
        {w, grad, split ? split : FX_N, 0},
        {w + split, grad + split, FX_N - split, 1},
    };
    struct optim_group bgroups[2] = {
        {bw, bg, split ? split : FX_N, 0},
        {bw + split, bg + split, FX_N - split, 1},
    };
    struct optim *o, *ob;
    if (optim_new(cfg, groups, split ? 2 : 1, &o, err, sizeof err) != 0) fail_msg("%s", err);
    if (optim_new_on(be, cfg, bgroups, split ? 2 : 1, &ob, err, sizeof err) != 0) fail_msg("%s", err);
    assert_int_equal(optim_n_params(o), FX_N);
    assert_int_equal(optim_n_params(ob), FX_N);
    for (int t = 0; t < FX_T; t++) {
        memcpy(grad, g + t * FX_N, sizeof grad);
        be->upload(be, bg, g + t * FX_N, FX_N);
        optim_step(o);
        optim_step(ob);
        /* the gradients are left as given */
        assert_memory_equal(grad, g + t * FX_N, sizeof grad);
        be->download(be, hg, bg, FX_N);
        assert_memory_equal(hg, g + t * FX_N, sizeof hg);
        for (int i = 0; i < FX_N; i++) assert_close_f(w[i], want[t * FX_N + i], 2e-6, what, t, i);
        be->download(be, hw, bw, FX_N);
        if (memcmp(hw, w, sizeof w) != 0) fail_msg("%s step %d: the backend's weights differ", what, t);
    }
    assert_int_equal(optim_steps(o), FX_T);
    assert_int_equal(optim_steps(ob), FX_T);
    optim_free(o);
    optim_free(ob);
    be->free(be, bw);
    be->free(be, bg);
    nn_backend_free(be);
}

static void sgd_matches_torch(void **state)
{
    struct optim_config c;
    optim_config_init(&c, OPTIM_SGD);
    c.lr = 0.1;
    replay("sgd plain", &c, fx_sgd_plain_w0, fx_sgd_plain_g, fx_sgd_plain_w, 0);

    c.lr = 0.05, c.momentum = 0.9, c.weight_decay = 1e-2;
    replay("sgd momentum+wd", &c, fx_sgd_momentum_wd_w0, fx_sgd_momentum_wd_g, fx_sgd_momentum_wd_w, 0);

    c.lr = 0.02, c.momentum = 0.8, c.weight_decay = 5e-4, c.nesterov = 1;
    replay("sgd nesterov", &c, fx_sgd_nesterov_w0, fx_sgd_nesterov_g, fx_sgd_nesterov_w, 0);

    c.lr = 0.05, c.momentum = 0.9, c.weight_decay = 0.1, c.nesterov = 0;
    replay("sgd groups", &c, fx_sgd_groups_w0, fx_sgd_groups_g, fx_sgd_groups_w, 3);
}

static void adamw_matches_torch(void **state)
{
    struct optim_config c;
    optim_config_init(&c, OPTIM_ADAMW);
    assert_true(c.lr == 1e-3 && c.beta1 == 0.9 && c.beta2 == 0.999 && c.eps == 1e-8);
    assert_true(c.weight_decay == 1e-2);
    c.lr = 1e-2;
    replay("adamw", &c, fx_adamw_w0, fx_adamw_g, fx_adamw_w, 0);

    c.lr = 0.3, c.beta1 = 0.5, c.beta2 = 0.9, c.eps = 1e-3, c.weight_decay = 0.5;
    replay("adamw strong", &c, fx_adamw_strong_w0, fx_adamw_strong_g, fx_adamw_strong_w, 0);

    optim_config_init(&c, OPTIM_ADAMW);
    c.lr = 5e-2, c.weight_decay = 0.1;
    replay("adamw groups", &c, fx_adamw_groups_w0, fx_adamw_groups_g, fx_adamw_groups_w, 4);
}

static void clip_matches_torch(void **state)
{
    float a[9], b[9];
    memcpy(a, fx_clip_in, sizeof a);
    struct optim_group gs[2] = {{b, a, 5, 0}, {b + 5, a + 5, 4, 0}};
    double norm = optim_clip_groups(gs, 2, fx_clip_max);
    assert_close_f(norm, fx_clip_norm, 1e-6, "clip norm", 0, 0);
    for (int i = 0; i < 9; i++) assert_close_f(a[i], fx_clip_out[i], 2e-6, "clip", 0, i);

    /* after clipping, the norm is max_norm (up to torch's 1e-6) */
    assert_true(fabs(optim_clip_groups(gs, 2, 0) - fx_clip_max) < 1e-5);

    memcpy(a, fx_noclip_in, sizeof a);
    norm = optim_clip_groups(gs, 2, fx_noclip_max);
    assert_close_f(norm, fx_noclip_norm, 1e-6, "noclip norm", 0, 0);
    assert_memory_equal(a, fx_noclip_out, sizeof a);

    /* a non-finite norm leaves the gradients alone */
    memcpy(a, fx_clip_in, sizeof a);
    a[3] = INFINITY;
    norm = optim_clip_groups(gs, 2, 1.0);
    assert_true(isinf(norm));
    assert_true(a[0] == fx_clip_in[0] && isinf(a[3]));

    /* through an optimizer object */
    memcpy(a, fx_clip_in, sizeof a);
    struct optim_config c;
    optim_config_init(&c, OPTIM_SGD);
    struct optim *o;
    assert_int_equal(optim_new(&c, gs, 2, &o, NULL, 0), 0);
    assert_close_f(optim_clip_grad_norm(o, fx_clip_max), fx_clip_norm, 1e-6, "clip obj", 0, 0);
    assert_close_f(a[1], fx_clip_out[1], 2e-6, "clip obj", 0, 1);
    optim_zero_grad(o);
    for (int i = 0; i < 9; i++) assert_true(a[i] == 0.0f);
    optim_free(o);
}

/* Steps t of a deterministic, weight-dependent gradient. */
static void fake_grad(const float *w, float *g, size_t n, int t)
{
    for (size_t i = 0; i < n; i++) g[i] = sinf(w[i] * (float)(t + 1)) + 0.01f * (float)i;
}

/* Clipping and zeroing through the CPU backend's table (sumsq, scale,
 * fill): the same bits as over host arrays. */
static void clip_on_backend(void **state)
{
    char err[128];
    struct nn_backend *be = nn_backend_cpu_new(1, err, sizeof err);
    assert_non_null(be);
    float a[9], b[9] = {0}, got[9];
    float *bw = be->alloc(be, 9), *bg = be->alloc(be, 9);
    struct optim_group hs[2] = {{b, a, 5, 0}, {b + 5, a + 5, 4, 0}};
    struct optim_group bs[2] = {{bw, bg, 5, 0}, {bw + 5, bg + 5, 4, 0}};
    struct optim_config c;
    optim_config_init(&c, OPTIM_SGD);
    struct optim *o;
    assert_int_equal(optim_new_on(be, &c, bs, 2, &o, err, sizeof err), 0);
    const float *ins[2] = {fx_clip_in, fx_noclip_in};
    const double maxes[2] = {fx_clip_max, fx_noclip_max};
    for (int k = 0; k < 2; k++) {
        memcpy(a, ins[k], sizeof a);
        be->upload(be, bg, ins[k], 9);
        double want = optim_clip_groups(hs, 2, maxes[k]);
        double norm = optim_clip_grad_norm(o, maxes[k]);
        assert_memory_equal(&norm, &want, sizeof norm);
        be->download(be, got, bg, 9);
        assert_memory_equal(got, a, sizeof a);
    }
    /* a non-finite norm leaves the gradients alone */
    memcpy(a, fx_clip_in, sizeof a);
    a[3] = INFINITY;
    be->upload(be, bg, a, 9);
    assert_true(isinf(optim_clip_grad_norm(o, 1.0)));
    be->download(be, got, bg, 9);
    assert_memory_equal(got, a, sizeof a);
    optim_zero_grad(o);
    be->download(be, got, bg, 9);
    for (int i = 0; i < 9; i++) assert_true(got[i] == 0.0f);
    optim_free(o);
    be->free(be, bw);
    be->free(be, bg);
    nn_backend_free(be);
}

/* Many weights on a backend with worker threads (the updates are split
 * between them): still the host optimizer's bits, for SGD with nesterov
 * and AdamW over several steps, with clipping. */
static void backend_threads_same_bits(void **state)
{
    enum { N = 50000, T = 4 };
    char err[128];
    struct nn_backend *be = nn_backend_cpu_new(4, err, sizeof err);
    assert_non_null(be);
    float *w = malloc(N * sizeof *w), *g = malloc(N * sizeof *g), *hw = malloc(N * sizeof *hw);
    float *bw = be->alloc(be, N), *bg = be->alloc(be, N);
    assert_true(w && g && hw && bw && bg);
    for (int kind = 0; kind < 2; kind++) {
        for (int i = 0; i < N; i++) w[i] = 0.001f * (float)(i % 2000) - 1.0f;
        be->upload(be, bw, w, N);
        struct optim_config c;
        optim_config_init(&c, kind ? OPTIM_ADAMW : OPTIM_SGD);
        if (!kind) c.lr = 0.05, c.momentum = 0.9, c.nesterov = 1, c.weight_decay = 3e-4;
        struct optim_group hgrp[2] = {{w, g, 30000, 0}, {w + 30000, g + 30000, N - 30000, 1}};
        struct optim_group bgrp[2] = {{bw, bg, 30000, 0}, {bw + 30000, bg + 30000, N - 30000, 1}};
        struct optim *o, *ob;
        assert_int_equal(optim_new(&c, hgrp, 2, &o, err, sizeof err), 0);
        assert_int_equal(optim_new_on(be, &c, bgrp, 2, &ob, err, sizeof err), 0);
        for (int t = 0; t < T; t++) {
            fake_grad(w, g, N, t);
            be->upload(be, bg, g, N);
            double n1 = optim_clip_grad_norm(o, 5.0), n2 = optim_clip_grad_norm(ob, 5.0);
            assert_memory_equal(&n1, &n2, sizeof n1);
            optim_step(o);
            optim_step(ob);
            be->download(be, hw, bw, N);
            if (memcmp(hw, w, N * sizeof *w) != 0) fail_msg("kind %d step %d: weights differ", kind, t);
        }
        /* the state saved from the backend is the host optimizer's */
        size_t nb = optim_state_bytes(o);
        assert_int_equal(optim_state_bytes(ob), nb);
        unsigned char *s1 = malloc(nb), *s2 = malloc(nb);
        assert_int_equal(optim_state_save(o, s1, nb), 0);
        assert_int_equal(optim_state_save(ob, s2, nb), 0);
        assert_memory_equal(s1, s2, nb);
        free(s1);
        free(s2);
        optim_free(o);
        optim_free(ob);
    }
    be->free(be, bw);
    be->free(be, bg);
    free(w);
    free(g);
    free(hw);
    nn_backend_free(be);
}

static void schedules_match_torch(void **state)
{
    char err[128];
    struct optim_sched s = {OPTIM_SCHED_COSINE, 0.1, 1e-3, 0, 10};
    assert_int_equal(optim_sched_check(&s, err, sizeof err), 0);
    for (uint64_t k = 0; k < sizeof fx_cosine_lr / sizeof *fx_cosine_lr; k++)
        if (fabs(optim_sched_lr(&s, k) - fx_cosine_lr[k]) > 1e-12)
            fail_msg("cosine step %d: %.17g vs torch %.17g", (int)k, optim_sched_lr(&s, k), fx_cosine_lr[k]);
    /* past the end it stays at lr_min (torch's would come back up) */
    assert_true(optim_sched_lr(&s, 11) == 1e-3 && optim_sched_lr(&s, 1000) == 1e-3);

    struct optim_sched w = {OPTIM_SCHED_COSINE, 0.2, 0.0, 3, 12};
    assert_int_equal(optim_sched_check(&w, err, sizeof err), 0);
    for (uint64_t k = 0; k < sizeof fx_warmup_lr / sizeof *fx_warmup_lr; k++)
        if (fabs(optim_sched_lr(&w, k) - fx_warmup_lr[k]) > 1e-12)
            fail_msg("warmup step %d: %.17g vs torch %.17g", (int)k, optim_sched_lr(&w, k), fx_warmup_lr[k]);

    struct optim_sched c = {OPTIM_SCHED_CONSTANT, 0.03, 0, 0, 0};
    assert_int_equal(optim_sched_check(&c, err, sizeof err), 0);
    assert_true(optim_sched_lr(&c, 0) == 0.03 && optim_sched_lr(&c, 99999) == 0.03);

    struct optim_sched bad = {OPTIM_SCHED_COSINE, 0.1, 0.2, 0, 10};
    assert_int_equal(optim_sched_check(&bad, err, sizeof err), OPTIM_EARG);
    assert_non_null(strstr(err, "lr_min"));
    bad = (struct optim_sched){OPTIM_SCHED_COSINE, 0.1, 0.0, 10, 10};
    assert_int_equal(optim_sched_check(&bad, err, sizeof err), OPTIM_EARG);
    assert_non_null(strstr(err, "warmup"));
    bad = (struct optim_sched){OPTIM_SCHED_CONSTANT, NAN, 0.0, 0, 0};
    assert_int_equal(optim_sched_check(&bad, err, sizeof err), OPTIM_EARG);
}

static void save_restore_replays(void **state)
{
    enum { N = 10 };
    const int kinds[2] = {OPTIM_SGD, OPTIM_ADAMW};
    for (int k = 0; k < 2; k++) {
        float w[N], g[N], w_saved[N], w_run1[N];
        for (int i = 0; i < N; i++) w[i] = 0.1f * (float)i - 0.3f;
        struct optim_group grp = {w, g, N, 0};
        struct optim_config c;
        optim_config_init(&c, kinds[k]);
        c.momentum = kinds[k] == OPTIM_SGD ? 0.9 : 0;
        struct optim *o;
        assert_int_equal(optim_new(&c, &grp, 1, &o, NULL, 0), 0);
        for (int t = 0; t < 3; t++) fake_grad(w, g, N, t), optim_step(o);

        size_t nb = optim_state_bytes(o);
        unsigned char *buf = malloc(nb);
        assert_non_null(buf);
        assert_int_equal(optim_state_save(o, buf, nb - 1), OPTIM_EARG);
        assert_int_equal(optim_state_save(o, buf, nb), 0);
        memcpy(w_saved, w, sizeof w);
        double lr_saved = optim_lr(o);

        for (int t = 3; t < 7; t++) fake_grad(w, g, N, t), optim_step(o);
        memcpy(w_run1, w, sizeof w);
        assert_int_equal(optim_set_lr(o, 123.0), 0);

        /* restore the weights (the caller's job) and the state, replay */
        memcpy(w, w_saved, sizeof w);
        char err[160];
        assert_int_equal(optim_state_load(o, buf, nb, err, sizeof err), 0);
        assert_int_equal(optim_steps(o), 3);
        assert_true(optim_lr(o) == lr_saved);
        for (int t = 3; t < 7; t++) fake_grad(w, g, N, t), optim_step(o);
        assert_memory_equal(w, w_run1, sizeof w);

        /* wrong size, wrong kind, damaged magic: refused, nothing changed */
        uint64_t steps = optim_steps(o);
        assert_int_equal(optim_state_load(o, buf, nb - 1, err, sizeof err), OPTIM_ESTATE);
        assert_int_equal(optim_state_load(o, buf, 3, err, sizeof err), OPTIM_ESTATE);
        struct optim_group small = {w, g, N - 1, 0};
        struct optim *o2;
        assert_int_equal(optim_new(&c, &small, 1, &o2, NULL, 0), 0);
        assert_int_equal(optim_state_load(o2, buf, nb, err, sizeof err), OPTIM_ESTATE);
        assert_non_null(strstr(err, "parameters"));
        optim_free(o2);
        buf[0] ^= 0xff;
        assert_int_equal(optim_state_load(o, buf, nb, err, sizeof err), OPTIM_ESTATE);
        assert_non_null(strstr(err, "magic"));
        assert_int_equal(optim_steps(o), steps);
        free(buf);
        optim_free(o);
    }
}

/* Save/restore of an optimizer on the CPU backend: its state goes
 * through download/upload and replays bit for bit. */
static void save_restore_on_backend(void **state)
{
    enum { N = 10 };
    char err[160];
    struct nn_backend *be = nn_backend_cpu_new(1, err, sizeof err);
    assert_non_null(be);
    float *bw = be->alloc(be, N), *bg = be->alloc(be, N);
    float w[N], g[N], w_run1[N];
    for (int i = 0; i < N; i++) w[i] = 0.1f * (float)i - 0.3f;
    be->upload(be, bw, w, N);
    struct optim_group grp = {bw, bg, N, 0};
    struct optim_config c;
    optim_config_init(&c, OPTIM_ADAMW);
    struct optim *o;
    assert_int_equal(optim_new_on(be, &c, &grp, 1, &o, err, sizeof err), 0);
    for (int t = 0; t < 3; t++) {
        be->download(be, w, bw, N);
        fake_grad(w, g, N, t);
        be->upload(be, bg, g, N);
        optim_step(o);
    }
    size_t nb = optim_state_bytes(o);
    unsigned char *buf = malloc(nb);
    float w_saved[N];
    assert_int_equal(optim_state_save(o, buf, nb), 0);
    be->download(be, w_saved, bw, N);
    for (int pass = 0; pass < 2; pass++) {
        if (pass) {
            be->upload(be, bw, w_saved, N);
            assert_int_equal(optim_state_load(o, buf, nb, err, sizeof err), 0);
        }
        for (int t = 3; t < 7; t++) {
            be->download(be, w, bw, N);
            fake_grad(w, g, N, t);
            be->upload(be, bg, g, N);
            optim_step(o);
        }
        be->download(be, w, bw, N);
        if (pass) assert_memory_equal(w, w_run1, sizeof w);
        else memcpy(w_run1, w, sizeof w);
    }
    free(buf);
    optim_free(o);
    be->free(be, bw);
    be->free(be, bg);
    nn_backend_free(be);
}

static void lr_zero_and_set_lr(void **state)
{
    float w[3] = {1, 2, 3}, g[3] = {1, 1, 1};
    struct optim_group grp = {w, g, 3, 0};
    struct optim_config c;
    optim_config_init(&c, OPTIM_SGD);
    c.weight_decay = 0.1;
    struct optim *o;
    assert_int_equal(optim_new(&c, &grp, 1, &o, NULL, 0), 0);
    assert_int_equal(optim_set_lr(o, 0.0), 0);
    optim_step(o);
    assert_true(w[0] == 1 && w[1] == 2 && w[2] == 3);
    assert_int_equal(optim_set_lr(o, -1.0), OPTIM_EARG);
    assert_int_equal(optim_set_lr(o, NAN), OPTIM_EARG);
    assert_int_equal(optim_set_lr(o, 0.5), 0);
    assert_true(optim_lr(o) == 0.5);
    optim_step(o);
    /* w - 0.5 * (1 + 0.1 w) */
    assert_true(fabsf(w[0] - (1 - 0.5f * 1.1f)) < 1e-6f);
    assert_true(fabsf(w[2] - (3 - 0.5f * 1.3f)) < 1e-6f);
    optim_free(o);
    optim_free(NULL);
}

static void bad_configs_refused(void **state)
{
    float w[2], g[2];
    struct optim_group grp = {w, g, 2, 0};
    struct optim_config c;
    struct optim *o = (struct optim *)1;
    char err[160];

    optim_config_init(&c, OPTIM_SGD);
    c.momentum = 1.0;
    assert_int_equal(optim_new(&c, &grp, 1, &o, err, sizeof err), OPTIM_EARG);
    assert_null(o);
    assert_non_null(strstr(err, "momentum"));

    optim_config_init(&c, OPTIM_SGD);
    c.nesterov = 1;
    assert_int_equal(optim_new(&c, &grp, 1, &o, err, sizeof err), OPTIM_EARG);
    assert_non_null(strstr(err, "nesterov"));

    optim_config_init(&c, OPTIM_ADAMW);
    c.beta2 = 1.0;
    assert_int_equal(optim_new(&c, &grp, 1, &o, err, sizeof err), OPTIM_EARG);
    assert_non_null(strstr(err, "betas"));
    c.beta2 = 0.999, c.eps = 0;
    assert_int_equal(optim_new(&c, &grp, 1, &o, err, sizeof err), OPTIM_EARG);
    c.eps = 1e-8, c.weight_decay = -1;
    assert_int_equal(optim_new(&c, &grp, 1, &o, err, sizeof err), OPTIM_EARG);
    assert_non_null(strstr(err, "weight_decay"));
    c.weight_decay = 0, c.lr = INFINITY;
    assert_int_equal(optim_new(&c, &grp, 1, &o, err, sizeof err), OPTIM_EARG);
    c.lr = 1e-3, c.kind = 7;
    assert_int_equal(optim_new(&c, &grp, 1, &o, err, sizeof err), OPTIM_EARG);
    assert_non_null(strstr(err, "kind"));

    optim_config_init(&c, OPTIM_ADAMW);
    assert_int_equal(optim_new(&c, &grp, 0, &o, err, sizeof err), OPTIM_EARG);
    assert_non_null(strstr(err, "groups"));
    struct optim_group nullw = {NULL, g, 2, 0};
    assert_int_equal(optim_new(&c, &nullw, 1, &o, err, sizeof err), OPTIM_EARG);
    assert_non_null(strstr(err, "NULL"));
    struct optim_group huge[2] = {{w, g, (size_t)OPTIM_MAX_PARAMS, 0}, {w, g, 1, 0}};
    assert_int_equal(optim_new(&c, huge, 2, &o, err, sizeof err), OPTIM_EARG);
    assert_null(o);

    /* a backend without the optimizer entries */
    struct nn_backend *be = nn_backend_cpu_new(1, err, sizeof err);
    assert_non_null(be);
    assert_int_equal(optim_new_on(NULL, &c, &grp, 1, &o, err, sizeof err), OPTIM_EARG);
    be->sumsq = NULL;
    assert_int_equal(optim_new_on(be, &c, &grp, 1, &o, err, sizeof err), OPTIM_EARG);
    assert_non_null(strstr(err, "optimizer entries"));
    assert_null(o);
    nn_backend_free(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sgd_matches_torch),
        cmocka_unit_test(adamw_matches_torch),
        cmocka_unit_test(clip_matches_torch),
        cmocka_unit_test(clip_on_backend),
        cmocka_unit_test(backend_threads_same_bits),
        cmocka_unit_test(schedules_match_torch),
        cmocka_unit_test(save_restore_replays),
        cmocka_unit_test(save_restore_on_backend),
        cmocka_unit_test(lr_zero_and_set_lr),
        cmocka_unit_test(bad_configs_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
