/* test_nn_torch.c - the CNN engine's ops against PyTorch, forward and
 * backward, on the CPU backend.
 *
 * The reference values are committed fixtures under tests/data/nn/, made
 * by tests/data/nn/make_fixtures.py (PyTorch, float32, CPU; the format is
 * described there); torch is not needed here. Each case loads the inputs
 * and parameters, runs our op, runs backward from the same upstream
 * gradient (or from the loss), and requires every output and gradient
 * element to satisfy |ours - torch| <= 2e-5 + 1e-4 |torch|. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "nn/graph.h"
#include "nn/ops.h"
#include "nn/tensor.h"

#define ATOL 2e-5
#define RTOL 1e-4
#define FX_MAX 32

struct fx_arr {
    char name[32];
    int ndim, shape[NN_MAX_DIMS];
    size_t numel;
    float *v;
};

struct fx {
    int n;
    struct fx_arr a[FX_MAX];
    struct nn_backend *be;
    struct nn_graph *g;
    struct nn_tensor *own[FX_MAX];
    int nown;
};

static uint32_t rd_u32(FILE *f)
{
    unsigned char b[4];
    if (fread(b, 1, 4, f) != 4) fail_msg("fixture truncated");
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static FILE *open_fixture(const char *name)
{
    static const char *envs[] = {NULL, "PODIUM_SOURCE_DIR", "PODIUM_SRC_DIR"};
    char path[512];
    for (size_t i = 0; i < 3; i++) {
        const char *root = envs[i] ? getenv(envs[i]) : ".";
        if (!root) continue;
        snprintf(path, sizeof path, "%s/tests/data/nn/%s.bin", root, name);
        FILE *f = fopen(path, "rb");
        if (f) return f;
    }
    fail_msg("fixture %s not found (run from the repository root or set PODIUM_SOURCE_DIR)", name);
    return NULL;
}

static void fx_load(struct fx *x, const char *name)
{
    memset(x, 0, sizeof *x);
    FILE *f = open_fixture(name);
    char magic[4];
    if (fread(magic, 1, 4, f) != 4 || memcmp(magic, "NNFX", 4) != 0) fail_msg("%s: bad magic", name);
    uint32_t n = rd_u32(f);
    if (n > FX_MAX) fail_msg("%s: %u arrays", name, n);
    for (uint32_t i = 0; i < n; i++) {
        struct fx_arr *a = &x->a[i];
        uint32_t nl = rd_u32(f);
        if (nl == 0 || nl >= sizeof a->name || fread(a->name, 1, nl, f) != nl) fail_msg("%s: bad name", name);
        a->ndim = (int)rd_u32(f);
        if (a->ndim < 1 || a->ndim > NN_MAX_DIMS) fail_msg("%s: bad ndim", name);
        for (int d = 0; d < a->ndim; d++) a->shape[d] = (int)rd_u32(f);
        a->numel = nn_shape_numel(a->ndim, a->shape);
        if (!a->numel || a->numel > 1000000) fail_msg("%s: bad shape", name);
        a->v = malloc(a->numel * sizeof *a->v);
        for (size_t k = 0; k < a->numel; k++) {
            uint32_t u = rd_u32(f);
            memcpy(&a->v[k], &u, 4);
        }
        x->n++;
    }
    fclose(f);
    char err[256];
    x->be = nn_backend_cpu_new(1, err, sizeof err);
    x->g = nn_graph_new(x->be, err, sizeof err);
    assert_non_null(x->g);
}

static void fx_free(struct fx *x)
{
    for (int i = 0; i < x->n; i++) free(x->a[i].v);
    for (int i = 0; i < x->nown; i++) nn_tensor_free(x->own[i]);
    nn_graph_free(x->g);
    nn_backend_free(x->be);
}

static struct fx_arr *fx_get(struct fx *x, const char *name)
{
    for (int i = 0; i < x->n; i++)
        if (strcmp(x->a[i].name, name) == 0) return &x->a[i];
    fail_msg("fixture has no array %s", name);
    return NULL;
}

static int fx_has(struct fx *x, const char *name)
{
    for (int i = 0; i < x->n; i++)
        if (strcmp(x->a[i].name, name) == 0) return 1;
    return 0;
}

static int cfg(struct fx *x, int i) { return (int)fx_get(x, "cfg")->v[i]; }

/* A standalone tensor with the array's values; grad: with a gradient. */
static struct nn_tensor *fx_tensor(struct fx *x, const char *name, int grad)
{
    struct fx_arr *a = fx_get(x, name);
    char err[256];
    struct nn_tensor *t = nn_tensor_new(x->be, a->ndim, a->shape, grad, err, sizeof err);
    assert_non_null(t);
    nn_tensor_upload(t, a->v);
    x->own[x->nown++] = t;
    return t;
}

