/*
 * cnnnet.c - see cnnnet.h. Building allocates every parameter up front
 * (names "stem.w", "cells.3.pre1.w", "cells.3.edges.5.op4.pw2", ...: they
 * key the saved weights); a forward pass only calls nn/ops, so the graph's
 * arena and tape hold all per-step state. Runs on the caller's thread.
 */
#include "trainers/cnnnet.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ops.h"
#include "trainers/rng.h"

struct bn { struct nn_tensor *gamma, *beta, *rm, *rv; };
/* factorized reduce; shift is the fixed one-hot kernel (owned here) */
struct fr { struct nn_tensor *w1, *w2, *shift; struct bn bn; int cin; };
/* ReLU, conv 1x1, BN */
struct rcb { struct nn_tensor *w; struct bn bn; };

struct op {
    int kind;                /* enum genotype_op */
    int stride;
    struct nn_tensor *w[4];  /* sep: dw1 pw1 dw2 pw2; dil: dw pw */
    struct bn bn[2];         /* sep: both; dil, supernet pools: bn[0] */
    struct fr fr;            /* skip_connect at stride 2 */
};

struct edge {
    int input;               /* state index: 0, 1 the cell inputs, 2 + j node j */
    int n_ops;               /* 1 (fixed) or GOP_COUNT (supernet: ops[k] is op k) */
    struct op *ops;
};

struct cell {
    int reduction, reduction_prev, c;
    struct fr pre0_fr;       /* when reduction_prev */
    struct rcb pre0, pre1;
    int n_edges;
    struct edge edges[CNNNET_SEARCH_EDGES];
};

/* The auxiliary head (training only): ReLU, avg pool k at stride s, conv
 * 1x1 -> 128, BN, ReLU, conv 2x2 -> 768, BN, ReLU, global average pool,
 * linear. */
struct auxhead {
    int cell;                /* after this cell; -1: no head */
    int k, s;                /* the pool */
    struct nn_tensor *w1, *w2, *fc_w, *fc_b;
    struct bn bn1, bn2;
};

struct cnnnet {
    struct cnnnet_config cfg;
    struct nn_backend *be;
    struct nn_params *weights, *arch, *aux_ps;
    struct auxhead aux;
    struct nn_tensor *alphas[2];   /* normal, reduce */
    struct nn_tensor *stem_w;
    struct bn stem_bn;
    struct cell *cells;
    struct nn_tensor *fc_w, *fc_b;
    struct nn_tensor **owned;      /* shift kernels */
    int n_owned, cap_owned;
};

/* ---- building ------------------------------------------------------------- */

struct build {
    struct cnnnet *net;
    struct nn_params *ps;    /* where param() adds: the weights, or the aux head's */
    struct nn_rng rng;
    char *err;
    size_t errlen;
    int failed;
};

__attribute__((format(printf, 2, 3)))
static int fail(struct build *b, const char *fmt, ...)
{
    if (!b->failed && b->err && b->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(b->err, b->errlen, fmt, ap);
        va_end(ap);
    }
    b->failed = 1;
    return -1;
}

__attribute__((format(printf, 5, 6)))
static struct nn_tensor *param(struct build *b, int ndim, const int *shape, unsigned kind,
                               const char *fmt, ...)
{
    if (b->failed) return NULL;
    char name[NN_MAX_NAME];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= sizeof name) {
        fail(b, "cnnnet: parameter name too long");
        return NULL;
    }
    char msg[256] = "";
    struct nn_tensor *t = nn_params_add(b->ps, name, ndim, shape, kind, msg, sizeof msg);
    if (t == NULL) fail(b, "cnnnet: %s", msg[0] ? msg : "out of memory");
    return t;
}

/* A conv weight [cout, cin_g, k, k] with PyTorch's default init. */
static struct nn_tensor *conv_w(struct build *b, const char *prefix, const char *what, int cout,
                                int cin_g, int k)
{
    int shape[4] = {cout, cin_g, k, k};
    struct nn_tensor *t = param(b, 4, shape, NN_T_PARAM, "%s.%s", prefix, what);
    if (t) nn_init_kaiming_uniform(t, cin_g * k * k, &b->rng);
    return t;
}

