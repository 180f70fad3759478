/*
 * ops.c - see ops.h. Each op is a forward function (check shapes, make
 * the output, call the backend, push a node) and a static backward that
 * the tape calls with the node; backward functions fetch their inputs'
 * gradients with nn_graph_grad (NULL: not needed) and let the backend
 * accumulate into them.
 */
#include "nn/ops.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define BE(g) nn_graph_backend(g)

static int any_null(struct nn_graph *g, int n, struct nn_tensor *const *ts)
{
    if (nn_graph_failed(g)) return 1;
    for (int i = 0; i < n; i++)
        if (!ts[i]) {
            nn_graph_fail(g, "an op got a NULL input");
            return 1;
        }
    return 0;
}

static int same_shape(const struct nn_tensor *a, const struct nn_tensor *b)
{
    return a->ndim == b->ndim && memcmp(a->shape, b->shape, sizeof a->shape) == 0;
}

static size_t spatial(const struct nn_tensor *x)
{
    return x->ndim >= 3 ? (size_t)x->shape[2] * x->shape[3] : 1;
}

/* --- convolution ---------------------------------------------------------------- */

static void conv_bwd(struct nn_graph *g, struct nn_node *nd)
{
    struct nn_backend *be = BE(g);
    float *dx = nn_graph_grad(g, nd->in[0]), *dw = nn_graph_grad(g, nd->in[1]);
    float *db = nn_graph_grad(g, nd->in[2]);
    if (nn_graph_failed(g)) return;
    be->conv2d_bwd(be, &nd->p.conv, nd->in[0]->data, nd->in[1]->data, nd->out->grad, dx, dw, db);
}

struct nn_tensor *nn_conv2d(struct nn_graph *g, struct nn_tensor *x, struct nn_tensor *w,
                            struct nn_tensor *b, int stride, int padding, int dilation, int groups)
{
    struct nn_tensor *req[2] = {x, w};
    if (any_null(g, 2, req)) return NULL;
    if (x->ndim != 4 || w->ndim != 4) return nn_graph_fail(g, "conv2d: x and w must be 4-D");
    if (stride < 1 || padding < 0 || dilation < 1 || groups < 1)
        return nn_graph_fail(g, "conv2d: bad stride/padding/dilation/groups");
    struct nn_conv_desc d = {
        .n = x->shape[0], .cin = x->shape[1], .h = x->shape[2], .w = x->shape[3],
        .cout = w->shape[0], .kh = w->shape[2], .kw = w->shape[3],
        .sh = stride, .sw = stride, .ph = padding, .pw = padding,
        .dh = dilation, .dw = dilation, .groups = groups,
    };
    if (d.cin % groups || d.cout % groups || w->shape[1] != d.cin / groups)
        return nn_graph_fail(g, "conv2d: %d input channels, weight [%d,%d,..], groups %d do not fit",
                             d.cin, w->shape[0], w->shape[1], groups);
    if (b && (b->numel != (size_t)d.cout))
        return nn_graph_fail(g, "conv2d: bias has %zu values, want %d", b->numel, d.cout);
    int eh = d.h + 2 * padding - dilation * (d.kh - 1) - 1;
    int ew = d.w + 2 * padding - dilation * (d.kw - 1) - 1;
    if (eh < 0 || ew < 0) return nn_graph_fail(g, "conv2d: kernel larger than the padded input");
    d.ho = eh / stride + 1;
    d.wo = ew / stride + 1;
    int shape[4] = {d.n, d.cout, d.ho, d.wo};
    struct nn_tensor *ins[3] = {x, w, b};
    struct nn_tensor *y = nn_graph_output(g, 4, shape, ins, 3);
    if (!y) return NULL;
    struct nn_backend *be = BE(g);
    be->conv2d_fwd(be, &d, x->data, w->data, b ? b->data : NULL, y->data);
    nn_graph_add_macs(g, (double)y->numel * (double)(d.cin / groups) * d.kh * d.kw);
    struct nn_node nd = {.backward = conv_bwd, .out = y, .in = {x, w, b}, .p.conv = d};
    return nn_graph_push(g, &nd) ? NULL : y;
}

