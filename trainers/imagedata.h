/*
 * imagedata.h - image data sets for the trainers: an uploaded archive
 * (zip, tar, tar.gz: class folders or an IDX pair, lib/imageset.h) turned
 * into what a model family trains on, and uploaded images (one PNG/JPEG,
 * or an archive) turned into predictions of an image model.
 *
 * Loading (imagedata_load_file): one walk of the archive with
 * imageset_visit_file, so the images, their classes and the class order
 * are exactly those of the data set's profile ("classes", sorted by name,
 * digit runs as numbers); an image that does not decode is skipped and
 * counted (unreadable), as the profile counts it. Every image is resized
 * to channels x height x width (nn/augment.h's aug_resize: bilinear when
 * shrinking by at most 2x or growing, area averaging beyond; grey to RGB
 * repeats the grey value, RGB to grey is ITU-R 601 luma) and stored as
 * floats in [0, 1], CHW, one row of the matrix per image. The target size
 * defaults to the profile's most common size and the channels to 1 when
 * every image is grey (with or without alpha), else 3; finding those
 * defaults costs one more walk (imageset_profile_file) before the load.
 *
 * For a CNN (which augments and normalizes by itself), IMAGEDATA_RAW also
 * keeps every image as decoded (8-bit grey or RGB, HWC, its own size) in
 * raw[i], ready to wrap as a struct aug_image.
 *
 * Memory is bounded: the float matrix (n * C * H * W * 4 bytes) and the
 * raw pixels (sum of width * height * channels) must each stay under
 * max_bytes (default IMAGEDATA_DEFAULT_MAX_BYTES); past it the load stops
 * with an error naming the numbers.
 *
 * Prediction (imagedata_predict_*): bytes that start like a PNG or a JPEG
 * are one image, anything else is read as an archive of images (class
 * folders or flat: the folder names are ignored, IDX pairs too). Each
 * image is converted exactly as in training (same resize, same channel
 * conversion, the model's preprocessing) and answered through a callback
 * in archive order, either with its class probabilities or with the
 * decoder's message when it is not a readable image; an image whose size
 * differs from the model's is resized and flagged (resized = 1).
 *
 * Ownership: imagedata_load_file fills a struct the caller releases with
 * imagedata_free (zeroed; a zeroed one is fine to free). Runs on the
 * caller's thread; no global state.
 */
#ifndef PODIUM_TRAINERS_IMAGEDATA_H
#define PODIUM_TRAINERS_IMAGEDATA_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "lib/image.h"
#include "lib/imageset.h"
#include "trainers/modelfile.h"
#include "trainers/schema.h"

#define IMAGEDATA_DEFAULT_MAX_BYTES ((uint64_t)2 << 30)   /* 2 GiB */

enum imagedata_flags {
    IMAGEDATA_FEATURES = 1,  /* fill x (the float matrix) */
    IMAGEDATA_RAW = 2,       /* keep raw[] (decoded pixels, original size) */
    IMAGEDATA_NAMES = 4,     /* keep names[] */
};

enum imagedata_status {
    IMAGEDATA_OK = 0,
    IMAGEDATA_EARCHIVE = -1, /* the archive was refused (imageset's message) */
    IMAGEDATA_ELIMIT = -2,   /* over max_bytes */
    IMAGEDATA_EDATA = -3,    /* fewer than 2 classes, a bad size or channel count */
    IMAGEDATA_ENOMEM = -4,
    IMAGEDATA_EIMAGE = -5,   /* prediction: a single image that does not decode */
    IMAGEDATA_EMODEL = -6,   /* prediction: the model is not an image model, or failed */
};

struct imagedata_opts {
    int channels;            /* 1 or 3; 0 = the default above */
    unsigned height, width;  /* both or neither; 0 = the profile's most common size */
    unsigned flags;          /* enum imagedata_flags */
    uint64_t max_bytes;      /* 0 = IMAGEDATA_DEFAULT_MAX_BYTES */
    struct imageset_limits limits;   /* for the archive (zero = imageset's defaults) */
};