static void bn_build(struct build *b, struct bn *bn, const char *prefix, const char *what, int c,
                     int affine)
{
    int shape[1] = {c};
    memset(bn, 0, sizeof *bn);
    if (affine) {
        bn->gamma = param(b, 1, shape, NN_T_PARAM, "%s.%s.gamma", prefix, what);
        bn->beta = param(b, 1, shape, NN_T_PARAM, "%s.%s.beta", prefix, what);
        if (bn->gamma) nn_init_const(bn->gamma, 1.0f);
    }
    bn->rm = param(b, 1, shape, NN_T_BUFFER, "%s.%s.mean", prefix, what);
    bn->rv = param(b, 1, shape, NN_T_BUFFER, "%s.%s.var", prefix, what);
    if (bn->rv) nn_init_const(bn->rv, 1.0f);
}

static void fr_build(struct build *b, struct fr *fr, const char *prefix, int cin, int cout,
                     int affine)
{
    int half = cout / 2;
    fr->cin = cin;
    fr->w1 = conv_w(b, prefix, "c1", half, cin, 1);
    fr->w2 = conv_w(b, prefix, "c2", cout - half, cin, 1);
    bn_build(b, &fr->bn, prefix, "bn", cout, affine);
    if (b->failed) return;
    /* the one-hot 3x3 kernel that picks x[2i+1][2j+1] at stride 2, pad 1 */
    struct cnnnet *net = b->net;
    if (net->n_owned == net->cap_owned) {
        int cap = net->cap_owned ? 2 * net->cap_owned : 32;
        struct nn_tensor **o = realloc(net->owned, (size_t)cap * sizeof *o);
        if (o == NULL) {
            fail(b, "cnnnet: out of memory");
            return;
        }
        net->owned = o;
        net->cap_owned = cap;
    }
    int shape[4] = {cin, 1, 3, 3};
    char msg[256] = "";
    fr->shift = nn_tensor_new(net->be, 4, shape, 0, msg, sizeof msg);
    float *h = calloc((size_t)cin * 9, sizeof *h);
    if (fr->shift == NULL || h == NULL) {
        nn_tensor_free(fr->shift);
        fr->shift = NULL;
        free(h);
        fail(b, "cnnnet: %s", msg[0] ? msg : "out of memory");
        return;
    }
    net->owned[net->n_owned++] = fr->shift;
    for (int c = 0; c < cin; c++) h[(size_t)c * 9 + 8] = 1.0f;
    nn_tensor_upload(fr->shift, h);
    free(h);
}

static void rcb_build(struct build *b, struct rcb *r, const char *prefix, int cin, int cout,
                      int affine)
{
    r->w = conv_w(b, prefix, "w", cout, cin, 1);
    bn_build(b, &r->bn, prefix, "bn", cout, affine);
}

static void op_build(struct build *b, struct op *op, const char *prefix, int kind, int c,
                     int stride, int search)
{
    int affine = !search;
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->stride = stride;
    switch (kind) {
    case GOP_NONE:
        break;
    case GOP_MAX_POOL_3X3:
    case GOP_AVG_POOL_3X3:
        if (search) bn_build(b, &op->bn[0], prefix, "bn", c, 0);
        break;
    case GOP_SKIP_CONNECT:
        if (stride != 1) fr_build(b, &op->fr, prefix, c, c, affine);
        break;
    case GOP_SEP_CONV_3X3:
    case GOP_SEP_CONV_5X5: {
        int k = kind == GOP_SEP_CONV_3X3 ? 3 : 5;
        op->w[0] = conv_w(b, prefix, "dw1", c, 1, k);
        op->w[1] = conv_w(b, prefix, "pw1", c, c, 1);
        bn_build(b, &op->bn[0], prefix, "bn1", c, affine);
        op->w[2] = conv_w(b, prefix, "dw2", c, 1, k);
        op->w[3] = conv_w(b, prefix, "pw2", c, c, 1);
        bn_build(b, &op->bn[1], prefix, "bn2", c, affine);
        break;
    }
    case GOP_DIL_CONV_3X3:
    case GOP_DIL_CONV_5X5: {
        int k = kind == GOP_DIL_CONV_3X3 ? 3 : 5;
        op->w[0] = conv_w(b, prefix, "dw", c, 1, k);
        op->w[1] = conv_w(b, prefix, "pw", c, c, 1);
        bn_build(b, &op->bn[0], prefix, "bn", c, affine);
        break;
    }
    default:
        fail(b, "cnnnet: unknown op %d", kind);
    }
}

