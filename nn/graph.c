/*
 * graph.c - see graph.h. Two arenas per graph: one of backend memory for
 * tensor values and gradients, one of host memory for the tensor structs
 * and input arrays; both are lists of blocks bumped by an offset. When a
 * step needed more than one block, the next reset frees them and takes
 * one block of the total size, so allocation stops after the first steps.
 * The tape is an array of fixed-size nodes that doubles when full.
 */
#include "nn/graph.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_MAX_BLOCKS 64
#define DATA_ALIGN 16            /* floats: 64 bytes */
#define HOST_ALIGN 16            /* bytes */
#define FIRST_DATA_BLOCK ((size_t)1 << 20) /* floats */
#define FIRST_HOST_BLOCK ((size_t)1 << 16) /* bytes */

struct arena {
    struct nn_backend *be;   /* NULL: host memory (malloc) */
    void *block[ARENA_MAX_BLOCKS];
    size_t cap[ARENA_MAX_BLOCKS]; /* units: floats (backend) or bytes (host) */
    int n, cur;
    size_t off, used_total;
};

struct nn_graph {
    struct nn_backend *be;
    struct arena data, host;
    struct nn_node *nodes;
    int n_nodes, cap_nodes;
    int training, recording, failed;
    double macs;
    char err[256];
};

static void *arena_block_new(struct arena *a, size_t cap)
{
    if (a->be) return a->be->alloc(a->be, cap);
    return malloc(cap);
}

static void arena_block_free(struct arena *a, void *p)
{
    if (a->be) a->be->free(a->be, p);
    else free(p);
}

static void *arena_alloc(struct arena *a, size_t size, size_t align, size_t first)
{
    size = (size + align - 1) / align * align;
    for (;;) {
        if (a->cur < a->n && a->cap[a->cur] - a->off >= size) {
            size_t o = a->off;
            a->off += size;
            a->used_total += size;
            return a->be ? (void *)((float *)a->block[a->cur] + o) : (void *)((char *)a->block[a->cur] + o);
        }
        if (a->cur + 1 < a->n) {
            a->cur++;
            a->off = 0;
            continue;
        }
        if (a->n == ARENA_MAX_BLOCKS) return NULL;
        size_t cap = a->n ? 2 * a->cap[a->n - 1] : first;
        if (cap < size) cap = size;
        void *b = arena_block_new(a, cap);
        if (!b) return NULL;
        a->block[a->n] = b;
        a->cap[a->n] = cap;
        if (a->n > 0) a->cur = a->n;
        a->n++;
        a->off = 0;
    }
}

static void arena_reset(struct arena *a)
{
    if (a->n > 1) {
        size_t total = 0;
        for (int i = 0; i < a->n; i++) {
            total += a->cap[i];
            arena_block_free(a, a->block[i]);
        }
        a->n = 0;
        void *b = arena_block_new(a, total);
        if (b) {
            a->block[0] = b;
            a->cap[0] = total;
            a->n = 1;
        }
    }
    a->cur = 0;
    a->off = 0;
    a->used_total = 0;
}

static void arena_free(struct arena *a)
{
    for (int i = 0; i < a->n; i++) arena_block_free(a, a->block[i]);
    a->n = 0;
}

struct nn_graph *nn_graph_new(struct nn_backend *be, char *err, size_t errlen)
{
    struct nn_graph *g = calloc(1, sizeof *g);
    if (!g) {
        if (err && errlen) snprintf(err, errlen, "out of memory");
        return NULL;
    }
    g->be = be;
    g->data.be = be;
    g->training = 1;
    g->recording = 1;
    return g;
}

void nn_graph_free(struct nn_graph *g)
{
    if (!g) return;
    arena_free(&g->data);
    arena_free(&g->host);
    free(g->nodes);
    free(g);
}

void nn_graph_reset(struct nn_graph *g)
{
    arena_reset(&g->data);
    arena_reset(&g->host);
    g->n_nodes = 0;
    g->failed = 0;
    g->err[0] = 0;
    g->macs = 0;
}

void nn_graph_set_training(struct nn_graph *g, int training) { g->training = !!training; }
void nn_graph_set_recording(struct nn_graph *g, int recording) { g->recording = !!recording; }
int nn_graph_training(const struct nn_graph *g) { return g->training; }
int nn_graph_recording(const struct nn_graph *g) { return g->recording; }
struct nn_backend *nn_graph_backend(const struct nn_graph *g) { return g->be; }
const char *nn_graph_error(const struct nn_graph *g) { return g->failed ? g->err : NULL; }
double nn_graph_macs(const struct nn_graph *g) { return g->macs; }
void nn_graph_add_macs(struct nn_graph *g, double macs) { g->macs += macs; }
int nn_graph_nodes(const struct nn_graph *g) { return g->n_nodes; }
size_t nn_graph_arena_bytes(const struct nn_graph *g) { return g->data.used_total * sizeof(float); }
int nn_graph_failed(const struct nn_graph *g) { return g->failed; }