/* --- pooling ------------------------------------------------------------------------ */

static void pool_bwd(struct nn_graph *g, struct nn_node *nd)
{
    struct nn_backend *be = BE(g);
    float *dx = nn_graph_grad(g, nd->in[0]);
    if (!dx) return;
    be->pool2d_bwd(be, &nd->p.pool, nd->in[0]->data, nd->out->data, nd->aux->data, nd->out->grad, dx);
}

static struct nn_tensor *pool(struct nn_graph *g, struct nn_tensor *x, int k, int stride, int pad,
                              int is_max)
{
    if (any_null(g, 1, &x)) return NULL;
    if (x->ndim != 4) return nn_graph_fail(g, "pool2d: x must be 4-D");
    if (k < 1 || stride < 1 || pad < 0 || pad > k / 2)
        return nn_graph_fail(g, "pool2d: bad kernel %d / stride %d / padding %d", k, stride, pad);
    struct nn_pool_desc d = {
        .n = x->shape[0], .c = x->shape[1], .h = x->shape[2], .w = x->shape[3],
        .kh = k, .kw = k, .sh = stride, .sw = stride, .ph = pad, .pw = pad, .is_max = is_max,
    };
    int eh = d.h + 2 * pad - k, ew = d.w + 2 * pad - k;
    if (eh < 0 || ew < 0) return nn_graph_fail(g, "pool2d: kernel larger than the padded input");
    d.ho = eh / stride + 1;
    d.wo = ew / stride + 1;
    int shape[4] = {d.n, d.c, d.ho, d.wo};
    struct nn_tensor *y = nn_graph_output(g, 4, shape, &x, 1);
    if (!y) return NULL;
    /* the backend's 32-bit slots for backward, only when one will run */
    struct nn_tensor *aux = NULL;
    if ((y->flags & NN_T_NEEDS_GRAD) && !(aux = nn_graph_tensor(g, 4, shape))) return NULL;
    struct nn_backend *be = BE(g);
    be->pool2d_fwd(be, &d, x->data, y->data, aux ? aux->data : NULL);
    struct nn_node nd = {.backward = pool_bwd, .out = y, .in = {x}, .aux = aux, .p.pool = d};
    return nn_graph_push(g, &nd) ? NULL : y;
}

struct nn_tensor *nn_max_pool2d(struct nn_graph *g, struct nn_tensor *x, int k, int stride, int pad)
{
    return pool(g, x, k, stride, pad, 1);
}

struct nn_tensor *nn_avg_pool2d(struct nn_graph *g, struct nn_tensor *x, int k, int stride, int pad)
{
    return pool(g, x, k, stride, pad, 0);
}

/* --- batch norm ----------------------------------------------------------------------- */

static void bn_bwd(struct nn_graph *g, struct nn_node *nd)
{
    struct nn_backend *be = BE(g);
    struct nn_tensor *x = nd->in[0], *gamma = nd->in[1], *beta = nd->in[2];
    float *dx = nn_graph_grad(g, x), *dg = nn_graph_grad(g, gamma), *dbt = nn_graph_grad(g, beta);
    if (nn_graph_failed(g)) return;
    be->bn_bwd(be, x->shape[0], x->shape[1], spatial(x), x->data, gamma ? gamma->data : NULL,
               nd->aux->data, nd->out->grad, dx, dg, dbt, nd->p.i[0]);
}