static void cell_build(struct build *b, struct cell *cl, int idx, int c_pp, int c_p)
{
    const struct cnnnet_config *cfg = &b->net->cfg;
    int search = cfg->mode == CNNNET_SEARCH, affine = !search, c = cl->c;
    char prefix[NN_MAX_NAME];
    snprintf(prefix, sizeof prefix, "cells.%d.pre0", idx);
    if (cl->reduction_prev) fr_build(b, &cl->pre0_fr, prefix, c_pp, c, affine);
    else rcb_build(b, &cl->pre0, prefix, c_pp, c, affine);
    snprintf(prefix, sizeof prefix, "cells.%d.pre1", idx);
    rcb_build(b, &cl->pre1, prefix, c_p, c, affine);

    cl->n_edges = search ? CNNNET_SEARCH_EDGES : GENOTYPE_EDGES;
    const struct genotype_edge *ge = cl->reduction ? cfg->genotype.reduce : cfg->genotype.normal;
    for (int e = 0, node = 0, first = 0; e < cl->n_edges && !b->failed; e++) {
        struct edge *ed = &cl->edges[e];
        if (search) {
            /* node `node` owns edges first .. first + node + 1 */
            if (e - first >= node + 2) {
                first = e;
                node++;
            }
            ed->input = e - first;
            ed->n_ops = GOP_COUNT;
        } else {
            ed->input = ge[e].input;
            ed->n_ops = 1;
        }
        ed->ops = calloc((size_t)ed->n_ops, sizeof *ed->ops);
        if (ed->ops == NULL) {
            fail(b, "cnnnet: out of memory");
            return;
        }
        int stride = cl->reduction && ed->input < 2 ? 2 : 1;
        for (int k = 0; k < ed->n_ops; k++) {
            int kind = search ? k : ge[e].op;
            char p[NN_MAX_NAME];
            snprintf(p, sizeof p, "cells.%d.edges.%d.op%d", idx, e, kind);
            op_build(b, &ed->ops[k], p, kind, c, stride, search);
        }
    }
}

/* The side of a map after a reduction cell: every stride-2 op of
 * cnnnet.h (3x3 windows padded by 1, dilated 3x3 padded by 2, 5x5 by 2 or
 * 4, 1x1 unpadded) gives ceil(side / 2). */
static int reduced(int side) { return (side + 1) / 2; }

/* The auxiliary head after the second reduction cell (DARTS' 2*cells/3),
 * of c_in channels on a map of h x w: its pool is DARTS' 5x5 at stride 3
 * where that gives 2 outputs along the shorter side (sides 8..10: DARTS'
 * 8x8 at 32x32 inputs), else ceil(side/2) at stride floor(side/2), which
 * gives 2 too (as an adaptive pool to 2x2); the 2x2 conv then leaves 1
 * along the shorter side and the global average pool takes whatever is
 * left along the longer one (nothing on a square map: exactly DARTS'
 * flatten to 768). No head on a map under 2x2. */
static void aux_build(struct build *b, int c_in, int h, int w)
{
    struct cnnnet *net = b->net;
    struct auxhead *a = &net->aux;
    int side = h < w ? h : w;
    a->cell = -1;
    if (side < 2) return;
    if ((side - 5) / 3 + 1 == 2 && side >= 5) {
        a->k = 5;
        a->s = 3;
    } else {
        a->s = side / 2;
        a->k = side - a->s;
    }
    net->aux_ps = nn_params_new(net->be);
    if (net->aux_ps == NULL) {
        fail(b, "cnnnet: out of memory");
        return;
    }
    /* its own generator and parameter set: the network's weights are the
     * same with and without the head, and the saved model never has it */
    b->ps = net->aux_ps;
    nn_rng_seed(&b->rng, net->cfg.seed ^ 0x61757868656164ULL);
    a->w1 = conv_w(b, "aux", "c1", CNNNET_AUX_MID, c_in, 1);
    bn_build(b, &a->bn1, "aux", "bn1", CNNNET_AUX_MID, 1);
    a->w2 = conv_w(b, "aux", "c2", CNNNET_AUX_WIDTH, CNNNET_AUX_MID, 2);
    bn_build(b, &a->bn2, "aux", "bn2", CNNNET_AUX_WIDTH, 1);
    int fs[2] = {net->cfg.n_classes, CNNNET_AUX_WIDTH}, bs[1] = {net->cfg.n_classes};
    a->fc_w = param(b, 2, fs, NN_T_PARAM, "aux.fc.w");
    a->fc_b = param(b, 1, bs, NN_T_PARAM, "aux.fc.b");
    if (a->fc_w) nn_init_kaiming_uniform(a->fc_w, CNNNET_AUX_WIDTH, &b->rng);
    if (a->fc_b) nn_init_kaiming_uniform(a->fc_b, CNNNET_AUX_WIDTH, &b->rng);
    b->ps = net->weights;
    if (!b->failed) a->cell = 2 * net->cfg.cells / 3;
}

