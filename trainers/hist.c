/*
 * hist.c - see hist.h. Quantile bin edges per feature (values sorted with
 * the radix sort from tree.c) and quantization by binary search.
 */
#include "trainers/hist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "trainers/tree.h"

void hist_bins_free(struct hist_bins *hb)
{
    if (hb == NULL) return;
    free(hb->n_bins);
    free(hb->off);
    free(hb->edges);
    memset(hb, 0, sizeof *hb);
}

static float mid(float lo, float hi)
{
    float m = (float)((double)lo + ((double)hi - (double)lo) * 0.5);
    if (!(m >= lo && m < hi)) m = lo;
    return m;
}

int hist_bins_fit(struct hist_bins *hb, const float *x, size_t n, size_t d,
                  int max_bins, size_t sample_rows)
{
    memset(hb, 0, sizeof *hb);
    if (max_bins < 2 || max_bins > HIST_MAX_BINS) max_bins = HIST_MAX_BINS;
    size_t ns = (sample_rows > 0 && n > sample_rows) ? sample_rows : n;
    uint64_t *a = malloc((ns ? ns : 1) * sizeof *a);
    uint64_t *tmp = malloc((ns ? ns : 1) * sizeof *tmp);
    uint32_t *counts = malloc((2 * ns + 257) * sizeof *counts);
    float *vals = malloc((ns ? ns : 1) * sizeof *vals);
    uint32_t *cnt = malloc((ns ? ns : 1) * sizeof *cnt);
    hb->d = d;
    hb->n_bins = malloc((d ? d : 1) * sizeof *hb->n_bins);
    hb->off = malloc((d + 1) * sizeof *hb->off);
    hb->edges = malloc((d ? d : 1) * (size_t)(max_bins - 1) * sizeof *hb->edges + sizeof(float));
    if (!a || !tmp || !counts || !vals || !cnt || !hb->n_bins || !hb->off || !hb->edges) {
        free(a); free(tmp); free(counts); free(vals); free(cnt);
        hist_bins_free(hb);
        return -1;
    }
    size_t off = 0;
    for (size_t j = 0; j < d; j++) {
        /* Non-missing values of the (sub)sample, sorted. */
        size_t m = 0;
        for (size_t s = 0; s < ns; s++) {
            size_t i = ns == n ? s : (size_t)((double)s * (double)n / (double)ns);
            float v = x[i * d + j];
            if (v == v) a[m++] = (uint64_t)tree_float_key(v) << 32;
        }
        tree_sort_keys(a, tmp, counts, m, UINT32_MAX);
        /* Distinct values and their counts. */
        size_t u = 0;
        for (size_t i = 0; i < m; i++) {
            if (i == 0 || (a[i] >> 32) != (a[i - 1] >> 32)) {
                uint32_t k = (uint32_t)(a[i] >> 32);
                union { uint32_t u; float f; } c;
                c.u = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
                vals[u] = c.f;
                cnt[u++] = 1;
            } else {
                cnt[u - 1]++;
            }
        }
        hb->off[j] = off;
        if (u <= (size_t)max_bins) {
            for (size_t i = 0; i + 1 < u; i++) hb->edges[off++] = mid(vals[i], vals[i + 1]);
        } else {
            /* Greedy quantiles: close a bin once it reaches its share of the
             * remaining rows; a heavy value gets a bin of its own. */
            size_t left = m, bins_left = (size_t)max_bins, acc = 0;
            for (size_t i = 0; i + 1 < u && bins_left > 1; i++) {
                acc += cnt[i];
                double share = (double)left / (double)bins_left;
                /* Close early when the next value alone would overshoot. */
                if ((double)acc >= share ||
                    (double)(acc + cnt[i + 1]) > share * 1.5 ||
                    u - i - 1 <= bins_left - 1) {
                    hb->edges[off++] = mid(vals[i], vals[i + 1]);
                    left -= acc;
                    acc = 0;
                    bins_left--;
                }
            }
        }
        hb->n_bins[j] = (uint32_t)(off - hb->off[j] + 1);
    }
    hb->off[d] = off;
    free(a); free(tmp); free(counts); free(vals); free(cnt);
    return 0;
}

uint8_t hist_bin(const struct hist_bins *hb, size_t j, float v)
{
    uint32_t nb = hb->n_bins[j];
    if (v != v) return (uint8_t)nb;
    const float *e = hb->edges + hb->off[j];
    /* First edge >= v; none: the last bin. */
    uint32_t lo = 0, hi = nb - 1;
    while (lo < hi) {
        uint32_t m = (lo + hi) >> 1;
        if (e[m] >= v) hi = m;
        else lo = m + 1;
    }
    return (uint8_t)lo;
}

void hist_quantize(const struct hist_bins *hb, const float *x, size_t n,
                   size_t lo, size_t hi, uint8_t *q)
{
    size_t d = hb->d;
    for (size_t j = 0; j < d; j++) {
        uint8_t *col = q + j * n;
        for (size_t i = lo; i < hi; i++) col[i] = hist_bin(hb, j, x[i * d + j]);
    }
}

float hist_threshold(const struct hist_bins *hb, size_t j, uint32_t b)
{
    if (b + 1 >= hb->n_bins[j]) return INFINITY;
    return hb->edges[hb->off[j] + b];
}