struct nn_tensor *nn_batch_norm(struct nn_graph *g, struct nn_tensor *x, struct nn_tensor *gamma,
                                struct nn_tensor *beta, struct nn_tensor *running_mean,
                                struct nn_tensor *running_var, float momentum, float eps)
{
    struct nn_tensor *req[3] = {x, running_mean, running_var};
    if (any_null(g, 3, req)) return NULL;
    if (x->ndim != 4 && x->ndim != 2) return nn_graph_fail(g, "batch_norm: x must be 2-D or 4-D");
    size_t c = (size_t)x->shape[1];
    if ((!gamma) != (!beta)) return nn_graph_fail(g, "batch_norm: gamma and beta go together");
    if ((gamma && (gamma->numel != c || beta->numel != c)) || running_mean->numel != c ||
        running_var->numel != c)
        return nn_graph_fail(g, "batch_norm: per-channel tensors must have %zu values", c);
    if (!(eps > 0.0f) || momentum < 0.0f || momentum > 1.0f)
        return nn_graph_fail(g, "batch_norm: bad eps or momentum");
    int training = nn_graph_training(g);
    if (training && (size_t)x->shape[0] * spatial(x) < 2)
        return nn_graph_fail(g, "batch_norm: training needs more than one value per channel");
    struct nn_tensor *ins[3] = {x, gamma, beta};
    struct nn_tensor *y = nn_graph_output(g, x->ndim, x->shape, ins, 3);
    int sshape[1] = {2 * (int)c};
    struct nn_tensor *save = nn_graph_tensor(g, 1, sshape);
    if (!y || !save) return NULL;
    struct nn_backend *be = BE(g);
    be->bn_fwd(be, x->shape[0], (int)c, spatial(x), x->data, gamma ? gamma->data : NULL,
               beta ? beta->data : NULL, running_mean->data, running_var->data, y->data, save->data,
               training, momentum, eps);
    struct nn_node nd = {.backward = bn_bwd, .out = y, .in = {x, gamma, beta}, .aux = save,
                         .p.i = {training}};
    return nn_graph_push(g, &nd) ? NULL : y;
}

/* --- relu, gap, linear, dropout, drop-path ------------------------------------------------------- */

static void relu_bwd(struct nn_graph *g, struct nn_node *nd)
{
    struct nn_backend *be = BE(g);
    float *dx = nn_graph_grad(g, nd->in[0]);
    if (dx) be->relu_bwd(be, dx, nd->out->data, nd->out->grad, nd->out->numel);
}

struct nn_tensor *nn_relu(struct nn_graph *g, struct nn_tensor *x)
{
    if (any_null(g, 1, &x)) return NULL;
    struct nn_tensor *y = nn_graph_output(g, x->ndim, x->shape, &x, 1);
    if (!y) return NULL;
    BE(g)->relu_fwd(BE(g), y->data, x->data, x->numel);
    struct nn_node nd = {.backward = relu_bwd, .out = y, .in = {x}};
    return nn_graph_push(g, &nd) ? NULL : y;
}

static void gap_bwd(struct nn_graph *g, struct nn_node *nd)
{
    struct nn_backend *be = BE(g);
    struct nn_tensor *x = nd->in[0];
    float *dx = nn_graph_grad(g, x);
    if (dx) be->gap_bwd(be, x->shape[0], x->shape[1], spatial(x), nd->out->grad, dx);
}

struct nn_tensor *nn_global_avg_pool(struct nn_graph *g, struct nn_tensor *x)
{
    if (any_null(g, 1, &x)) return NULL;
    if (x->ndim != 4) return nn_graph_fail(g, "global_avg_pool: x must be 4-D");
    int shape[2] = {x->shape[0], x->shape[1]};
    struct nn_tensor *y = nn_graph_output(g, 2, shape, &x, 1);
    if (!y) return NULL;
    BE(g)->gap_fwd(BE(g), x->shape[0], x->shape[1], spatial(x), x->data, y->data);
    struct nn_node nd = {.backward = gap_bwd, .out = y, .in = {x}};
    return nn_graph_push(g, &nd) ? NULL : y;
}

static void linear_bwd(struct nn_graph *g, struct nn_node *nd)
{
    struct nn_backend *be = BE(g);
    struct nn_tensor *x = nd->in[0], *w = nd->in[1];
    float *dx = nn_graph_grad(g, x), *dw = nn_graph_grad(g, w), *db = nn_graph_grad(g, nd->in[2]);
    if (nn_graph_failed(g)) return;
    be->linear_bwd(be, nd->p.i[0], nd->p.i[1], nd->p.i[2], x->data, w->data, nd->out->grad, dx, dw, db);
}

