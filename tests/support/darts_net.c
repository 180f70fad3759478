/*
 * darts_net.c - see darts_net.h. The structure follows DARTS' model_search.py
 * (search) and model.py (retrain): stem conv-BN, cells with two
 * preprocessing convs, nodes summing ops over earlier states, output the
 * concatenation of the nodes, global average pool, linear classifier.
 */
#include "tests/support/darts_net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ops.h"

enum { OP_NONE, OP_MAX, OP_AVG, OP_SKIP, OP_SEP3, OP_SEP5, OP_DIL3, OP_DIL5, N_OPS };

#define MAX_NODES 6
#define MAX_EDGES (MAX_NODES * (MAX_NODES + 3) / 2)

/* DARTS_V2: (op, input) pairs, two per node */
static const int V2_NORMAL[8][2] = {{OP_SEP3, 0}, {OP_SEP3, 1}, {OP_SEP3, 0}, {OP_SEP3, 1},
                                    {OP_SEP3, 1}, {OP_SKIP, 0}, {OP_SKIP, 0}, {OP_DIL3, 2}};
static const int V2_REDUCE[8][2] = {{OP_MAX, 0}, {OP_MAX, 1}, {OP_SKIP, 2}, {OP_MAX, 1},
                                    {OP_MAX, 0}, {OP_SKIP, 2}, {OP_SKIP, 2}, {OP_MAX, 1}};

struct bn { struct nn_tensor *g, *b, *rm, *rv; };

struct op {
    int kind, stride, c;
    struct nn_tensor *w[4];  /* sep: dw1 pw1 dw2 pw2; dil: dw pw; skip s2: conv1 conv2 */
    struct bn bn[2];
};

/* ReLU-conv-BN (1x1) or a factorized reduce: a preprocessing step */
struct pre {
    int reduce;
    struct nn_tensor *w[2];
    struct bn bn;
};

struct edge {
    int nops;
    struct op ops[N_OPS];
    int kinds[N_OPS];
};

struct cell {
    int reduction, c;
    struct pre pre0, pre1;
    struct edge edges[MAX_EDGES];
};

struct darts_net {
    struct nn_backend *be;
    struct darts_cfg cfg;
    struct nn_params *ps;
    struct nn_rng rng;
    int counter, affine;
    char *err;
    size_t errlen;
    int failed;
    struct nn_tensor *stem_w;
    struct bn stem_bn;
    struct cell *cells;
    struct nn_tensor *alpha_normal, *alpha_reduce, *fc_w, *fc_b;
    float **mom;             /* backend memory, one per parameter (NULL: none yet) */
};

/* --- building ----------------------------------------------------------------------- */

static struct nn_tensor *param(struct darts_net *n, int ndim, const int *shape, unsigned kind)
{
    if (n->failed) return NULL;
    char name[32];
    snprintf(name, sizeof name, "t%05d", n->counter++);
    struct nn_tensor *t = nn_params_add(n->ps, name, ndim, shape, kind, n->err, n->errlen);
    if (!t) n->failed = 1;
    return t;
}

static struct nn_tensor *conv_w(struct darts_net *n, int cout, int cin_per_group, int k)
{
    int s[4] = {cout, cin_per_group, k, k};
    struct nn_tensor *w = param(n, 4, s, NN_T_PARAM);
    if (w) nn_init_kaiming_uniform(w, cin_per_group * k * k, &n->rng);
    return w;
}

static void bn_make(struct darts_net *n, struct bn *b, int c, int affine)
{
    int s[1] = {c};
    b->g = affine ? param(n, 1, s, NN_T_PARAM) : NULL;
    b->b = affine ? param(n, 1, s, NN_T_PARAM) : NULL;
    b->rm = param(n, 1, s, NN_T_BUFFER);
    b->rv = param(n, 1, s, NN_T_BUFFER);
    if (n->failed) return;
    if (b->g) nn_init_const(b->g, 1.0f);
    nn_init_const(b->rv, 1.0f);
}

