/*
 * tree.c - see tree.h. Flat decision trees, their model-file form, a key
 * sort for split search, and a row-block runner on short-lived threads.
 *
 * File form of one tree: u32 n_nodes, u32 n_leaves, u32 value_dim, then
 * per node i32 feature, f32 thr, u32 left, u32 right, u32 missing_left,
 * then n_leaves * value_dim f64 values. Loading checks that every child
 * index is greater than its parent's (so traversal ends), below n_nodes,
 * every leaf index is below n_leaves and every feature below d.
 */
#include "trainers/tree.h"

#include <pthread.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tree_init(struct tree *t, uint32_t value_dim)
{
    memset(t, 0, sizeof *t);
    t->value_dim = value_dim;
}

void tree_free(struct tree *t)
{
    if (t == NULL) return;
    free(t->nodes);
    free(t->values);
    uint32_t dim = t->value_dim;
    memset(t, 0, sizeof *t);
    t->value_dim = dim;
}

int64_t tree_add_node(struct tree *t)
{
    if (t->n_nodes >= TREE_MAX_NODES) return -1;
    if (t->n_nodes == t->cap_nodes) {
        uint32_t cap = t->cap_nodes ? t->cap_nodes * 2 : 64;
        struct tree_node *nd = realloc(t->nodes, (size_t)cap * sizeof *nd);
        if (nd == NULL) return -1;
        t->nodes = nd;
        t->cap_nodes = cap;
    }
    uint32_t i = t->n_nodes++;
    t->nodes[i] = (struct tree_node){ .feature = -1 };
    return i;
}

double *tree_make_leaf(struct tree *t, uint32_t i)
{
    if (t->n_leaves == t->cap_leaves) {
        uint32_t cap = t->cap_leaves ? t->cap_leaves * 2 : 32;
        double *v = realloc(t->values, (size_t)cap * t->value_dim * sizeof *v);
        if (v == NULL) return NULL;
        t->values = v;
        t->cap_leaves = cap;
    }
    uint32_t leaf = t->n_leaves++;
    t->nodes[i] = (struct tree_node){ .feature = -1, .left = leaf };
    return t->values + (size_t)leaf * t->value_dim;
}

void tree_shrink(struct tree *t)
{
    if (t->n_nodes && t->n_nodes < t->cap_nodes) {
        struct tree_node *nd = realloc(t->nodes, (size_t)t->n_nodes * sizeof *nd);
        if (nd) { t->nodes = nd; t->cap_nodes = t->n_nodes; }
    }
    if (t->n_leaves && t->n_leaves < t->cap_leaves) {
        double *v = realloc(t->values, (size_t)t->n_leaves * t->value_dim * sizeof *v);
        if (v) { t->values = v; t->cap_leaves = t->n_leaves; }
    }
}

int tree_depth(const struct tree *t)
{
    if (t->n_nodes == 0) return 0;
    /* Children come after parents, so one forward pass suffices. */
    int *depth = calloc(t->n_nodes, sizeof *depth);
    if (depth == NULL) return -1;
    int best = 0;
    for (uint32_t i = 0; i < t->n_nodes; i++) {
        if (depth[i] > best) best = depth[i];
        if (t->nodes[i].feature >= 0) {
            depth[t->nodes[i].left] = depth[i] + 1;
            depth[t->nodes[i].right] = depth[i] + 1;
        }
    }
    free(depth);
    return best;
}

int tree_save(const struct tree *t, struct pd_buf *out)
{
    pd_buf_put_u32(out, t->n_nodes);
    pd_buf_put_u32(out, t->n_leaves);
    pd_buf_put_u32(out, t->value_dim);
    for (uint32_t i = 0; i < t->n_nodes; i++) {
        const struct tree_node *nd = &t->nodes[i];
        pd_buf_put_u32(out, (uint32_t)nd->feature);
        pd_buf_put_f32(out, nd->thr);
        pd_buf_put_u32(out, nd->left);
        pd_buf_put_u32(out, nd->right);
        pd_buf_put_u32(out, nd->missing_left);
    }
    pd_buf_put_f64s(out, t->values, (size_t)t->n_leaves * t->value_dim);
    return out->failed ? -1 : 0;
}