static int check_config(const struct cnnnet_config *c, char *err, size_t errlen)
{
    const char *what = NULL;
    if (c->mode != CNNNET_FIXED && c->mode != CNNNET_SEARCH) what = "mode";
    else if (c->in_channels != 1 && c->in_channels != 3) what = "in_channels (1 or 3)";
    else if (c->height < 1 || c->height > CNNNET_MAX_SIDE || c->width < 1 ||
             c->width > CNNNET_MAX_SIDE) what = "height/width";
    else if (c->n_classes < 2 || c->n_classes > CNNNET_MAX_CLASSES) what = "n_classes";
    else if (c->cells < CNNNET_MIN_CELLS || c->cells > CNNNET_MAX_CELLS) what = "cells";
    else if (c->channels < CNNNET_MIN_CHANNELS || c->channels > CNNNET_MAX_CHANNELS) what = "channels";
    else if (c->auxiliary != 0 && (c->auxiliary != 1 || c->mode != CNNNET_FIXED))
        what = "auxiliary (0, or 1 for a fixed network)";
    if (what) {
        snprintf(err, errlen, "cnnnet: bad %s", what);
        return -1;
    }
    if (c->mode == CNNNET_FIXED) {
        for (int r = 0; r < 2; r++)
            for (int e = 0; e < GENOTYPE_EDGES; e++) {
                const struct genotype_edge *ge = r ? &c->genotype.reduce[e] : &c->genotype.normal[e];
                if (ge->op <= GOP_NONE || ge->op >= GOP_COUNT || ge->input < 0 ||
                    ge->input >= 2 + e / 2) {
                    snprintf(err, errlen, "cnnnet: genotype %s edge %d is not valid",
                             r ? "reduce" : "normal", e);
                    return -1;
                }
            }
    }
    return 0;
}