static void op_make(struct darts_net *n, struct op *o, int kind, int c, int stride)
{
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->c = c;
    o->stride = stride;
    int search = n->cfg.search;
    switch (kind) {
    case OP_MAX:
    case OP_AVG:
        if (search) bn_make(n, &o->bn[0], c, 0);
        break;
    case OP_SKIP:
        if (stride == 2) {
            o->w[0] = conv_w(n, c / 2, c, 1);
            o->w[1] = conv_w(n, c - c / 2, c, 1);
            bn_make(n, &o->bn[0], c, n->affine);
        }
        break;
    case OP_SEP3:
    case OP_SEP5: {
        int k = kind == OP_SEP3 ? 3 : 5;
        o->w[0] = conv_w(n, c, 1, k);
        o->w[1] = conv_w(n, c, c, 1);
        bn_make(n, &o->bn[0], c, n->affine);
        o->w[2] = conv_w(n, c, 1, k);
        o->w[3] = conv_w(n, c, c, 1);
        bn_make(n, &o->bn[1], c, n->affine);
        break;
    }
    case OP_DIL3:
    case OP_DIL5:
        o->w[0] = conv_w(n, c, 1, kind == OP_DIL3 ? 3 : 5);
        o->w[1] = conv_w(n, c, c, 1);
        bn_make(n, &o->bn[0], c, n->affine);
        break;
    default:
        break;
    }
}

static void pre_make(struct darts_net *n, struct pre *p, int cin, int cout, int reduce)
{
    p->reduce = reduce;
    if (reduce) {
        p->w[0] = conv_w(n, cout / 2, cin, 1);
        p->w[1] = conv_w(n, cout - cout / 2, cin, 1);
    } else {
        p->w[0] = conv_w(n, cout, cin, 1);
    }
    bn_make(n, &p->bn, cout, n->affine);
}

static int n_edges(int nodes) { return nodes * (nodes + 3) / 2; }

struct darts_net *darts_net_new(struct nn_backend *be, const struct darts_cfg *cfg, char *err,
                                size_t errlen)
{
    if (cfg->nodes < 1 || cfg->nodes > MAX_NODES || cfg->cells < 1 || cfg->c < 2 ||
        (!cfg->search && cfg->nodes != 4)) {
        snprintf(err, errlen, "darts_net: bad configuration");
        return NULL;
    }
    struct darts_net *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->be = be;
    n->cfg = *cfg;
    n->err = err;
    n->errlen = errlen;
    n->affine = !cfg->search;
    nn_rng_seed(&n->rng, cfg->seed);
    n->ps = nn_params_new(be);
    n->cells = calloc((size_t)cfg->cells, sizeof *n->cells);
    if (!n->ps || !n->cells) goto fail;
    int c = cfg->c, stem_c = 3 * c;
    n->stem_w = conv_w(n, stem_c, cfg->in_ch, 3);
    bn_make(n, &n->stem_bn, stem_c, 1);
    int c_pp = stem_c, c_p = stem_c, c_cur = c, red_prev = 0;
    for (int i = 0; i < cfg->cells; i++) {
        struct cell *cl = &n->cells[i];
        cl->reduction = cfg->cells >= 3 && (i == cfg->cells / 3 || i == 2 * cfg->cells / 3);
        if (cl->reduction) c_cur *= 2;
        cl->c = c_cur;
        pre_make(n, &cl->pre0, c_pp, c_cur, red_prev);
        pre_make(n, &cl->pre1, c_p, c_cur, 0);
        int e = 0;
        for (int node = 0; node < cfg->nodes; node++)
            for (int j = 0; j < 2 + node; j++, e++) {
                struct edge *ed = &cl->edges[e];
                int stride = cl->reduction && j < 2 ? 2 : 1;
                if (cfg->search) {
                    for (int k = 0; k < N_OPS; k++) {
                        ed->kinds[k] = k;
                        op_make(n, &ed->ops[k], k, c_cur, stride);
                    }
                    ed->nops = N_OPS;
                    continue;
                }
                const int(*geno)[2] = cl->reduction ? V2_REDUCE : V2_NORMAL;
                for (int t = 0; t < 2; t++)
                    if (geno[2 * node + t][1] == j) {
                        ed->kinds[ed->nops] = geno[2 * node + t][0];
                        op_make(n, &ed->ops[ed->nops], geno[2 * node + t][0], c_cur, stride);
                        ed->nops++;
                    }
            }
        red_prev = cl->reduction;
        c_pp = c_p;
        c_p = cfg->nodes * c_cur;
    }
    if (cfg->search) {
        int as[2] = {n_edges(cfg->nodes), N_OPS};
        n->alpha_normal = param(n, 2, as, NN_T_PARAM);
        n->alpha_reduce = param(n, 2, as, NN_T_PARAM);
        if (n->alpha_normal) nn_init_uniform(n->alpha_normal, 1e-3f, &n->rng);
        if (n->alpha_reduce) nn_init_uniform(n->alpha_reduce, 1e-3f, &n->rng);
    }
    int fs[2] = {cfg->classes, c_p}, bs[1] = {cfg->classes};
    n->fc_w = param(n, 2, fs, NN_T_PARAM);
    n->fc_b = param(n, 1, bs, NN_T_PARAM);
    if (n->failed) goto fail;
    nn_init_kaiming_uniform(n->fc_w, c_p, &n->rng);
    nn_init_kaiming_uniform(n->fc_b, c_p, &n->rng);
    n->mom = calloc((size_t)nn_params_count(n->ps), sizeof *n->mom);
    if (!n->mom) goto fail;
    return n;
fail:
    if (!n->failed) snprintf(err, errlen, "darts_net: out of memory");
    darts_net_free(n);
    return NULL;
}