static int labels_of(struct fx *x, int *out)
{
    struct fx_arr *a = fx_get(x, "labels");
    for (size_t i = 0; i < a->numel; i++) out[i] = (int)a->v[i];
    return (int)a->numel;
}

/* Compare values (grad = 0) or the gradient of t with the array. */
static void expect(struct fx *x, const char *what, struct nn_tensor *t, const char *ref, int grad)
{
    struct fx_arr *a = fx_get(x, ref);
    assert_non_null(t);
    if (t->numel != a->numel) fail_msg("%s: %zu values, torch has %zu", what, t->numel, a->numel);
    float *v = malloc(t->numel * sizeof *v);
    if (grad) nn_tensor_download_grad(t, v);
    else nn_tensor_download(t, v);
    int bad = 0;
    double worst = 0;
    for (size_t i = 0; i < t->numel; i++) {
        double d = fabs((double)v[i] - a->v[i]);
        double lim = ATOL + RTOL * fabs(a->v[i]);
        if (d / lim > worst) worst = d / lim;
        if (d > lim && bad++ < 3)
            print_message("  %s[%zu]: ours %.8g, torch %.8g\n", what, i, (double)v[i], (double)a->v[i]);
    }
    free(v);
    if (bad) fail_msg("%s: %d of %zu values off (worst %.2f x tolerance)", what, bad, t->numel, worst);
}

static void backward_dy(struct fx *x, struct nn_tensor *y)
{
    char err[256];
    if (nn_graph_backward_from(x->g, y, fx_get(x, "dy")->v, err, sizeof err) != 0)
        fail_msg("backward: %s", err);
}

/* --- cases ------------------------------------------------------------------------ */

static void conv_case(const char *name)
{
    struct fx x;
    fx_load(&x, name);
    struct nn_tensor *in = fx_tensor(&x, "x", 1), *w = fx_tensor(&x, "w", 1);
    struct nn_tensor *b = cfg(&x, 4) ? fx_tensor(&x, "b", 1) : NULL;
    struct nn_tensor *y = nn_conv2d(x.g, in, w, b, cfg(&x, 0), cfg(&x, 1), cfg(&x, 2), cfg(&x, 3));
    expect(&x, "y", y, "y", 0);
    backward_dy(&x, y);
    expect(&x, "dx", in, "dx", 1);
    expect(&x, "dw", w, "dw", 1);
    if (b) expect(&x, "db", b, "db", 1);
    fx_free(&x);
}

static void test_conv_basic(void **s) { (void)s; conv_case("conv_basic"); }
static void test_conv_s2_d2_g2(void **s) { (void)s; conv_case("conv_s2_d2_g2"); }
static void test_conv_dw_s2(void **s) { (void)s; conv_case("conv_dw_s2"); }
static void test_conv_dw_dil(void **s) { (void)s; conv_case("conv_dw_dil"); }
static void test_conv_1x1_s2(void **s) { (void)s; conv_case("conv_1x1_s2"); }

static void pool_case(const char *name)
{
    struct fx x;
    fx_load(&x, name);
    struct nn_tensor *in = fx_tensor(&x, "x", 1);
    struct nn_tensor *y = cfg(&x, 0) ? nn_max_pool2d(x.g, in, cfg(&x, 1), cfg(&x, 2), cfg(&x, 3))
                                     : nn_avg_pool2d(x.g, in, cfg(&x, 1), cfg(&x, 2), cfg(&x, 3));
    expect(&x, "y", y, "y", 0);
    backward_dy(&x, y);
    expect(&x, "dx", in, "dx", 1);
    fx_free(&x);
}