struct nn_tensor *nn_linear(struct nn_graph *g, struct nn_tensor *x, struct nn_tensor *w,
                            struct nn_tensor *b)
{
    struct nn_tensor *req[2] = {x, w};
    if (any_null(g, 2, req)) return NULL;
    if (x->ndim < 2 || w->ndim != 2) return nn_graph_fail(g, "linear: x must be [N,...], w [out,in]");
    int n = x->shape[0], out = w->shape[0], in = w->shape[1];
    if (x->numel != (size_t)n * (size_t)in)
        return nn_graph_fail(g, "linear: input has %zu features per row, weight wants %d",
                             x->numel / (size_t)n, in);
    if (b && b->numel != (size_t)out) return nn_graph_fail(g, "linear: bias must have %d values", out);
    int shape[2] = {n, out};
    struct nn_tensor *ins[3] = {x, w, b};
    struct nn_tensor *y = nn_graph_output(g, 2, shape, ins, 3);
    if (!y) return NULL;
    BE(g)->linear_fwd(BE(g), n, in, out, x->data, w->data, b ? b->data : NULL, y->data);
    nn_graph_add_macs(g, (double)n * in * out);
    struct nn_node nd = {.backward = linear_bwd, .out = y, .in = {x, w, b}, .p.i = {n, in, out}};
    return nn_graph_push(g, &nd) ? NULL : y;
}

static void mul_bwd(struct nn_graph *g, struct nn_node *nd)
{
    struct nn_backend *be = BE(g);
    float *dx = nn_graph_grad(g, nd->in[0]);
    if (dx) be->mul_bwd(be, dx, nd->aux->data, nd->out->grad, nd->out->numel);
}

struct nn_tensor *nn_dropout(struct nn_graph *g, struct nn_tensor *x, float p, uint64_t seed)
{
    if (any_null(g, 1, &x)) return NULL;
    if (!(p >= 0.0f && p < 1.0f)) return nn_graph_fail(g, "dropout: p must be in [0, 1)");
    if (!nn_graph_training(g) || p == 0.0f) return x;
    struct nn_tensor *y = nn_graph_output(g, x->ndim, x->shape, &x, 1);
    struct nn_tensor *m = nn_graph_tensor(g, x->ndim, x->shape);
    if (!y || !m) return NULL;
    struct nn_backend *be = BE(g);
    be->dropout_mask(be, m->data, m->numel, p, seed);
    be->mul_fwd(be, y->data, x->data, m->data, x->numel);
    struct nn_node nd = {.backward = mul_bwd, .out = y, .in = {x}, .aux = m};
    return nn_graph_push(g, &nd) ? NULL : y;
}

struct nn_tensor *nn_drop_path(struct nn_graph *g, struct nn_tensor *x, float p, uint64_t seed)
{
    if (any_null(g, 1, &x)) return NULL;
    if (!(p >= 0.0f && p < 1.0f)) return nn_graph_fail(g, "drop_path: p must be in [0, 1)");
    if (x->ndim < 1 || x->numel == 0) return nn_graph_fail(g, "drop_path: x must be [N, ...]");
    if (!nn_graph_training(g) || p == 0.0f) return x;
    int n = x->shape[0], one[1] = {n};
    size_t per = x->numel / (size_t)n;
    if (per > (size_t)INT_MAX) return nn_graph_fail(g, "drop_path: %zu values per sample", per);
    int f = (int)per;
    struct nn_tensor *y = nn_graph_output(g, x->ndim, x->shape, &x, 1);
    struct nn_tensor *m = nn_graph_tensor(g, x->ndim, x->shape), *ms = nn_graph_tensor(g, 1, one);
    if (!y || !m || !ms) return NULL;
    struct nn_backend *be = BE(g);
    be->dropout_mask(be, ms->data, (size_t)n, p, seed);
    /* m[i, 0] = ms[i]; then m[i, k..2k) = m[i, 0..k) until the row is full */
    be->chan_copy(be, m->data, f, 0, ms->data, 1, 0, 1, n, 1, 0);
    for (int k = 1; k < f;) {
        int c = k < f - k ? k : f - k;
        be->chan_copy(be, m->data, f, k, m->data, f, 0, c, n, 1, 0);
        k += c;
    }
    be->mul_fwd(be, y->data, x->data, m->data, x->numel);
    struct nn_node nd = {.backward = mul_bwd, .out = y, .in = {x}, .aux = m};
    return nn_graph_push(g, &nd) ? NULL : y;
}

