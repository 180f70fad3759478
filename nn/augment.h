/*
 * augment.h - turn decoded 8-bit images into the float CHW tensors a CNN
 * trains on: resizing to the spec's size, per-channel normalization
 * (statistics computed over a training set), random crop with zero
 * padding, random horizontal flip, cutout, and a helper that fills a whole NCHW
 * batch from a list of image indices.
 *
 * Who uses it: the CNN trainer (and anything else that feeds images to a
 * network). It works on plain host arrays and knows nothing about tensors.
 *
 * Images: decoding is lib/image's job (image_decode gives a struct
 * image_pixels: 8-bit grey or RGB, HWC, rows packed; IDX images are 8-bit
 * grey rows too). struct aug_image is a read-only VIEW of such pixels, so
 * nothing is copied or converted before resizing: wrap a decoded image as
 *     struct aug_image im = {px.data, px.width, px.height, px.channels, 0};
 * It adds what a view needs beyond image_pixels: a row stride (to view a
 * sub-rectangle or padded rows) and, for callers with other sources,
 * 2 (grey+alpha) and 4 (RGBA) channels, whose alpha is ignored.
 *
 * Resizing (aug_resize): separable, per axis, output pixel centres mapped
 * to the source with half-pixel offsets (align_corners = false):
 *  - when the source is at most 2x the output along an axis (any upscale,
 *    and downscales by up to 2x), bilinear interpolation along that axis
 *    (as torch's interpolate(mode="bilinear", antialias=False); edges
 *    clamp);
 *  - when the source is more than 2x the output along an axis, area
 *    averaging along that axis: each output pixel is the mean of the
 *    source pixels its footprint covers, partial pixels weighted by the
 *    fraction covered (OpenCV's INTER_AREA, torch's adaptive/area mode for
 *    integer factors), which does not alias the way bilinear does.
 * Channel conversion: grey to RGB repeats the grey value; RGB to grey is
 * ITU-R 601 luma 0.299 R + 0.587 G + 0.114 B (PIL's convert("L")).
 * Values come out in [0, 1] (sample / 255).
 *
 * Augmentation order (aug_fill_batch), as torchvision's usual training
 * pipeline RandomCrop(padding=P) -> RandomHorizontalFlip -> ToTensor ->
 * Normalize (-> Cutout, as DARTS): resize, then crop (the padding is
 * black, i.e. 0 before normalization), then flip, then normalize, then
 * cut one hole out (0 after normalization).
 *
 * Randomness: a struct pd_rng (trainers/rng.h). aug_fill_batch seeds one
 * generator per batch slot from (seed, slot), so a batch depends only on
 * the seed and the indices, not on threads or earlier batches.
 *
 * No global state; every function may be called from several threads at
 * once on different outputs.
 */
#ifndef PODIUM_NN_AUGMENT_H
#define PODIUM_NN_AUGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "trainers/rng.h"

enum aug_status {
    AUG_OK = 0,
    AUG_EARG = -1,        /* bad sizes, channels, pointers or spec */
    AUG_ENOMEM = -2,
};

#define AUG_MAX_SIDE 65535u           /* as lib/image's default max_side */
#define AUG_MAX_OUT_SIDE 4096u        /* output height / width */
#define AUG_MAX_PAD 1024u
#define AUG_MAX_CHANNELS 4

/* A decoded 8-bit image, HWC; see above. The caller owns pixels. */
struct aug_image {
    const uint8_t *pixels;
    uint32_t width, height;
    int channels;         /* 1..4 */
    size_t stride;        /* bytes per row; 0 = width * channels */
};

/* Resize src to out_c x out_h x out_w floats in [0, 1], CHW, into dst
 * (out_c * out_h * out_w floats, caller-owned). out_c is 1 or 3. 0, or
 * AUG_EARG / AUG_ENOMEM with a message in err. */
int aug_resize(const struct aug_image *src, int out_c, uint32_t out_h, uint32_t out_w,
               float *dst, char *err, size_t err_size);

/* --- per-channel normalization ------------------------------------------- */

/* Running per-channel mean and variance over any number of CHW float
 * images (Chan et al.'s pairwise merge of per-image mean and sum of
 * squared deviations, in double). Zero-initialize, or aug_stats_init. */
