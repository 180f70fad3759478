/*
 * image.h - check one PNG or JPEG held in memory: what it is (format,
 * width, height, channels, bit depth) and whether it decodes; or decode it
 * into 8-bit grey or RGB pixels (image_decode).
 *
 * Who uses it: lib/imageset, once per image entry of an uploaded archive
 * (image_probe when profiling, image_decode when a caller visits the
 * pixels); trainers/imagedata for a single uploaded image.
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
 * Decoding (image_decode) goes through the same code with the same
 * strictness and limits, and keeps the whole image (width * height *
 * channels bytes, at most 3 * max_pixels) converted to 8 bits:
 *  - grey (any depth, with or without alpha) -> 1 channel; low depths are
 *    expanded to 0..255 (a 1-bit 1 is 255), 16-bit samples scaled with
 *    rounding (libpng's png_set_scale_16);
 *  - RGB, RGBA, palette (with or without tRNS) -> 3 channels RGB;
 *  - alpha and tRNS transparency are dropped, not composited (as PIL's
 *    convert("RGB") / convert("L"));
 *  - JPEG grey -> 1; YCbCr/RGB -> 3 (libjpeg's conversion); CMYK/YCCK ->
 *    3, converted as R = (255 - C)(255 - K)/255 (samples taken as
 *    inverted when the file has Adobe's APP14 marker, as Photoshop writes
 *    them); any other colour space is refused (IMAGE_ECORRUPT).
 * image_info is filled as image_probe fills it (the stored image's
 * channels, e.g. 4 for RGBA), so a caller can count both the same way.
 *
 * image_resize_area and image_encode_png make thumbnails: an area-average
 * downscale and a PNG writer (libpng), for pixels image_decode gave.
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

/* Decoded pixels: height rows of width * channels bytes, HWC, rows packed
 * (no padding). channels is 1 (grey) or 3 (RGB). Owned by the caller,
 * released with image_pixels_free. */
struct image_pixels {
    uint8_t *data;
    uint32_t width, height;
    int channels;
};

/* Decode buf[0..len) into *out (see above). 0 with *out filled, or a
 * negative enum image_status with msg as image_probe and *out zeroed.
 * info may be NULL. */
int image_decode(const void *buf, size_t len, const struct image_limits *lim,
                 struct image_info *info, struct image_pixels *out, char *msg, size_t msg_size);

/* Free the pixels and zero *px; NULL and a zeroed struct are fine. */
void image_pixels_free(struct image_pixels *px);

/* --- thumbnails ------------------------------------------------------------ */

/* A copy of in no larger than max_side on either side, keeping the aspect
 * ratio (each side at least 1 px): the longer side becomes max_side (the
 * shorter one is rounded), and each output pixel is the rounded mean of
 * the block of input pixels it covers (block edges at floor(i * in / out),
 * so every input pixel counts once). An image that already fits is copied
 * as it is. in must hold 1 or 3 channels; max_side 0 means no limit.
 * 0 with *out filled (the caller image_pixels_frees it), or
 * IMAGE_ECORRUPT (a bad input) / IMAGE_ENOMEM with *out zeroed. */
int image_resize_area(const struct image_pixels *in, uint32_t max_side, struct image_pixels *out);

/* Encode pixels (1 channel: 8-bit grey; 3: 8-bit RGB) as a PNG in memory,
 * not interlaced, zlib's default level. 0 with *out (malloc'd; the caller
 * frees it) and *out_len, or IMAGE_ECORRUPT (bad dimensions or channels) /
 * IMAGE_ENOMEM with *out NULL and a message in msg (when not NULL).
 * image_decode reads the result back to the same pixels. */
int image_encode_png(const struct image_pixels *px, unsigned char **out, size_t *out_len,
                     char *msg, size_t msg_size);

#endif