/* --- loss ------------------------------------------------------------------------------- */

static void ce_bwd(struct nn_graph *g, struct nn_node *nd)
{
    struct nn_backend *be = BE(g);
    struct nn_tensor *z = nd->in[0];
    float *dz = nn_graph_grad(g, z);
    if (dz) be->ce_bwd(be, z->shape[0], z->shape[1], nd->aux->data, nd->aux2->data, nd->out->grad, dz);
}

struct nn_tensor *nn_softmax_ce(struct nn_graph *g, struct nn_tensor *logits, const int *labels,
                                struct nn_tensor **probs)
{
    if (probs) *probs = NULL;
    if (any_null(g, 1, &logits)) return NULL;
    if (logits->ndim != 2 || !labels) return nn_graph_fail(g, "softmax_ce: logits must be [N,K], labels given");
    int n = logits->shape[0], k = logits->shape[1];
    int lshape[1] = {n}, one[1] = {1};
    struct nn_tensor *lab = nn_graph_tensor(g, 1, lshape);
    struct nn_tensor *p = nn_graph_tensor(g, 2, logits->shape);
    struct nn_tensor *loss = nn_graph_output(g, 1, one, &logits, 1);
    float *host = nn_graph_host_alloc(g, (size_t)n * sizeof *host);
    if (!lab || !p || !loss || !host) return NULL;
    for (int i = 0; i < n; i++) {
        if (labels[i] < 0 || labels[i] >= k)
            return nn_graph_fail(g, "softmax_ce: label %d of row %d is outside [0, %d)", labels[i], i, k);
        host[i] = (float)labels[i];
    }
    struct nn_backend *be = BE(g);
    be->upload(be, lab->data, host, (size_t)n);
    be->ce_fwd(be, n, k, logits->data, lab->data, p->data, loss->data);
    if (probs) *probs = p;
    struct nn_node nd = {.backward = ce_bwd, .out = loss, .in = {logits}, .aux = p, .aux2 = lab};
    return nn_graph_push(g, &nd) ? NULL : loss;
}

/* --- element-wise and structural ---------------------------------------------------------- */

static void add_bwd(struct nn_graph *g, struct nn_node *nd)
{
    struct nn_backend *be = BE(g);
    for (int i = 0; i < 2; i++) {
        float *d = nn_graph_grad(g, nd->in[i]);
        if (d) be->axpy(be, d, 1.0f, nd->out->grad, nd->out->numel);
    }
}

struct nn_tensor *nn_add(struct nn_graph *g, struct nn_tensor *a, struct nn_tensor *b)
{
    struct nn_tensor *ins[2] = {a, b};
    if (any_null(g, 2, ins)) return NULL;
    if (!same_shape(a, b)) return nn_graph_fail(g, "add: shapes differ");
    struct nn_tensor *y = nn_graph_output(g, a->ndim, a->shape, ins, 2);
    if (!y) return NULL;
    BE(g)->add(BE(g), y->data, a->data, b->data, y->numel);
    struct nn_node nd = {.backward = add_bwd, .out = y, .in = {a, b}};
    return nn_graph_push(g, &nd) ? NULL : y;
}

static void scale_bwd(struct nn_graph *g, struct nn_node *nd)
{
    struct nn_backend *be = BE(g);
    float *d = nn_graph_grad(g, nd->in[0]);
    if (d) be->axpy(be, d, nd->p.f[0], nd->out->grad, nd->out->numel);
}

