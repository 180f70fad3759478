/*
 * tree.h - building blocks shared by the tree families (forest.c: rf and
 * extratrees; gbm.c: histogram gradient boosting).
 *
 * - struct tree: a fitted binary decision tree as flat arrays (nodes in
 *   creation order, children always after their parent, leaf values in a
 *   separate block of value_dim doubles per leaf), with prediction and
 *   bounds-checked save/load.
 * - tree_sort_keys: sorts (key << 32 | row) pairs by key, counting or radix
 *   sort for big inputs, insertion sort for small ones.
 * - tree_parallel_rows: runs a function over blocks of rows on short-lived
 *   threads.
 *
 * The families' JSON parameter readers live in params.h.
 *
 * Only the tree-building calls (tree_add_node, tree_make_leaf,
 * tree_shrink, tree_load) and tree_depth allocate; only
 * tree_parallel_rows starts threads, and it joins them before returning.
 * A tree is owned by whoever holds it and released with tree_free (which
 * accepts an all-zero tree).
 */
#ifndef PODIUM_TRAINERS_TREE_H
#define PODIUM_TRAINERS_TREE_H

#include <stddef.h>
#include <stdint.h>

#include "trainers/buf.h"

/* Upper bounds for what a model file may declare. */
#define TREE_MAX_NODES  (1u << 27)
#define TREE_MAX_FEATURES (1u << 24)
#define TREE_MAX_VALUE_DIM 4096u

struct tree_node {
    int32_t feature;      /* split feature; < 0 marks a leaf */
    float thr;            /* go left when x <= thr */
    uint32_t left;        /* left child; for a leaf, its leaf index */
    uint32_t right;       /* right child; unused (0) for a leaf */
    uint32_t missing_left;/* 1: NaN goes left, 0: NaN goes right */
};

struct tree {
    struct tree_node *nodes;
    double *values;       /* n_leaves * value_dim */
    uint32_t n_nodes, cap_nodes;
    uint32_t n_leaves, cap_leaves;
    uint32_t value_dim;
};

/* An empty tree with leaves of value_dim doubles. */
void tree_init(struct tree *t, uint32_t value_dim);
void tree_free(struct tree *t);
/* Append a node (a leaf placeholder) and return its index, or -1 when out
 * of memory or at TREE_MAX_NODES. */
int64_t tree_add_node(struct tree *t);
/* Turn node i into a leaf and return a pointer to its value_dim values
 * (uninitialised), or NULL when out of memory. The pointer is valid until
 * the next tree_make_leaf. */
double *tree_make_leaf(struct tree *t, uint32_t i);
/* Release spare capacity once a tree is complete (best effort). */
void tree_shrink(struct tree *t);

/* The leaf values reached by one row of d features. */
static inline const double *tree_leaf_values(const struct tree *t, const float *x)
{
    const struct tree_node *nd = t->nodes;
    uint32_t i = 0;
    while (nd[i].feature >= 0) {
        float v = x[nd[i].feature];
        if (v <= nd[i].thr) i = nd[i].left;
        else if (v != v) i = nd[i].missing_left ? nd[i].left : nd[i].right;
        else i = nd[i].right;
    }
    return t->values + (size_t)nd[i].left * t->value_dim;
}

/* Maximum depth (a lone leaf has depth 0). */
int tree_depth(const struct tree *t);

int tree_save(const struct tree *t, struct pd_buf *out);
/* Read a tree saved by tree_save; its value_dim must equal value_dim and
 * its features must be < d. On failure returns -1 with a message and
 * leaves *t empty (freed). */
int tree_load(struct tree *t, struct pd_reader *in, uint32_t d,
              uint32_t value_dim, char *err, size_t errlen);

/* Sort m values of the form ((uint64_t)key << 32 | payload) by key
 * (ascending; payload order among equal keys is not specified), where
 * every key < key_range. tmp holds m values; counts holds
 * max(257, 2 * m + 1) uint32s. */
void tree_sort_keys(uint64_t *a, uint64_t *tmp, uint32_t *counts, size_t m,
                    uint32_t key_range);

/* Order-preserving map of a float to a uint32 (for radix sorts); NaN
 * must not be passed. */
static inline uint32_t tree_float_key(float f)
{
    union { float f; uint32_t u; } c = { .f = f == 0.0f ? 0.0f : f };
    return (c.u & 0x80000000u) ? ~c.u : (c.u | 0x80000000u);
}

/* Run fn(ctx, lo, hi) over [0, n) cut into up to `threads` contiguous
 * blocks of at least min_rows rows, on short-lived pthreads (the caller's
 * thread runs the first block). Falls back to the caller's thread when a
 * thread cannot be started. */
void tree_parallel_rows(int threads, size_t n, size_t min_rows,
                        void (*fn)(void *ctx, size_t lo, size_t hi), void *ctx);

#endif