static void test_maxpool(void **s) { (void)s; pool_case("maxpool_3_2_1"); }
static void test_avgpool_s1(void **s) { (void)s; pool_case("avgpool_3_1_1"); }
static void test_avgpool_s2(void **s) { (void)s; pool_case("avgpool_3_2_1"); }

static void bn_case(const char *name)
{
    struct fx x;
    fx_load(&x, name);
    int affine = cfg(&x, 1);
    struct nn_tensor *in = fx_tensor(&x, "x", 1);
    struct nn_tensor *gm = affine ? fx_tensor(&x, "gamma", 1) : NULL;
    struct nn_tensor *bt = affine ? fx_tensor(&x, "beta", 1) : NULL;
    struct nn_tensor *rm = fx_tensor(&x, "rm0", 0), *rv = fx_tensor(&x, "rv0", 0);
    nn_graph_set_training(x.g, cfg(&x, 0));
    struct nn_tensor *y = nn_batch_norm(x.g, in, gm, bt, rm, rv, 0.1f, 1e-5f);
    expect(&x, "y", y, "y", 0);
    expect(&x, "running_mean", rm, "rm", 0);
    expect(&x, "running_var", rv, "rv", 0);
    backward_dy(&x, y);
    expect(&x, "dx", in, "dx", 1);
    if (affine) {
        expect(&x, "dgamma", gm, "dgamma", 1);
        expect(&x, "dbeta", bt, "dbeta", 1);
    }
    fx_free(&x);
}

static void test_bn_train_affine(void **s) { (void)s; bn_case("bn_train_affine"); }
static void test_bn_train_plain(void **s) { (void)s; bn_case("bn_train_plain"); }
static void test_bn_eval(void **s) { (void)s; bn_case("bn_eval"); }

static void test_relu_gap(void **s)
{
    (void)s;
    struct fx x;
    fx_load(&x, "relu");
    struct nn_tensor *in = fx_tensor(&x, "x", 1), *y = nn_relu(x.g, in);
    expect(&x, "relu y", y, "y", 0);
    backward_dy(&x, y);
    expect(&x, "relu dx", in, "dx", 1);
    fx_free(&x);
    fx_load(&x, "gap");
    in = fx_tensor(&x, "x", 1);
    y = nn_global_avg_pool(x.g, in);
    expect(&x, "gap y", y, "y", 0);
    backward_dy(&x, y);
    expect(&x, "gap dx", in, "dx", 1);
    fx_free(&x);
}

static void test_linear(void **s)
{
    (void)s;
    struct fx x;
    fx_load(&x, "linear");
    struct nn_tensor *in = fx_tensor(&x, "x", 1), *w = fx_tensor(&x, "w", 1), *b = fx_tensor(&x, "b", 1);
    struct nn_tensor *y = nn_linear(x.g, in, w, b);
    expect(&x, "y", y, "y", 0);
    backward_dy(&x, y);
    expect(&x, "dx", in, "dx", 1);
    expect(&x, "dw", w, "dw", 1);
    expect(&x, "db", b, "db", 1);
    fx_free(&x);
}

static void test_softmax_ce(void **s)
{
    (void)s;
    struct fx x;
    fx_load(&x, "softmax_ce");
    int labels[16];
    labels_of(&x, labels);
    struct nn_tensor *z = fx_tensor(&x, "logits", 1), *p;
    struct nn_tensor *loss = nn_softmax_ce(x.g, z, labels, &p);
    expect(&x, "loss", loss, "loss", 0);
    expect(&x, "probs", p, "probs", 0);
    char err[256];
    assert_int_equal(nn_graph_backward(x.g, loss, err, sizeof err), 0);
    expect(&x, "dlogits", z, "dlogits", 1);
    fx_free(&x);
}

static void test_mixed_op(void **s)
{
    (void)s;
    struct fx x;
    fx_load(&x, "mixed_op");
    struct nn_tensor *alpha = fx_tensor(&x, "alpha", 1), *xs[4];
    char nm[16];
    for (int k = 0; k < 4; k++) {
        snprintf(nm, sizeof nm, "x%d", k);
        xs[k] = fx_tensor(&x, nm, 1);
    }
    struct nn_tensor *y = nn_wsum(x.g, 4, xs, nn_softmax(x.g, alpha), 4);
    expect(&x, "y", y, "y", 0);
    backward_dy(&x, y);
    expect(&x, "dalpha", alpha, "dalpha", 1);
    for (int k = 0; k < 4; k++) {
        snprintf(nm, sizeof nm, "dx%d", k);
        expect(&x, nm, xs[k], nm, 1);
    }
    fx_free(&x);
}

