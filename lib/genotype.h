/*
 * genotype.h - a DARTS cell genotype: what neural architecture search
 * finds, what a CNN trainer builds, what a leaderboard shows and draws.
 *
 * A network is a stack of cells; a cell has two inputs (the outputs of the
 * two previous cells, c_{k-2} and c_{k-1}: inputs 0 and 1) and
 * GENOTYPE_NODES intermediate nodes (inputs 2.. of later nodes). Node i
 * sums two edges, each an operation applied to one earlier state (0 ..
 * i+1); the cell's output concatenates every intermediate node along
 * channels. Normal cells keep the spatial size; reduction cells (at 1/3
 * and 2/3 of the depth) halve it, their edges from the cell inputs having
 * stride 2. This is the search space of Liu et al., "DARTS" (ICLR 2019);
 * the JSON form is theirs as well:
 *
 *   {"normal": [["sep_conv_3x3", 0], ["skip_connect", 1], ... 8 edges],
 *    "reduce": [["max_pool_3x3", 0], ... 8 edges]}
 *
 * edges 2i and 2i+1 being node i's. "none" is an operation of the search
 * (the DARTS mixed op) but never of a genotype.
 *
 * Pure functions, no global state: any thread.
 */
#ifndef PODIUM_LIB_GENOTYPE_H
#define PODIUM_LIB_GENOTYPE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define GENOTYPE_NODES 4
#define GENOTYPE_EDGES (2 * GENOTYPE_NODES)

enum genotype_op {
    GOP_NONE = 0,          /* search only */
    GOP_MAX_POOL_3X3,
    GOP_AVG_POOL_3X3,
    GOP_SKIP_CONNECT,
    GOP_SEP_CONV_3X3,
    GOP_SEP_CONV_5X5,
    GOP_DIL_CONV_3X3,
    GOP_DIL_CONV_5X5,
    GOP_COUNT
};

struct genotype_edge {
    int op;                /* enum genotype_op, never GOP_NONE */
    int input;             /* 0, 1: the cell's inputs; 2 + j: node j */
};

struct genotype {
    struct genotype_edge normal[GENOTYPE_EDGES];
    struct genotype_edge reduce[GENOTYPE_EDGES];
};

/* "sep_conv_3x3" for GOP_SEP_CONV_3X3; NULL out of range. */
/* DARTS_V2, the cells the paper found on CIFAR-10 (Liu et al. 2019): the
 * cnn family's default genotype. */
extern const struct genotype genotype_darts_v2;

const char *genotype_op_name(int op);
/* The op called name, or -1. */
int genotype_op_find(const char *name);

/* Parse the JSON form; 0, or -1 with err naming the bad member (e.g.
 * "genotype.normal[3]: input 5 is not before node 1"). */
int genotype_from_json(const cJSON *j, struct genotype *g, char *err, size_t errlen);
/* The JSON form as a new object (the caller deletes it); NULL: no memory. */
cJSON *genotype_to_json(const struct genotype *g);

/* A small deterministic generator (splitmix64), as the strategies use. */
struct genotype_rng { uint64_t s; };
uint64_t genotype_rng_next(struct genotype_rng *r);

/* Every edge's op and input drawn uniformly (two distinct inputs per node,
 * as DARTS derives them). */
void genotype_random(struct genotype *g, struct genotype_rng *r);
/* Regularized evolution's mutation (Real et al. 2019): in the normal or the
 * reduction cell, one edge gets a different op or a different input. */
void genotype_mutate(struct genotype *g, struct genotype_rng *r);

/* A stable text key (e.g. to tell repeated architectures apart). */
void genotype_key(const struct genotype *g, char *out, size_t len);

/* Both cells drawn as a standalone SVG document (malloc'd, NUL-terminated;
 * the caller frees), or NULL when out of memory. */
char *genotype_svg(const struct genotype *g, const char *title);

#endif