int cnnnet_new(struct nn_backend *be, const struct cnnnet_config *cfg, struct cnnnet **out,
               char *err, size_t errlen)
{
    *out = NULL;
    if (be == NULL || cfg == NULL) {
        snprintf(err, errlen, "cnnnet: missing argument");
        return -1;
    }
    if (check_config(cfg, err, errlen) < 0) return -1;
    struct cnnnet *net = calloc(1, sizeof *net);
    struct build b = {.net = net, .err = err, .errlen = errlen};
    if (net == NULL) {
        snprintf(err, errlen, "cnnnet: out of memory");
        return -1;
    }
    net->cfg = *cfg;
    net->be = be;
    net->aux.cell = -1;
    net->weights = nn_params_new(be);
    b.ps = net->weights;
    net->cells = calloc((size_t)cfg->cells, sizeof *net->cells);
    if (net->weights == NULL || net->cells == NULL) {
        fail(&b, "cnnnet: out of memory");
        goto fail;
    }
    nn_rng_seed(&b.rng, cfg->seed);

    int C = cfg->channels, c_curr = 3 * C;
    net->stem_w = conv_w(&b, "stem", "w", c_curr, cfg->in_channels, 3);
    bn_build(&b, &net->stem_bn, "stem", "bn", c_curr, 1);
    int c_pp = c_curr, c_p = c_curr, reduction_prev = 0;
    int side_h = cfg->height, side_w = cfg->width, aux_c = 0, aux_h = 0, aux_w = 0;
    c_curr = C;
    for (int i = 0; i < cfg->cells && !b.failed; i++) {
        struct cell *cl = &net->cells[i];
        cl->reduction = i == cfg->cells / 3 || i == 2 * cfg->cells / 3;
        if (cl->reduction) {
            c_curr *= 2;
            side_h = reduced(side_h);
            side_w = reduced(side_w);
        }
        cl->reduction_prev = reduction_prev;
        cl->c = c_curr;
        cell_build(&b, cl, i, c_pp, c_p);
        reduction_prev = cl->reduction;
        c_pp = c_p;
        c_p = GENOTYPE_NODES * c_curr;
        if (i == 2 * cfg->cells / 3) {
            aux_c = c_p;
            aux_h = side_h;
            aux_w = side_w;
        }
    }
    int fs[2] = {cfg->n_classes, c_p}, bs[1] = {cfg->n_classes};
    net->fc_w = param(&b, 2, fs, NN_T_PARAM, "fc.w");
    net->fc_b = param(&b, 1, bs, NN_T_PARAM, "fc.b");
    if (net->fc_w) nn_init_kaiming_uniform(net->fc_w, c_p, &b.rng);
    if (net->fc_b) nn_init_kaiming_uniform(net->fc_b, c_p, &b.rng);
    if (cfg->auxiliary && !b.failed) aux_build(&b, aux_c, aux_h, aux_w);
    if (b.failed) goto fail;

    if (cfg->mode == CNNNET_SEARCH) {
        net->arch = nn_params_new(be);
        int as[2] = {CNNNET_SEARCH_EDGES, GOP_COUNT};
        float h[CNNNET_SEARCH_EDGES * GOP_COUNT];
        struct pd_rng r;
        pd_rng_seed(&r, cfg->seed ^ 0x616c70686173ULL);
        char msg[256] = "";
        for (int k = 0; k < 2 && net->arch; k++) {
            net->alphas[k] = nn_params_add(net->arch, k ? "alphas_reduce" : "alphas_normal", 2, as,
                                           NN_T_PARAM, msg, sizeof msg);
            if (net->alphas[k] == NULL) break;
            for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) h[i] = (float)(1e-3 * pd_rng_normal(&r));
            nn_tensor_upload(net->alphas[k], h);
        }
        if (net->arch == NULL || net->alphas[0] == NULL || net->alphas[1] == NULL) {
            fail(&b, "cnnnet: %s", msg[0] ? msg : "out of memory");
            goto fail;
        }
    }
    *out = net;
    return 0;
fail:
    cnnnet_free(net);
    return -1;
}

void cnnnet_free(struct cnnnet *net)
{
    if (net == NULL) return;
    for (int i = 0; net->cells && i < net->cfg.cells; i++)
        for (int e = 0; e < CNNNET_SEARCH_EDGES; e++) free(net->cells[i].edges[e].ops);
    free(net->cells);
    for (int i = 0; i < net->n_owned; i++) nn_tensor_free(net->owned[i]);
    free(net->owned);
    nn_params_free(net->weights);
    nn_params_free(net->arch);
    nn_params_free(net->aux_ps);
    free(net);
}

const struct cnnnet_config *cnnnet_config(const struct cnnnet *net) { return &net->cfg; }
struct nn_params *cnnnet_weights(const struct cnnnet *net) { return net->weights; }
struct nn_params *cnnnet_arch(const struct cnnnet *net) { return net->arch; }
struct nn_params *cnnnet_aux(const struct cnnnet *net) { return net->aux_ps; }

static void set_grad(struct nn_params *ps, int on)
{
    for (int i = 0; ps && i < nn_params_count(ps); i++) {
        struct nn_tensor *t = nn_params_get(ps, i);
        if (!(t->flags & NN_T_PARAM)) continue;
        if (on) t->flags |= NN_T_NEEDS_GRAD;
        else t->flags &= ~(unsigned)NN_T_NEEDS_GRAD;
    }
}

void cnnnet_set_trainable(struct cnnnet *net, int weights, int arch)
{
    set_grad(net->weights, weights);
    set_grad(net->aux_ps, weights);
    set_grad(net->arch, arch);
}

size_t cnnnet_param_count(const struct cnnnet *net) { return nn_params_numel(net->weights); }

/* ---- forward -------------------------------------------------------------- */