static void test_concat_slice(void **s)
{
    (void)s;
    struct fx x;
    fx_load(&x, "concat_slice");
    struct nn_tensor *xs[3] = {fx_tensor(&x, "a", 1), fx_tensor(&x, "b", 1), fx_tensor(&x, "c", 1)};
    struct nn_tensor *y = nn_slice(x.g, nn_concat(x.g, 3, xs), 1, 5);
    expect(&x, "y", y, "y", 0);
    backward_dy(&x, y);
    expect(&x, "da", xs[0], "da", 1);
    expect(&x, "db", xs[1], "db", 1);
    expect(&x, "dc", xs[2], "dc", 1);
    fx_free(&x);
}

/* conv-bn-relu-pool-linear-CE, with the parameters in a set (as a model
 * holds them) */
static void test_net(void **s)
{
    (void)s;
    struct fx x;
    fx_load(&x, "net");
    char err[256];
    struct nn_params *ps = nn_params_new(x.be);
    const char *names[] = {"cw", "cb", "gamma", "beta", "lw", "lb"};
    struct nn_tensor *p[6];
    for (int i = 0; i < 6; i++) {
        struct fx_arr *a = fx_get(&x, names[i]);
        p[i] = nn_params_add(ps, names[i], a->ndim, a->shape, NN_T_PARAM, err, sizeof err);
        assert_non_null(p[i]);
        nn_tensor_upload(p[i], a->v);
    }
    int cs[1] = {6};
    struct nn_tensor *rm = nn_params_add(ps, "rm", 1, cs, NN_T_BUFFER, err, sizeof err);
    struct nn_tensor *rv = nn_params_add(ps, "rv", 1, cs, NN_T_BUFFER, err, sizeof err);
    nn_init_const(rv, 1.0f);
    int labels[16];
    labels_of(&x, labels);
    struct nn_tensor *in = fx_tensor(&x, "x", 1);
    struct nn_graph *g = x.g;
    struct nn_tensor *h = nn_conv2d(g, in, p[0], p[1], 1, 1, 1, 1);
    h = nn_relu(g, nn_batch_norm(g, h, p[2], p[3], rm, rv, 0.1f, 1e-5f));
    struct nn_tensor *logits = nn_linear(g, nn_max_pool2d(g, h, 2, 2, 0), p[4], p[5]);
    struct nn_tensor *loss = nn_softmax_ce(g, logits, labels, NULL);
    expect(&x, "logits", logits, "logits", 0);
    expect(&x, "loss", loss, "loss", 0);
    expect(&x, "running_mean", rm, "rm", 0);
    expect(&x, "running_var", rv, "rv", 0);
    assert_int_equal(nn_graph_backward(g, loss, err, sizeof err), 0);
    expect(&x, "dx", in, "dx", 1);
    const char *grads[] = {"dcw", "dcb", "dgamma", "dbeta", "dlw", "dlb"};
    for (int i = 0; i < 6; i++) expect(&x, grads[i], p[i], grads[i], 1);
    assert_int_equal(nn_params_numel(ps), 6 * 27 + 6 + 6 + 6 + 960 + 10);
    assert_true(fx_has(&x, "labels"));
    nn_params_free(ps);
    fx_free(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_basic),
        cmocka_unit_test(test_conv_s2_d2_g2),
        cmocka_unit_test(test_conv_dw_s2),
        cmocka_unit_test(test_conv_dw_dil),
        cmocka_unit_test(test_conv_1x1_s2),
        cmocka_unit_test(test_maxpool),
        cmocka_unit_test(test_avgpool_s1),
        cmocka_unit_test(test_avgpool_s2),
        cmocka_unit_test(test_bn_train_affine),
        cmocka_unit_test(test_bn_train_plain),
        cmocka_unit_test(test_bn_eval),
        cmocka_unit_test(test_relu_gap),
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_softmax_ce),
        cmocka_unit_test(test_mixed_op),
        cmocka_unit_test(test_concat_slice),
        cmocka_unit_test(test_net),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
