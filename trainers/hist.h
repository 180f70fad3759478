/*
 * hist.h - feature binning for histogram gradient boosting (gbm.c).
 *
 * Each feature's non-missing training values are cut into at most max_bins
 * (<= 255) bins at quantiles: a feature with few distinct values gets one
 * bin per value, and the edges are midpoints between neighbouring distinct
 * values. Bin b of feature j holds values v with
 *     edges[b-1] < v <= edges[b]
 * (the first bin is open below, the last open above), so "bin <= b" is
 * exactly "v <= edges[b]" and a split learnt on bins is applied to raw
 * values with the threshold edges[b]. Missing values (NaN) get the extra
 * bin index n_bins[j], which still fits in a uint8.
 *
 * A hist_bins owns its arrays; hist_bins_free releases them (NULL-safe,
 * also on a zeroed struct). No threads are started here.
 */
#ifndef PODIUM_TRAINERS_HIST_H
#define PODIUM_TRAINERS_HIST_H

#include <stddef.h>
#include <stdint.h>

#define HIST_MAX_BINS 255

struct hist_bins {
    size_t d;
    uint32_t *n_bins;   /* d: value bins of feature j, 1..max_bins */
    size_t *off;        /* d + 1: feature j's edges are edges[off[j]..off[j+1]) */
    float *edges;       /* off[d] edges in all; n_bins[j] - 1 for feature j */
};

/* Fit bins to n rows of d features (x row-major, NaN = missing). When n is
 * larger than sample_rows (> 0), the quantiles come from an evenly spaced
 * subset of sample_rows rows. Returns 0, or -1 when out of memory. */
int hist_bins_fit(struct hist_bins *hb, const float *x, size_t n, size_t d,
                  int max_bins, size_t sample_rows);
void hist_bins_free(struct hist_bins *hb);

/* Bin index of value v of feature j: 0..n_bins[j]-1, or n_bins[j] for NaN. */
uint8_t hist_bin(const struct hist_bins *hb, size_t j, float v);

/* Quantize rows [lo, hi) of x (row-major, d = hb->d) into the column-major
 * matrix q (d * n: q[j * n + i]). */
void hist_quantize(const struct hist_bins *hb, const float *x, size_t n,
                   size_t lo, size_t hi, uint8_t *q);

/* The raw threshold equivalent to "bin <= b" for feature j: edges[b], or
 * +inf when b is the last value bin. */
float hist_threshold(const struct hist_bins *hb, size_t j, uint32_t b);

#endif