static struct nn_tensor *bn_fwd(struct nn_graph *g, struct nn_tensor *x, const struct bn *bn)
{
    return nn_batch_norm(g, x, bn->gamma, bn->beta, bn->rm, bn->rv, 0.1f, 1e-5f);
}

static struct nn_tensor *fr_fwd(struct nn_graph *g, struct nn_tensor *x, const struct fr *fr)
{
    x = nn_relu(g, x);
    struct nn_tensor *a = nn_conv2d(g, x, fr->w1, NULL, 2, 0, 1, 1);
    struct nn_tensor *s = nn_conv2d(g, x, fr->shift, NULL, 2, 1, 1, fr->cin);
    if (s) nn_graph_add_macs(g, -9.0 * (double)s->numel);   /* a shift, not a conv */
    struct nn_tensor *parts[2] = {a, nn_conv2d(g, s, fr->w2, NULL, 1, 0, 1, 1)};
    return bn_fwd(g, nn_concat(g, 2, parts), &fr->bn);
}

static struct nn_tensor *op_fwd(struct nn_graph *g, struct nn_tensor *x, const struct op *op,
                                int search)
{
    struct nn_tensor *y;
    int s = op->stride;
    switch (op->kind) {
    case GOP_MAX_POOL_3X3:
    case GOP_AVG_POOL_3X3:
        y = op->kind == GOP_MAX_POOL_3X3 ? nn_max_pool2d(g, x, 3, s, 1) : nn_avg_pool2d(g, x, 3, s, 1);
        return search ? bn_fwd(g, y, &op->bn[0]) : y;
    case GOP_SKIP_CONNECT:
        return s == 1 ? nn_identity(g, x) : fr_fwd(g, x, &op->fr);
    case GOP_SEP_CONV_3X3:
    case GOP_SEP_CONV_5X5: {
        int k = op->kind == GOP_SEP_CONV_3X3 ? 3 : 5, c = op->w[0]->shape[0];
        y = nn_conv2d(g, nn_relu(g, x), op->w[0], NULL, s, k / 2, 1, c);
        y = bn_fwd(g, nn_conv2d(g, y, op->w[1], NULL, 1, 0, 1, 1), &op->bn[0]);
        y = nn_conv2d(g, nn_relu(g, y), op->w[2], NULL, 1, k / 2, 1, c);
        return bn_fwd(g, nn_conv2d(g, y, op->w[3], NULL, 1, 0, 1, 1), &op->bn[1]);
    }
    case GOP_DIL_CONV_3X3:
    case GOP_DIL_CONV_5X5: {
        int k = op->kind == GOP_DIL_CONV_3X3 ? 3 : 5, c = op->w[0]->shape[0];
        y = nn_conv2d(g, nn_relu(g, x), op->w[0], NULL, s, k == 3 ? 2 : 4, 2, c);
        return bn_fwd(g, nn_conv2d(g, y, op->w[1], NULL, 1, 0, 1, 1), &op->bn[0]);
    }
    default:
        return nn_graph_fail(g, "cnnnet: op %d has no forward", op->kind);
    }
}

/* sum_k w[row e, k] op_k(x) over the ops other than none */
static struct nn_tensor *mixed_fwd(struct nn_graph *g, struct nn_tensor *x, const struct edge *ed,
                                   struct nn_tensor *w, int e)
{
    struct nn_tensor *outs[GOP_COUNT - 1];
    for (int k = 1; k < GOP_COUNT; k++) outs[k - 1] = op_fwd(g, x, &ed->ops[k], 1);
    return nn_wsum(g, GOP_COUNT - 1, outs, w, e * GOP_COUNT + 1);
}

/* What a training forward adds (cnnnet_forward_train). */
struct extras {
    float drop_path;
    uint64_t seed;           /* of the step; each edge of each cell its own */
};

/* Edge e of fixed cell `cell`: its op, then drop-path unless the op is the
 * identity (DARTS drops every op but the stride-1 skip). */
static struct nn_tensor *edge_fwd(struct nn_graph *g, struct nn_tensor *x, const struct edge *ed,
                                  const struct extras *ex, int cell, int e)
{
    const struct op *op = &ed->ops[0];
    struct nn_tensor *y = op_fwd(g, x, op, 0);
    if (ex == NULL || ex->drop_path <= 0.0f || (op->kind == GOP_SKIP_CONNECT && op->stride == 1))
        return y;
    uint64_t z = ex->seed + 0x9e3779b97f4a7c15ULL * (uint64_t)(cell * GENOTYPE_EDGES + e + 1);
    return nn_drop_path(g, y, ex->drop_path, z ^ (z >> 29));
}