void darts_net_free(struct darts_net *n)
{
    if (!n) return;
    if (n->mom)
        for (int i = 0; i < nn_params_count(n->ps); i++) n->be->free(n->be, n->mom[i]);
    free(n->mom);
    nn_params_free(n->ps);
    free(n->cells);
    free(n);
}

struct nn_params *darts_net_params(struct darts_net *n) { return n->ps; }

/* --- forward ------------------------------------------------------------------------ */

static struct nn_tensor *bn_run(struct nn_graph *g, const struct bn *b, struct nn_tensor *x)
{
    return nn_batch_norm(g, x, b->g, b->b, b->rm, b->rv, 0.1f, 1e-5f);
}

static struct nn_tensor *conv(struct nn_graph *g, struct nn_tensor *x, struct nn_tensor *w, int stride,
                              int pad, int dil, int groups)
{
    return nn_conv2d(g, x, w, NULL, stride, pad, dil, groups);
}

/* relu, two stride-2 1x1 convs, concat, BN */
static struct nn_tensor *fact_reduce(struct nn_graph *g, struct nn_tensor *const w[2], const struct bn *b,
                                     struct nn_tensor *x)
{
    x = nn_relu(g, x);
    struct nn_tensor *parts[2] = {conv(g, x, w[0], 2, 0, 1, 1), conv(g, x, w[1], 2, 0, 1, 1)};
    return bn_run(g, b, nn_concat(g, 2, parts));
}

static struct nn_tensor *pre_run(struct nn_graph *g, const struct pre *p, struct nn_tensor *x)
{
    if (p->reduce) return fact_reduce(g, p->w, &p->bn, x);
    return bn_run(g, &p->bn, conv(g, nn_relu(g, x), p->w[0], 1, 0, 1, 1));
}

static struct nn_tensor *op_run(struct darts_net *n, struct nn_graph *g, const struct op *o,
                                struct nn_tensor *x)
{
    if (!x) return NULL;
    int s = o->stride, c = o->c;
    switch (o->kind) {
    case OP_NONE: {
        int shape[4] = {x->shape[0], c, (x->shape[2] - 1) / s + 1, (x->shape[3] - 1) / s + 1};
        return nn_zeros(g, 4, shape);
    }
    case OP_MAX:
    case OP_AVG: {
        struct nn_tensor *y = o->kind == OP_MAX ? nn_max_pool2d(g, x, 3, s, 1) : nn_avg_pool2d(g, x, 3, s, 1);
        return n->cfg.search ? bn_run(g, &o->bn[0], y) : y;
    }
    case OP_SKIP:
        return s == 1 ? nn_identity(g, x) : fact_reduce(g, o->w, &o->bn[0], x);
    case OP_SEP3:
    case OP_SEP5: {
        int k = o->kind == OP_SEP3 ? 3 : 5;
        x = conv(g, nn_relu(g, x), o->w[0], s, k / 2, 1, c);
        x = bn_run(g, &o->bn[0], conv(g, x, o->w[1], 1, 0, 1, 1));
        x = conv(g, nn_relu(g, x), o->w[2], 1, k / 2, 1, c);
        return bn_run(g, &o->bn[1], conv(g, x, o->w[3], 1, 0, 1, 1));
    }
    case OP_DIL3:
    case OP_DIL5: {
        int k = o->kind == OP_DIL3 ? 3 : 5;
        x = conv(g, nn_relu(g, x), o->w[0], s, k - 1, 2, c);
        return bn_run(g, &o->bn[0], conv(g, x, o->w[1], 1, 0, 1, 1));
    }
    default:
        return nn_graph_fail(g, "darts_net: unknown op %d", o->kind);
    }
}

