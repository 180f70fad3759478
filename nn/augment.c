/*
 * augment.c - see augment.h.
 *
 * Resizing is evaluated directly as the product of two 1-D filters: for
 * each axis a table of taps (first source index, count, weights) per
 * output index, built once per call; an output pixel is the sum over its
 * y taps and x taps of wy * wx * source. A bilinear tap list has at most
 * two entries, an area one about in/out + 2, so the tables hold at most
 * in + 2*out weights per axis and the work is that of a separable filter
 * without a full-size intermediate image (which, for a 64-megapixel
 * upload, would be the biggest allocation here).
 */
#include "nn/augment.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set_err(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t err_size, const char *fmt, ...)
{
    if (!err || err_size == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

/* --- resize ------------------------------------------------------------------ */

struct taps {
    uint32_t *start;      /* first source index of output o */
    uint32_t *count;      /* number of taps of output o */
    size_t *off;          /* where output o's weights start in w */
    float *w;
};

static void taps_free(struct taps *t)
{
    free(t->start);
    free(t->count);
    free(t->off);
    free(t->w);
}

/* Taps mapping n_in source samples to n_out outputs along one axis. */
static int taps_build(struct taps *t, uint32_t n_in, uint32_t n_out)
{
    const double scale = (double)n_in / (double)n_out;
    const int area = n_in > 2 * (uint64_t)n_out;
    size_t max_w = area ? (size_t)n_in + 2 * (size_t)n_out : 2 * (size_t)n_out;
    memset(t, 0, sizeof *t);
    t->start = malloc(n_out * sizeof *t->start);
    t->count = malloc(n_out * sizeof *t->count);
    t->off = malloc(n_out * sizeof *t->off);
    t->w = malloc(max_w * sizeof *t->w);
    if (!t->start || !t->count || !t->off || !t->w) {
        taps_free(t);
        return AUG_ENOMEM;
    }
    size_t k = 0;
    for (uint32_t o = 0; o < n_out; o++) {
        t->off[o] = k;
        if (area) {
            /* footprint [lo, hi) in source pixels; each source pixel i
             * covers [i, i+1) and weighs its overlap / scale */
            double lo = o * scale, hi = (o + 1) * scale;
            uint32_t i0 = (uint32_t)floor(lo);
            uint32_t i1 = (uint32_t)ceil(hi);
            if (i1 > n_in) i1 = n_in;
            t->start[o] = i0;
            t->count[o] = 0;
            double sum = 0;
            for (uint32_t i = i0; i < i1; i++) {
                double a = lo > i ? lo : (double)i;
                double b = hi < i + 1.0 ? hi : (double)i + 1.0;
                double cover = b - a > 0 ? b - a : 0.0;
                t->w[k + t->count[o]] = (float)cover;
                t->count[o]++;
                sum += cover;
            }
            for (uint32_t j = 0; j < t->count[o]; j++) t->w[k + j] = (float)(t->w[k + j] / sum);
            k += t->count[o];
        } else {
            /* half-pixel centres; torch clamps negative positions to 0 */
            double src = (o + 0.5) * scale - 0.5;
            if (src < 0) src = 0;
            uint32_t i0 = (uint32_t)src;
            if (i0 > n_in - 1) i0 = n_in - 1;
            double frac = src - i0;
            t->start[o] = i0;
            if (i0 + 1 < n_in && frac > 0) {
                t->count[o] = 2;
                t->w[k] = (float)(1.0 - frac);
                t->w[k + 1] = (float)frac;
                k += 2;
            } else {
                t->count[o] = 1;
                t->w[k++] = 1.0f;
            }
        }
    }
    return 0;
}

/* Sample (y, x) of src as output channel oc of out_c channels, in 0..255. */
static inline float sample(const uint8_t *row, uint32_t x, int in_c, int out_c, int oc)
{
    const uint8_t *p = row + (size_t)x * (size_t)in_c;
    if (in_c <= 2) return p[0];                     /* grey (alpha ignored) */
    if (out_c == 3) return p[oc];                   /* RGB(A) to RGB */
    return 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];  /* RGB to luma */
}

static int image_check(const struct aug_image *im, char *err, size_t err_size)
{
    if (!im || !im->pixels) {
        set_err(err, err_size, "no pixels");
        return AUG_EARG;
    }
    if (im->channels < 1 || im->channels > AUG_MAX_CHANNELS) {
        set_err(err, err_size, "%d channels (need 1..%d)", im->channels, AUG_MAX_CHANNELS);
        return AUG_EARG;
    }
    if (im->width < 1 || im->height < 1 || im->width > AUG_MAX_SIDE || im->height > AUG_MAX_SIDE) {
        set_err(err, err_size, "size %ux%u (need 1..%u per side)", im->width, im->height,
                AUG_MAX_SIDE);
        return AUG_EARG;
    }
    if (im->stride && im->stride < (size_t)im->width * (size_t)im->channels) {
        set_err(err, err_size, "stride %zu is less than a row of %u pixels", im->stride, im->width);
        return AUG_EARG;
    }
    return 0;
}

int aug_resize(const struct aug_image *src, int out_c, uint32_t out_h, uint32_t out_w,
               float *dst, char *err, size_t err_size)
{
    struct taps ty, tx;
    int rc = image_check(src, err, err_size);
    if (rc) return rc;
    if (!dst || (out_c != 1 && out_c != 3)) {
        set_err(err, err_size, "output needs 1 or 3 channels and a buffer");
        return AUG_EARG;
    }
    if (out_h < 1 || out_w < 1 || out_h > AUG_MAX_OUT_SIDE || out_w > AUG_MAX_OUT_SIDE) {
        set_err(err, err_size, "output size %ux%u (need 1..%u per side)", out_w, out_h,
                AUG_MAX_OUT_SIDE);
        return AUG_EARG;
    }
    if (taps_build(&ty, src->height, out_h) != 0) {
        set_err(err, err_size, "out of memory");
        return AUG_ENOMEM;
    }
    if (taps_build(&tx, src->width, out_w) != 0) {
        taps_free(&ty);
        set_err(err, err_size, "out of memory");
        return AUG_ENOMEM;
    }
    const int in_c = src->channels;
    const size_t stride = src->stride ? src->stride : (size_t)src->width * (size_t)in_c;
    const size_t plane = (size_t)out_h * out_w;
    for (int oc = 0; oc < out_c; oc++) {
        for (uint32_t oy = 0; oy < out_h; oy++) {
            float *drow = dst + (size_t)oc * plane + (size_t)oy * out_w;
            for (uint32_t ox = 0; ox < out_w; ox++) {
                float acc = 0;
                for (uint32_t a = 0; a < ty.count[oy]; a++) {
                    const uint8_t *row = src->pixels + (size_t)(ty.start[oy] + a) * stride;
                    const float *wx = tx.w + tx.off[ox];
                    float racc = 0;
                    for (uint32_t b = 0; b < tx.count[ox]; b++)
                        racc += wx[b] * sample(row, tx.start[ox] + b, in_c, out_c, oc);
                    acc += ty.w[ty.off[oy] + a] * racc;
                }
                float v = acc / 255.0f;
                drow[ox] = v < 0 ? 0 : v > 1 ? 1 : v;
            }
        }
    }
    taps_free(&ty);
    taps_free(&tx);
    return 0;
}

/* --- statistics ---------------------------------------------------------------- */

void aug_stats_init(struct aug_stats *s, int channels)
{
    memset(s, 0, sizeof *s);
    s->channels = channels;
}

void aug_stats_add(struct aug_stats *s, const float *chw, size_t hw)
{
    if (hw == 0 || s->channels < 1 || s->channels > AUG_MAX_CHANNELS) return;
    for (int c = 0; c < s->channels; c++) {
        const float *p = chw + (size_t)c * hw;
        double mb = 0, m2b = 0;
        for (size_t i = 0; i < hw; i++) mb += p[i];
        mb /= (double)hw;
        for (size_t i = 0; i < hw; i++) {
            double d = p[i] - mb;
            m2b += d * d;
        }
        double na = (double)s->count, nb = (double)hw, n = na + nb;
        double delta = mb - s->mean[c];
        s->mean[c] += delta * nb / n;
        s->m2[c] += m2b + delta * delta * na * nb / n;
    }
    s->count += hw;
}

int aug_stats_finish(const struct aug_stats *s, float *mean, float *std)
{
    if (s->count == 0 || s->channels < 1 || s->channels > AUG_MAX_CHANNELS) return AUG_EARG;
    for (int c = 0; c < s->channels; c++) {
        double sd = sqrt(s->m2[c] / (double)s->count);
        mean[c] = (float)s->mean[c];
        std[c] = sd < 1e-6 ? 1.0f : (float)sd;
    }
    return 0;
}

void aug_normalize(float *chw, int channels, size_t hw, const float *mean, const float *std)
{
    for (int c = 0; c < channels; c++) {
        float *p = chw + (size_t)c * hw;
        const float m = mean[c], inv = 1.0f / std[c];
        for (size_t i = 0; i < hw; i++) p[i] = (p[i] - m) * inv;
    }
}

/* --- crop and flip ---------------------------------------------------------------- */

void aug_random_crop(const float *src, float *dst, int c, uint32_t h, uint32_t w,
                     uint32_t pad, struct pd_rng *r, uint32_t *oy, uint32_t *ox)
{
    uint32_t dy = pad ? (uint32_t)pd_rng_below(r, 2 * (uint64_t)pad + 1) : 0;
    uint32_t dx = pad ? (uint32_t)pd_rng_below(r, 2 * (uint64_t)pad + 1) : 0;
    if (oy) *oy = dy;
    if (ox) *ox = dx;
    /* destination (y, x) reads source (y + dy - pad, x + dx - pad) */
    const int64_t sy0 = (int64_t)dy - pad, sx0 = (int64_t)dx - pad;
    const size_t plane = (size_t)h * w;
    for (int k = 0; k < c; k++) {
        const float *s = src + (size_t)k * plane;
        float *d = dst + (size_t)k * plane;
        for (uint32_t y = 0; y < h; y++) {
            int64_t sy = (int64_t)y + sy0;
            float *drow = d + (size_t)y * w;
            if (sy < 0 || sy >= (int64_t)h) {
                memset(drow, 0, w * sizeof *drow);
                continue;
            }
            /* columns x with 0 <= x + sx0 < w */
            int64_t x_lo = sx0 < 0 ? -sx0 : 0;
            int64_t x_hi = sx0 > 0 ? (int64_t)w - sx0 : (int64_t)w;
            if (x_lo > (int64_t)w) x_lo = w;
            if (x_hi < x_lo) x_hi = x_lo;
            memset(drow, 0, (size_t)x_lo * sizeof *drow);
            if (x_hi > x_lo)
                memcpy(drow + x_lo, s + (size_t)sy * w + (size_t)(x_lo + sx0),
                       (size_t)(x_hi - x_lo) * sizeof *drow);
            memset(drow + x_hi, 0, (size_t)((int64_t)w - x_hi) * sizeof *drow);
        }
    }
}

void aug_hflip(float *chw, int c, uint32_t h, uint32_t w)
{
    for (size_t row = 0; row < (size_t)c * h; row++) {
        float *p = chw + row * w;
        for (uint32_t a = 0, b = w ? w - 1 : 0; a < b; a++, b--) {
            float t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
    }
}

void aug_cutout(float *chw, int c, uint32_t h, uint32_t w, uint32_t length, struct pd_rng *r,
                uint32_t *cy, uint32_t *cx)
{
    if (length == 0 || h == 0 || w == 0) return;
    uint32_t y = (uint32_t)pd_rng_below(r, h), x = (uint32_t)pd_rng_below(r, w);
    if (cy) *cy = y;
    if (cx) *cx = x;
    /* [centre - length/2, centre - length/2 + length) clipped, in 64 bits */
    int64_t y0 = (int64_t)y - length / 2, x0 = (int64_t)x - length / 2;
    int64_t y1 = y0 + length, x1 = x0 + length;
    y0 = y0 < 0 ? 0 : y0;
    x0 = x0 < 0 ? 0 : x0;
    y1 = y1 > h ? h : y1;
    x1 = x1 > w ? w : x1;
    for (int ch = 0; ch < c; ch++)
        for (int64_t row = y0; row < y1; row++) {
            float *p = chw + ((size_t)ch * h + (size_t)row) * w;
            for (int64_t col = x0; col < x1; col++) p[col] = 0.0f;
        }
}

/* --- batches ------------------------------------------------------------------------ */

int aug_spec_check(const struct aug_spec *spec, char *err, size_t err_size)
{
    if (!spec) {
        set_err(err, err_size, "no spec");
        return AUG_EARG;
    }
    if (spec->channels != 1 && spec->channels != 3) {
        set_err(err, err_size, "spec channels %d (need 1 or 3)", spec->channels);
        return AUG_EARG;
    }
    if (spec->height < 1 || spec->width < 1 || spec->height > AUG_MAX_OUT_SIDE
        || spec->width > AUG_MAX_OUT_SIDE) {
        set_err(err, err_size, "spec size %ux%u (need 1..%u per side)", spec->width, spec->height,
                AUG_MAX_OUT_SIDE);
        return AUG_EARG;
    }
    if (spec->pad > AUG_MAX_PAD) {
        set_err(err, err_size, "crop padding %u (at most %u)", spec->pad, AUG_MAX_PAD);
        return AUG_EARG;
    }
    if (spec->cutout > AUG_MAX_OUT_SIDE) {
        set_err(err, err_size, "cutout %u (at most %u)", spec->cutout, AUG_MAX_OUT_SIDE);
        return AUG_EARG;
    }
    if (!spec->mean != !spec->std) {
        set_err(err, err_size, "normalization needs both mean and std");
        return AUG_EARG;
    }
    for (int c = 0; spec->std && c < spec->channels; c++)
        if (!isfinite(spec->std[c]) || !(spec->std[c] > 0) || !isfinite(spec->mean[c])) {
            set_err(err, err_size, "channel %d: mean %g, std %g (std must be finite and > 0)", c,
                    spec->mean[c], spec->std[c]);
            return AUG_EARG;
        }
    return 0;
}

int aug_fill_batch(const struct aug_spec *spec, const struct aug_image *images,
                   size_t n_images, const size_t *idx, size_t n, uint64_t seed,
                   float *out, char *err, size_t err_size)
{
    float *scratch = NULL;
    char why[160];
    int rc = aug_spec_check(spec, err, err_size);
    if (rc) return rc;
    if (n > 0 && (!images || !idx || !out)) {
        set_err(err, err_size, "NULL images, indices or output");
        return AUG_EARG;
    }
    const int c = spec->channels;
    const size_t hw = (size_t)spec->height * spec->width, per = (size_t)c * hw;
    if (spec->pad && n > 0) {
        scratch = malloc(per * sizeof *scratch);
        if (!scratch) {
            set_err(err, err_size, "out of memory");
            return AUG_ENOMEM;
        }
    }
    for (size_t i = 0; i < n; i++) {
        float *dst = out + i * per;
        if (idx[i] >= n_images) {
            set_err(err, err_size, "batch slot %zu: image index %zu out of range (%zu images)", i,
                    idx[i], n_images);
            rc = AUG_EARG;
            goto done;
        }
        uint64_t mix = i;
        struct pd_rng r;
        pd_rng_seed(&r, seed ^ pd_rng_splitmix(&mix));
        float *target = spec->pad ? scratch : dst;
        rc = aug_resize(&images[idx[i]], c, spec->height, spec->width, target, why, sizeof why);
        if (rc) {
            set_err(err, err_size, "batch slot %zu, image %zu: %s", i, idx[i], why);
            goto done;
        }
        if (spec->pad) aug_random_crop(scratch, dst, c, spec->height, spec->width, spec->pad, &r,
                                       NULL, NULL);
        if (spec->hflip && pd_rng_uniform(&r) < 0.5) aug_hflip(dst, c, spec->height, spec->width);
        if (spec->mean) aug_normalize(dst, c, hw, spec->mean, spec->std);
        aug_cutout(dst, c, spec->height, spec->width, spec->cutout, &r, NULL, NULL);
    }
    rc = 0;
done:
    free(scratch);
    return rc;
}