struct aug_stats {
    int channels;
    uint64_t count;                      /* values per channel so far */
    double mean[AUG_MAX_CHANNELS];
    double m2[AUG_MAX_CHANNELS];         /* sum of squared deviations */
};

void aug_stats_init(struct aug_stats *s, int channels);
/* Add one image of s->channels x hw values (CHW). */
void aug_stats_add(struct aug_stats *s, const float *chw, size_t hw);
/* mean[c] and the population standard deviation std[c] (divided by the
 * count, as torch's std(unbiased=False)); a channel whose deviation is
 * below 1e-6 (a constant channel) gets std 1 so that normalizing by it
 * only centres. AUG_EARG when nothing was added. */
int aug_stats_finish(const struct aug_stats *s, float *mean, float *std);

/* x = (x - mean[c]) / std[c] over a CHW image. */
void aug_normalize(float *chw, int channels, size_t hw, const float *mean, const float *std);

/* --- geometric augmentation ------------------------------------------------ */

/* Random crop with zero padding: conceptually pad src (c x h x w) by pad
 * zeros on every side, then cut an h x w window at an offset drawn
 * uniformly from [0, 2*pad] on each axis (y first, then x); the result is
 * written to dst (c x h x w, not overlapping src). pad 0 copies. Returns
 * the offsets through oy/ox when not NULL (each in [0, 2*pad]). */
void aug_random_crop(const float *src, float *dst, int c, uint32_t h, uint32_t w,
                     uint32_t pad, struct pd_rng *r, uint32_t *oy, uint32_t *ox);

/* Mirror a CHW image left-right in place. */
void aug_hflip(float *chw, int c, uint32_t h, uint32_t w);

/* Cutout (DeVries & Taylor 2017, as the DARTS evaluation uses it): one
 * square hole of side `length` zeroed on every channel in place. The
 * hole's centre (cy, cx) is drawn uniformly over the image (y first, then
 * x); it covers rows [cy - length/2, cy - length/2 + length) and the same
 * columns, clipped to the image, so a hole near an edge is partly outside
 * (for an even length exactly DARTS' clip(y - L/2) .. clip(y + L/2)).
 * length 0 does nothing and draws nothing. Returns the centre through
 * cy/cx when not NULL. Applied after normalization, the hole is the
 * training set's mean colour (as DARTS' Cutout after Normalize). */
void aug_cutout(float *chw, int c, uint32_t h, uint32_t w, uint32_t length, struct pd_rng *r,
                uint32_t *cy, uint32_t *cx);

/* --- batches ------------------------------------------------------------------ */

struct aug_spec {
    int channels;         /* 1 or 3: what the network takes */
    uint32_t height, width;
    uint32_t pad;         /* random crop padding; 0 = no crop */
    int hflip;            /* 1: flip each image with probability 1/2 */
    const float *mean;    /* channels values, or NULL for no normalization */
    const float *std;     /* channels values (> 0); with mean */
    uint32_t cutout;      /* cutout hole side (aug_cutout) after normalizing; 0 = none */
};

/* Check a spec: channels 1 or 3, 1 <= height, width <= AUG_MAX_OUT_SIDE,
 * pad <= AUG_MAX_PAD, cutout <= AUG_MAX_OUT_SIDE, std all finite and > 0. 0 or AUG_EARG with err. */
int aug_spec_check(const struct aug_spec *spec, char *err, size_t err_size);

/* Fill out (n x channels x height x width floats, caller-owned) with the
 * images images[idx[0..n)]: each resized to the spec, then cropped and
 * flipped (with the generator of slot i seeded from seed and i),
 * normalized as described at the top, then cut out (spec->cutout, the
 * same generator). For evaluation batches use a spec with pad 0, hflip 0
 * and cutout 0 (then seed does not matter). 0, or AUG_EARG (bad
 * spec, an index >= n_images, a bad image) / AUG_ENOMEM with err naming
 * the slot and image; out is then partly written. */
int aug_fill_batch(const struct aug_spec *spec, const struct aug_image *images,
                   size_t n_images, const size_t *idx, size_t n, uint64_t seed,
                   float *out, char *err, size_t err_size);

#endif