void *nn_graph_fail(struct nn_graph *g, const char *fmt, ...)
{
    if (g->failed) return NULL;
    g->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->err, sizeof g->err, fmt, ap);
    va_end(ap);
    return NULL;
}

void *nn_graph_host_alloc(struct nn_graph *g, size_t bytes)
{
    void *p = arena_alloc(&g->host, bytes ? bytes : 1, HOST_ALIGN, FIRST_HOST_BLOCK);
    if (!p) nn_graph_fail(g, "out of host memory in the graph arena");
    return p;
}

struct nn_tensor *nn_graph_tensor(struct nn_graph *g, int ndim, const int *shape)
{
    if (g->failed) return NULL;
    size_t n = nn_shape_numel(ndim, shape);
    if (!n) return nn_graph_fail(g, "bad tensor shape");
    struct nn_tensor *t = nn_graph_host_alloc(g, sizeof *t);
    if (!t) return NULL;
    memset(t, 0, sizeof *t);
    t->data = arena_alloc(&g->data, n, DATA_ALIGN, FIRST_DATA_BLOCK);
    if (!t->data) return nn_graph_fail(g, "out of backend memory for a tensor of %zu floats", n);
    t->ndim = ndim;
    for (int i = 0; i < NN_MAX_DIMS; i++) t->shape[i] = i < ndim ? shape[i] : 1;
    t->numel = n;
    t->be = g->be;
    return t;
}

struct nn_tensor *nn_graph_input(struct nn_graph *g, int ndim, const int *shape, const float *host)
{
    struct nn_tensor *t = nn_graph_tensor(g, ndim, shape);
    if (t) g->be->upload(g->be, t->data, host, t->numel);
    return t;
}

struct nn_tensor *nn_graph_output(struct nn_graph *g, int ndim, const int *shape,
                                  struct nn_tensor *const *inputs, int n)
{
    struct nn_tensor *t = nn_graph_tensor(g, ndim, shape);
    if (!t || !g->recording) return t;
    for (int i = 0; i < n; i++)
        if (inputs[i] && (inputs[i]->flags & NN_T_NEEDS_GRAD)) {
            t->flags |= NN_T_NEEDS_GRAD;
            break;
        }
    return t;
}

int nn_graph_push(struct nn_graph *g, const struct nn_node *nd)
{
    if (!g->recording || !(nd->out->flags & NN_T_NEEDS_GRAD)) return 0;
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? 2 * g->cap_nodes : 256;
        struct nn_node *n2 = realloc(g->nodes, (size_t)cap * sizeof *n2);
        if (!n2) {
            nn_graph_fail(g, "out of memory for the tape");
            return -1;
        }
        g->nodes = n2;
        g->cap_nodes = cap;
    }
    g->nodes[g->n_nodes++] = *nd;
    return 0;
}

float *nn_graph_grad(struct nn_graph *g, struct nn_tensor *t)
{
    if (!t || !(t->flags & NN_T_NEEDS_GRAD)) return NULL;
    if (t->grad) return t->grad;
    t->grad = arena_alloc(&g->data, t->numel, DATA_ALIGN, FIRST_DATA_BLOCK);
    if (!t->grad) {
        nn_graph_fail(g, "out of backend memory for a gradient of %zu floats", t->numel);
        return NULL;
    }
    g->be->fill(g->be, t->grad, 0.0f, t->numel);
    return t->grad;
}

static int backward(struct nn_graph *g, struct nn_tensor *y, const float *dy, char *err,
                    size_t errlen)
{
    if (g->failed) {
        if (err && errlen) snprintf(err, errlen, "%s", g->err);
        return -1;
    }
    if (!y || !(y->flags & NN_T_NEEDS_GRAD) || (!dy && y->numel != 1)) {
        if (err && errlen)
            snprintf(err, errlen, "backward needs a %s recorded on the tape",
                     dy ? "tensor" : "one-element loss");
        return -1;
    }
    float *gy = nn_graph_grad(g, y);
    if (!gy) goto fail;
    if (dy) g->be->upload(g->be, gy, dy, y->numel);
    else g->be->fill(g->be, gy, 1.0f, 1);
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        struct nn_node *nd = &g->nodes[i];
        if (!nd->out->grad) continue; /* nothing flowed into it */
        nd->backward(g, nd);
        if (g->failed) goto fail;
    }
    return 0;
fail:
    if (err && errlen) snprintf(err, errlen, "%s", g->err);
    return -1;
}

int nn_graph_backward(struct nn_graph *g, struct nn_tensor *loss, char *err, size_t errlen)
{
    return backward(g, loss, NULL, err, errlen);
}

int nn_graph_backward_from(struct nn_graph *g, struct nn_tensor *y, const float *dy, char *err,
                           size_t errlen)
{
    return backward(g, y, dy, err, errlen);
}