struct nn_tensor *nn_scale(struct nn_graph *g, struct nn_tensor *x, float s)
{
    if (any_null(g, 1, &x)) return NULL;
    struct nn_tensor *y = nn_graph_output(g, x->ndim, x->shape, &x, 1);
    if (!y) return NULL;
    BE(g)->scale(BE(g), y->data, s, x->data, y->numel);
    struct nn_node nd = {.backward = scale_bwd, .out = y, .in = {x}, .p.f = {s}};
    return nn_graph_push(g, &nd) ? NULL : y;
}

static void softmax_bwd(struct nn_graph *g, struct nn_node *nd)
{
    struct nn_backend *be = BE(g);
    float *d = nn_graph_grad(g, nd->in[0]);
    if (d) be->softmax_bwd(be, d, nd->out->data, nd->out->grad, nd->p.i[0], nd->p.i[1]);
}

struct nn_tensor *nn_softmax(struct nn_graph *g, struct nn_tensor *x)
{
    if (any_null(g, 1, &x)) return NULL;
    if (x->ndim > 2) return nn_graph_fail(g, "softmax: x must be [K] or [R,K]");
    int rows = x->ndim == 2 ? x->shape[0] : 1, k = x->shape[x->ndim - 1];
    struct nn_tensor *y = nn_graph_output(g, x->ndim, x->shape, &x, 1);
    if (!y) return NULL;
    BE(g)->softmax_fwd(BE(g), y->data, x->data, rows, k);
    struct nn_node nd = {.backward = softmax_bwd, .out = y, .in = {x}, .p.i = {rows, k}};
    return nn_graph_push(g, &nd) ? NULL : y;
}

static void wsum_bwd(struct nn_graph *g, struct nn_node *nd)
{
    struct nn_backend *be = BE(g);
    int k = nd->k, off = nd->p.i[0];
    float **dxs = nn_graph_host_alloc(g, (size_t)k * sizeof *dxs);
    const float **xs = nn_graph_host_alloc(g, (size_t)k * sizeof *xs);
    if (!dxs || !xs) return;
    for (int j = 0; j < k; j++) {
        dxs[j] = nn_graph_grad(g, nd->ins[j]);
        xs[j] = nd->ins[j]->data;
    }
    float *dw = nn_graph_grad(g, nd->in[0]);
    if (nn_graph_failed(g)) return;
    be->wsum_bwd(be, dxs, dw ? dw + off : NULL, xs, nd->in[0]->data + off, nd->out->grad, k,
                 nd->out->numel);
}

struct nn_tensor *nn_wsum(struct nn_graph *g, int k, struct nn_tensor *const *xs,
                          struct nn_tensor *w, int w_off)
{
    if (any_null(g, 1, &w)) return NULL;
    if (k < 1 || !xs) return nn_graph_fail(g, "wsum: needs at least one input");
    if (any_null(g, k, xs)) return NULL;
    if (w_off < 0 || (size_t)w_off + (size_t)k > w->numel)
        return nn_graph_fail(g, "wsum: weights [%d, %d) outside a tensor of %zu", w_off, w_off + k, w->numel);
    for (int j = 1; j < k; j++)
        if (!same_shape(xs[0], xs[j])) return nn_graph_fail(g, "wsum: input %d has another shape", j);
    struct nn_tensor **ins = nn_graph_host_alloc(g, (size_t)(k + 1) * sizeof *ins);
    const float **data = nn_graph_host_alloc(g, (size_t)k * sizeof *data);
    if (!ins || !data) return NULL;
    for (int j = 0; j < k; j++) {
        ins[j] = xs[j];
        data[j] = xs[j]->data;
    }
    ins[k] = w;
    struct nn_tensor *y = nn_graph_output(g, xs[0]->ndim, xs[0]->shape, ins, k + 1);
    if (!y) return NULL;
    BE(g)->wsum_fwd(BE(g), y->data, data, w->data + w_off, k, y->numel);
    struct nn_node nd = {.backward = wsum_bwd, .out = y, .in = {w}, .ins = ins, .k = k,
                         .p.i = {w_off}};
    return nn_graph_push(g, &nd) ? NULL : y;
}