static struct nn_tensor *sum2(struct nn_graph *g, struct nn_tensor *a, struct nn_tensor *b)
{
    return a ? nn_add(g, a, b) : b;
}

static struct nn_tensor *cell_run(struct darts_net *n, struct nn_graph *g, const struct cell *cl,
                                  struct nn_tensor *s0, struct nn_tensor *s1, struct nn_tensor *w)
{
    struct nn_tensor *states[MAX_NODES + 2];
    states[0] = pre_run(g, &cl->pre0, s0);
    states[1] = pre_run(g, &cl->pre1, s1);
    int e = 0;
    for (int node = 0; node < n->cfg.nodes; node++) {
        struct nn_tensor *acc = NULL;
        for (int j = 0; j < 2 + node; j++, e++) {
            const struct edge *ed = &cl->edges[e];
            if (!ed->nops) continue;
            if (!w) {
                for (int k = 0; k < ed->nops; k++) acc = sum2(g, acc, op_run(n, g, &ed->ops[k], states[j]));
                continue;
            }
            struct nn_tensor *outs[N_OPS];
            for (int k = 0; k < ed->nops; k++) outs[k] = op_run(n, g, &ed->ops[k], states[j]);
            acc = sum2(g, acc, nn_wsum(g, ed->nops, outs, w, e * N_OPS));
        }
        states[2 + node] = acc;
    }
    return nn_concat(g, n->cfg.nodes, states + 2);
}

struct nn_tensor *darts_net_forward(struct darts_net *n, struct nn_graph *g, struct nn_tensor *x)
{
    struct nn_tensor *wn = NULL, *wr = NULL;
    if (n->cfg.search) {
        wn = nn_softmax(g, n->alpha_normal);
        wr = nn_softmax(g, n->alpha_reduce);
    }
    struct nn_tensor *s0 = bn_run(g, &n->stem_bn, conv(g, x, n->stem_w, 1, 1, 1, 1)), *s1 = s0;
    for (int i = 0; i < n->cfg.cells; i++) {
        const struct cell *cl = &n->cells[i];
        struct nn_tensor *s2 = cell_run(n, g, cl, s0, s1, cl->reduction ? wr : wn);
        s0 = s1;
        s1 = s2;
    }
    return nn_linear(g, nn_global_avg_pool(g, s1), n->fc_w, n->fc_b);
}

/* --- SGD on the backend --------------------------------------------------------------- */

void darts_net_sgd(struct darts_net *n, float lr, float momentum, float wd)
{
    struct nn_backend *be = n->be;
    for (int i = 0; i < nn_params_count(n->ps); i++) {
        struct nn_tensor *p = nn_params_get(n->ps, i);
        if (!p->grad) continue;
        if (!n->mom[i]) {
            n->mom[i] = be->alloc(be, p->numel);
            if (!n->mom[i]) {
                fprintf(stderr, "darts_net_sgd: out of backend memory\n");
                abort();
            }
            be->fill(be, n->mom[i], 0.0f, p->numel);
        }
        float *b = n->mom[i];
        be->scale(be, b, momentum, b, p->numel);          /* b = m b */
        be->axpy(be, b, 1.0f, p->grad, p->numel);         /*   + g  */
        if (wd != 0.0f) be->axpy(be, b, wd, p->data, p->numel); /* + wd w */
        be->axpy(be, p->data, -lr, b, p->numel);          /* w -= lr b */
    }
}
