/*
 * image.h - check one PNG or JPEG held in memory: what it is (format,
 * width, height, channels, bit depth) and whether it decodes.
 *
 * Who uses it: lib/imageset, once per image entry of an uploaded archive.
 * The bytes come from a user and are hostile, so image_probe decodes the
 * WHOLE image (every row, every pass, the PNG's trailing chunks) so that a
 * damaged file is caught here rather than in a trainer; it never calls
 * exit() or abort() (libpng and libjpeg errors longjmp back into
 * image_probe) and never holds more than one decoded row (plus what
 * libjpeg needs for a progressive image, bounded by max_decoder_bytes).
 *
 * Strictness: a PNG fails on any libpng error (bad CRC of a critical chunk,
 * bad zlib data, too little image data, missing IEND); a JPEG fails on any
 * libjpeg error and also on any libjpeg warning about corrupt data
 * ("premature end of data segment" and the like, where libjpeg would fill
 * the rest of the image with grey). Images larger than max_pixels or with a
 * side longer than max_side fail before their pixels are decoded.
 *
 * Channels are those of the decoded image: PNG grey 1, grey+alpha 2,
 * RGB 3, RGBA 4, palette 3 (4 when it has a tRNS chunk); JPEG grey 1,
 * YCbCr/RGB 3, CMYK/YCCK 4. bit_depth is 8 or 16 for PNG (palette and
 * low-depth grey report their stored depth: 1, 2, 4 or 8), 8 for JPEG.
 *
 * No global state; safe to call from several threads at once.
 */
#ifndef PODIUM_LIB_IMAGE_H
#define PODIUM_LIB_IMAGE_H

#include <stddef.h>
#include <stdint.h>

enum image_format {
    IMAGE_UNKNOWN = 0,
    IMAGE_PNG = 1,
    IMAGE_JPEG = 2,
};

enum image_status {
    IMAGE_OK = 0,
    IMAGE_EFORMAT = -1,       /* neither PNG nor JPEG (by magic bytes) */
    IMAGE_ECORRUPT = -2,      /* the decoder rejected the data */
    IMAGE_ETOOBIG = -3,       /* dimensions over the limits */
    IMAGE_ENOMEM = -4,        /* out of memory */
};

#define IMAGE_DEFAULT_MAX_PIXELS        (64ull << 20)   /* 64 megapixels */
#define IMAGE_DEFAULT_MAX_SIDE          65535u
#define IMAGE_DEFAULT_MAX_DECODER_BYTES (512ull << 20)  /* libjpeg's own memory */

/* Limits; a zero field means its default. */
struct image_limits {
    uint64_t max_pixels;
    uint32_t max_side;
    uint64_t max_decoder_bytes;
};

struct image_info {
    int format;               /* enum image_format */
    uint32_t width, height;
    int channels;             /* 1..4, see above */
    int bit_depth;
};

/* The format by magic bytes: PNG is 89 50 4E 47 0D 0A 1A 0A, JPEG starts
 * FF D8 FF. Needs at most the first 8 bytes; IMAGE_UNKNOWN otherwise. */
int image_sniff(const void *buf, size_t len);

/* A static name: "png", "jpeg" or "unknown". */
const char *image_format_name(int format);

/* Decode buf[0..len) fully. 0 and *info filled, or a negative enum
 * image_status with a message in msg[0..msg_size) (if msg is not NULL).
 * lim may be NULL for the defaults. On failure *info holds whatever the
 * header gave (zeros if nothing). */
int image_probe(const void *buf, size_t len, const struct image_limits *lim,
                struct image_info *info, char *msg, size_t msg_size);

#endif