struct nn_tensor *nn_zeros(struct nn_graph *g, int ndim, const int *shape)
{
    struct nn_tensor *y = nn_graph_tensor(g, ndim, shape);
    if (y) BE(g)->fill(BE(g), y->data, 0.0f, y->numel);
    return y;
}

struct nn_tensor *nn_identity(struct nn_graph *g, struct nn_tensor *x)
{
    if (any_null(g, 1, &x)) return NULL;
    return x;
}

static void concat_bwd(struct nn_graph *g, struct nn_node *nd)
{
    struct nn_backend *be = BE(g);
    struct nn_tensor *y = nd->out;
    int c0 = 0;
    for (int j = 0; j < nd->k; j++) {
        struct nn_tensor *x = nd->ins[j];
        float *d = nn_graph_grad(g, x);
        if (d)
            be->chan_copy(be, d, x->shape[1], 0, y->grad, y->shape[1], c0, x->shape[1], y->shape[0],
                          spatial(y), 1);
        c0 += x->shape[1];
    }
}

struct nn_tensor *nn_concat(struct nn_graph *g, int k, struct nn_tensor *const *xs)
{
    if (k < 1 || !xs) return nn_graph_fail(g, "concat: needs at least one input");
    if (any_null(g, k, xs)) return NULL;
    int c = 0;
    for (int j = 0; j < k; j++) {
        const struct nn_tensor *x = xs[j];
        if (x->ndim != 4 || x->shape[0] != xs[0]->shape[0] || x->shape[2] != xs[0]->shape[2] ||
            x->shape[3] != xs[0]->shape[3])
            return nn_graph_fail(g, "concat: input %d is not [N,*,H,W] like input 0", j);
        c += x->shape[1];
    }
    struct nn_tensor **ins = nn_graph_host_alloc(g, (size_t)k * sizeof *ins);
    if (!ins) return NULL;
    memcpy(ins, xs, (size_t)k * sizeof *ins);
    int shape[4] = {xs[0]->shape[0], c, xs[0]->shape[2], xs[0]->shape[3]};
    struct nn_tensor *y = nn_graph_output(g, 4, shape, ins, k);
    if (!y) return NULL;
    struct nn_backend *be = BE(g);
    int c0 = 0;
    for (int j = 0; j < k; j++) {
        be->chan_copy(be, y->data, c, c0, xs[j]->data, xs[j]->shape[1], 0, xs[j]->shape[1], shape[0],
                      spatial(y), 0);
        c0 += xs[j]->shape[1];
    }
    struct nn_node nd = {.backward = concat_bwd, .out = y, .ins = ins, .k = k};
    return nn_graph_push(g, &nd) ? NULL : y;
}

static void slice_bwd(struct nn_graph *g, struct nn_node *nd)
{
    struct nn_backend *be = BE(g);
    struct nn_tensor *x = nd->in[0], *y = nd->out;
    float *d = nn_graph_grad(g, x);
    if (d)
        be->chan_copy(be, d, x->shape[1], nd->p.i[0], y->grad, y->shape[1], 0, y->shape[1], y->shape[0],
                      spatial(y), 1);
}

struct nn_tensor *nn_slice(struct nn_graph *g, struct nn_tensor *x, int c0, int c1)
{
    if (any_null(g, 1, &x)) return NULL;
    if (x->ndim != 4) return nn_graph_fail(g, "slice: x must be 4-D");
    if (c0 < 0 || c1 <= c0 || c1 > x->shape[1])
        return nn_graph_fail(g, "slice: channels [%d, %d) outside [0, %d)", c0, c1, x->shape[1]);
    int shape[4] = {x->shape[0], c1 - c0, x->shape[2], x->shape[3]};
    struct nn_tensor *y = nn_graph_output(g, 4, shape, &x, 1);
    if (!y) return NULL;
    BE(g)->chan_copy(BE(g), y->data, c1 - c0, 0, x->data, x->shape[1], c0, c1 - c0, shape[0],
                     spatial(y), 0);
    struct nn_node nd = {.backward = slice_bwd, .out = y, .in = {x}, .p.i = {c0}};
    return nn_graph_push(g, &nd) ? NULL : y;
}