static struct nn_tensor *cell_fwd(struct nn_graph *g, const struct cell *cl, struct nn_tensor *s0,
                                  struct nn_tensor *s1, struct nn_tensor *w, const struct extras *ex,
                                  int idx)
{
    struct nn_tensor *st[2 + GENOTYPE_NODES];
    st[0] = cl->reduction_prev ? fr_fwd(g, s0, &cl->pre0_fr)
                               : bn_fwd(g, nn_conv2d(g, nn_relu(g, s0), cl->pre0.w, NULL, 1, 0, 1, 1),
                                        &cl->pre0.bn);
    st[1] = bn_fwd(g, nn_conv2d(g, nn_relu(g, s1), cl->pre1.w, NULL, 1, 0, 1, 1), &cl->pre1.bn);
    if (w != NULL) {
        for (int i = 0, e = 0; i < GENOTYPE_NODES; i++) {
            struct nn_tensor *sum = NULL;
            for (int j = 0; j < 2 + i; j++, e++) {
                struct nn_tensor *h = mixed_fwd(g, st[j], &cl->edges[e], w, e);
                sum = sum ? nn_add(g, sum, h) : h;
            }
            st[2 + i] = sum;
        }
    } else {
        for (int i = 0; i < GENOTYPE_NODES; i++) {
            const struct edge *a = &cl->edges[2 * i], *b = &cl->edges[2 * i + 1];
            st[2 + i] = nn_add(g, edge_fwd(g, st[a->input], a, ex, idx, 2 * i),
                               edge_fwd(g, st[b->input], b, ex, idx, 2 * i + 1));
        }
    }
    return nn_concat(g, GENOTYPE_NODES, st + 2);
}

static struct nn_tensor *aux_fwd(struct nn_graph *g, const struct auxhead *a, struct nn_tensor *x)
{
    x = nn_avg_pool2d(g, nn_relu(g, x), a->k, a->s, 0);
    x = nn_relu(g, bn_fwd(g, nn_conv2d(g, x, a->w1, NULL, 1, 0, 1, 1), &a->bn1));
    x = nn_relu(g, bn_fwd(g, nn_conv2d(g, x, a->w2, NULL, 1, 0, 1, 1), &a->bn2));
    return nn_linear(g, nn_global_avg_pool(g, x), a->fc_w, a->fc_b);
}

static struct nn_tensor *forward(struct cnnnet *net, struct nn_graph *g, struct nn_tensor *x,
                                 const struct extras *ex, struct nn_tensor **aux)
{
    if (aux) *aux = NULL;
    if (nn_graph_failed(g)) return NULL;
    if (x == NULL || x->ndim != 4 || x->shape[1] != net->cfg.in_channels ||
        x->shape[2] != net->cfg.height || x->shape[3] != net->cfg.width)
        return nn_graph_fail(g, "cnnnet: the input must be [N,%d,%d,%d]", net->cfg.in_channels,
                             net->cfg.height, net->cfg.width);
    struct nn_tensor *w[2] = {NULL, NULL};
    if (net->cfg.mode == CNNNET_SEARCH) {
        w[0] = nn_softmax(g, net->alphas[0]);
        w[1] = nn_softmax(g, net->alphas[1]);
    }
    struct nn_tensor *s = bn_fwd(g, nn_conv2d(g, x, net->stem_w, NULL, 1, 1, 1, 1), &net->stem_bn);
    struct nn_tensor *s0 = s, *s1 = s;
    for (int i = 0; i < net->cfg.cells; i++) {
        const struct cell *cl = &net->cells[i];
        s = cell_fwd(g, cl, s0, s1, w[cl->reduction], ex, i);
        s0 = s1;
        s1 = s;
        if (i == net->aux.cell && aux && nn_graph_training(g)) *aux = aux_fwd(g, &net->aux, s);
    }
    return nn_linear(g, nn_global_avg_pool(g, s1), net->fc_w, net->fc_b);
}