int tree_load(struct tree *t, struct pd_reader *in, uint32_t d,
              uint32_t value_dim, char *err, size_t errlen)
{
    tree_init(t, value_dim);
    uint32_t n_nodes, n_leaves, dim;
    if (pd_reader_get_count(in, TREE_MAX_NODES, &n_nodes) < 0 ||
        pd_reader_get_count(in, TREE_MAX_NODES, &n_leaves) < 0 ||
        pd_reader_get_u32(in, &dim) < 0) {
        snprintf(err, errlen, "tree: truncated or bad header");
        return -1;
    }
    if (dim != value_dim || n_nodes == 0 || n_leaves == 0 || n_leaves > n_nodes) {
        snprintf(err, errlen, "tree: inconsistent header");
        return -1;
    }
    /* Refuse sizes the remaining bytes cannot hold before allocating. */
    if ((uint64_t)n_nodes * 20 > in->left ||
        (uint64_t)n_leaves * value_dim * 8 > in->left) {
        snprintf(err, errlen, "tree: truncated");
        return -1;
    }
    t->nodes = malloc((size_t)n_nodes * sizeof *t->nodes);
    t->values = malloc((size_t)n_leaves * value_dim * sizeof *t->values);
    if (t->nodes == NULL || t->values == NULL) {
        tree_free(t);
        snprintf(err, errlen, "tree: out of memory");
        return -1;
    }
    t->cap_nodes = n_nodes;
    t->cap_leaves = n_leaves;
    for (uint32_t i = 0; i < n_nodes; i++) {
        struct tree_node *nd = &t->nodes[i];
        uint32_t f;
        if (pd_reader_get_u32(in, &f) < 0 || pd_reader_get_f32(in, &nd->thr) < 0 ||
            pd_reader_get_u32(in, &nd->left) < 0 || pd_reader_get_u32(in, &nd->right) < 0 ||
            pd_reader_get_u32(in, &nd->missing_left) < 0) {
            snprintf(err, errlen, "tree: truncated node %u", i);
            goto fail;
        }
        nd->feature = (int32_t)f;
        if (nd->feature >= 0) {
            if ((uint32_t)nd->feature >= d || nd->left <= i || nd->right <= i ||
                nd->left >= n_nodes || nd->right >= n_nodes || nd->missing_left > 1 ||
                nd->thr != nd->thr) {
                snprintf(err, errlen, "tree: bad split node %u", i);
                goto fail;
            }
        } else if (nd->left >= n_leaves) {
            snprintf(err, errlen, "tree: bad leaf node %u", i);
            goto fail;
        }
    }
    if (pd_reader_get_f64s(in, t->values, (size_t)n_leaves * value_dim) < 0) {
        snprintf(err, errlen, "tree: truncated leaf values");
        goto fail;
    }
    for (size_t i = 0; i < (size_t)n_leaves * value_dim; i++) {
        if (!isfinite(t->values[i])) {
            snprintf(err, errlen, "tree: non-finite leaf value");
            goto fail;
        }
    }
    t->n_nodes = n_nodes;
    t->n_leaves = n_leaves;
    return 0;
fail:
    tree_free(t);
    return -1;
}

/* --- sorting ------------------------------------------------------------- */

static void insertion_sort(uint64_t *a, size_t m)
{
    for (size_t i = 1; i < m; i++) {
        uint64_t v = a[i];
        size_t j = i;
        while (j > 0 && a[j - 1] > v) { a[j] = a[j - 1]; j--; }
        a[j] = v;
    }
}

void tree_sort_keys(uint64_t *a, uint64_t *tmp, uint32_t *counts, size_t m,
                    uint32_t key_range)
{
    if (m < 64) { insertion_sort(a, m); return; }
    if ((size_t)key_range <= 2 * m) {
        /* Counting sort: one pass over the data. */
        memset(counts, 0, ((size_t)key_range + 1) * sizeof *counts);
        for (size_t i = 0; i < m; i++) counts[(a[i] >> 32) + 1]++;
        for (uint32_t k = 0; k < key_range; k++) counts[k + 1] += counts[k];
        for (size_t i = 0; i < m; i++) tmp[counts[a[i] >> 32]++] = a[i];
        memcpy(a, tmp, m * sizeof *a);
        return;
    }
    /* LSD radix sort on the key bytes that vary. */
    int passes = 0;
    for (uint32_t r = key_range - 1; r; r >>= 8) passes++;
    uint64_t *src = a, *dst = tmp;
    for (int p = 0; p < passes; p++) {
        int shift = 32 + 8 * p;
        memset(counts, 0, 257 * sizeof *counts);
        for (size_t i = 0; i < m; i++) counts[((src[i] >> shift) & 0xff) + 1]++;
        for (int k = 0; k < 256; k++) counts[k + 1] += counts[k];
        for (size_t i = 0; i < m; i++) dst[counts[(src[i] >> shift) & 0xff]++] = src[i];
        uint64_t *s = src; src = dst; dst = s;
    }
    if (src != a) memcpy(a, src, m * sizeof *a);
}

/* --- threads ------------------------------------------------------------ */

struct par_job {
    void (*fn)(void *ctx, size_t lo, size_t hi);
    void *ctx;
    size_t lo, hi;
};

static void *par_main(void *arg)
{
    struct par_job *j = arg;
    j->fn(j->ctx, j->lo, j->hi);
    return NULL;
}

void tree_parallel_rows(int threads, size_t n, size_t min_rows,
                        void (*fn)(void *ctx, size_t lo, size_t hi), void *ctx)
{
    size_t T = threads < 1 ? 1 : (size_t)threads;
    if (T > 64) T = 64;
    if (min_rows < 1) min_rows = 1;
    if (T > n / min_rows) T = n / min_rows;
    if (T < 1) T = 1;
    if (T == 1) { fn(ctx, 0, n); return; }
    pthread_t th[64];
    int started[64] = { 0 };
    struct par_job jobs[64];
    for (size_t t = 0; t < T; t++) {
        jobs[t] = (struct par_job){ fn, ctx, n * t / T, n * (t + 1) / T };
        if (t == 0) continue;
        if (pthread_create(&th[t], NULL, par_main, &jobs[t]) == 0) started[t] = 1;
        else fn(ctx, jobs[t].lo, jobs[t].hi);
    }
    fn(ctx, jobs[0].lo, jobs[0].hi);
    for (size_t t = 1; t < T; t++)
        if (started[t]) pthread_join(th[t], NULL);
}