struct imagedata {
    size_t n;                /* readable images, archive order (IDX: file order) */
    int channels;            /* of x */
    unsigned height, width;
    size_t dim;              /* channels * height * width */
    float *x;                /* n * dim, CHW per row, in [0, 1]; NULL without FEATURES */
    struct image_pixels *raw;/* n decoded images; NULL without RAW */
    int *label;              /* n class indices into classes */
    int n_classes;
    char **classes;          /* the profile's class names, in its order */
    char **names;            /* n entry names; NULL without NAMES */
    uint64_t unreadable;     /* images skipped because they do not decode */
    cJSON *profile;          /* the archive's profile (lib/imageset.h) */
};

/* Load an archive. 0, or a negative enum imagedata_status with a message
 * (naming the entry, or the numbers over the limit). *out is zeroed on
 * failure. */
int imagedata_load_file(const char *path, const struct imagedata_opts *o,
                        struct imagedata *out, char *err, size_t errlen);
void imagedata_free(struct imagedata *d);

/* The default target size and channels of a profile (see above): 0, or -1
 * when the profile has no sizes. */
int imagedata_defaults(const cJSON *profile, int *channels, unsigned *height,
                       unsigned *width);

/* Convert one decoded image to channels x height x width floats in
 * [0, 1] (CHW) into dst. 0, or IMAGEDATA_EDATA / IMAGEDATA_ENOMEM. */
int imagedata_convert(const struct image_pixels *px, int channels, unsigned height,
                      unsigned width, float *dst, char *err, size_t errlen);

/* A frame (schema.h) over rows of a dense n x dim matrix, for an image
 * schema (dim == s->n_cols): the pixel columns as doubles. rows NULL =
 * 0..n-1. 0, or -1 (out of memory); free with schema_frame_free. */
int imagedata_frame(const float *x, size_t dim, const size_t *rows, size_t n,
                    struct schema_frame *f);

/* 1 when a decoded model file is an image model. */
int imagedata_is_image_model(const struct modelfile *m);

/* --- prediction --------------------------------------------------------- */

/* One image's answer; valid during the callback only. */
struct imagedata_pred {
    const char *name;        /* entry name, or the name given for a single image */
    const char *error;       /* NULL when predicted; else why not (not an image, damaged) */
    int cls;                 /* the most probable class (-1 with error) */
    const double *proba;     /* n_classes probabilities, model order (NULL with error) */
    int resized;             /* 1: its size or channels differed from the model's */
    uint32_t width, height;  /* as decoded (0 with error) */
};

/* 0 to go on; non-zero stops (the call returns IMAGEDATA_EMODEL with
 * "stopped" unless the callback wrote its own message). */
typedef int (*imagedata_pred_fn)(void *ctx, const struct imagedata_pred *p);

struct imagedata_predict_opts {
    struct imageset_limits limits;   /* for archives (zero = imageset's defaults) */
    struct image_limits image;       /* for each image, single or in an archive (zero =
                                        lib/image's defaults; overrides limits.image) */
    size_t max_images;               /* 0 = no limit; past it: IMAGEDATA_ELIMIT */
    int threads;                     /* for the family's predict; 0 = 1 */
};

/* Predict buf[0..len): one PNG/JPEG (named `name`) or an archive. A single
 * image that does not decode is IMAGEDATA_EIMAGE with its message (no
 * callback); an archive that imageset refuses is IMAGEDATA_EARCHIVE with
 * its message (callbacks may already have run: drop what they gave). */
int imagedata_predict_buffer(const struct modelfile *m, const void *buf, size_t len,
                             const char *name, const struct imagedata_predict_opts *o,
                             imagedata_pred_fn fn, void *ctx, char *err, size_t errlen);
/* The same over a file: a PNG/JPEG by its first bytes (read whole, at
 * most the per-entry limit of o->limits), or an archive read as a stream. */
int imagedata_predict_file(const struct modelfile *m, const char *path,
                           const struct imagedata_predict_opts *o, imagedata_pred_fn fn,
                           void *ctx, char *err, size_t errlen);

#endif