struct nn_tensor *cnnnet_forward(struct cnnnet *net, struct nn_graph *g, struct nn_tensor *x)
{
    return forward(net, g, x, NULL, NULL);
}

struct nn_tensor *cnnnet_forward_train(struct cnnnet *net, struct nn_graph *g, struct nn_tensor *x,
                                       float drop_path, uint64_t seed, struct nn_tensor **aux)
{
    if (aux) *aux = NULL;
    if (!(drop_path >= 0.0f && drop_path < 1.0f))
        return nn_graph_fail(g, "cnnnet: drop_path must be in [0, 1)");
    if (drop_path > 0.0f && net->cfg.mode != CNNNET_FIXED)
        return nn_graph_fail(g, "cnnnet: drop_path is for fixed networks");
    struct extras ex = {drop_path, seed};
    return forward(net, g, x, &ex, aux);
}

int cnnnet_macs(struct cnnnet *net, double *macs, char *err, size_t errlen)
{
    *macs = 0;
    struct nn_graph *g = nn_graph_new(net->be, err, errlen);
    if (g == NULL) return -1;
    nn_graph_set_training(g, 0);
    nn_graph_set_recording(g, 0);
    int shape[4] = {1, net->cfg.in_channels, net->cfg.height, net->cfg.width};
    struct nn_tensor *x = nn_graph_tensor(g, 4, shape);
    if (x) net->be->fill(net->be, x->data, 0.0f, x->numel);
    struct nn_tensor *y = cnnnet_forward(net, g, x);
    int rc = 0;
    if (y == NULL) {
        snprintf(err, errlen, "cnnnet: %s", nn_graph_error(g) ? nn_graph_error(g) : "forward failed");
        rc = -1;
    } else {
        *macs = nn_graph_macs(g);
    }
    nn_graph_free(g);
    return rc;
}

/* ---- architecture ----------------------------------------------------------- */

int cnnnet_alphas(const struct cnnnet *net, int reduce, double *out)
{
    if (net->cfg.mode != CNNNET_SEARCH) return -1;
    float a[CNNNET_SEARCH_EDGES * GOP_COUNT];
    nn_tensor_download(net->alphas[reduce ? 1 : 0], a);
    for (int e = 0; e < CNNNET_SEARCH_EDGES; e++) {
        const float *r = a + e * GOP_COUNT;
        double mx = r[0], s = 0;
        for (int k = 1; k < GOP_COUNT; k++) mx = r[k] > mx ? r[k] : mx;
        for (int k = 0; k < GOP_COUNT; k++) s += out[e * GOP_COUNT + k] = exp((double)r[k] - mx);
        for (int k = 0; k < GOP_COUNT; k++) out[e * GOP_COUNT + k] /= s;
    }
    return 0;
}

void cnnnet_derive_cell(const double *w, struct genotype_edge out[GENOTYPE_EDGES])
{
    for (int i = 0, start = 0; i < GENOTYPE_NODES; start += 2 + i, i++) {
        int n = 2 + i, best[2] = {-1, -1}, op[GENOTYPE_EDGES];
        double strength[2 + GENOTYPE_NODES];
        for (int j = 0; j < n; j++) {
            const double *r = w + (size_t)(start + j) * GOP_COUNT;
            int kb = GOP_NONE + 1;
            for (int k = GOP_NONE + 2; k < GOP_COUNT; k++)
                if (r[k] > r[kb]) kb = k;
            op[j] = kb;
            strength[j] = r[kb];
        }
        /* the two strongest; ties go to the earlier state (a stable sort) */
        for (int t = 0; t < 2; t++)
            for (int j = 0; j < n; j++)
                if (j != best[0] && (best[t] < 0 || strength[j] > strength[best[t]])) best[t] = j;
        for (int t = 0; t < 2; t++) {
            out[2 * i + t].op = op[best[t]];
            out[2 * i + t].input = best[t];
        }
    }
}

int cnnnet_derive(const struct cnnnet *net, struct genotype *out)
{
    double w[CNNNET_SEARCH_EDGES * GOP_COUNT];
    if (cnnnet_alphas(net, 0, w) < 0) return -1;
    cnnnet_derive_cell(w, out->normal);
    if (cnnnet_alphas(net, 1, w) < 0) return -1;
    cnnnet_derive_cell(w, out->reduce);
    return 0;
}
