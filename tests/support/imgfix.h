/*
 * imgfix.h - image fixtures made in memory for the tests: PNG and JPEG
 * files with given pixels (libpng / libjpeg writers), and zip / tar /
 * tar.gz archives of named entries (libarchive), written to memory or to a
 * file. Failures abort the calling test (cmocka's fail_msg).
 */
#ifndef PODIUM_TESTS_IMGFIX_H
#define PODIUM_TESTS_IMGFIX_H

#include <stddef.h>
#include <stdint.h>

struct imgfix_buf {
    unsigned char *p;     /* malloc'd; free() it */
    size_t len;
};

/* A PNG of w x h pixels. samples: h rows of w * channels values (channels
 * from the colour type: grey 1, grey+alpha 2, RGB 3, RGBA 4, palette 1
 * index), each 0..(1<<depth)-1, stored as uint16. For a palette image,
 * palette holds n_palette RGB triples and trns (may be NULL) n_trns
 * alphas. */
struct imgfix_buf imgfix_png(uint32_t w, uint32_t h, int color_type, int depth, int interlace,
                             const uint16_t *samples, const uint8_t *palette, int n_palette,
                             const uint8_t *trns, int n_trns);

/* A baseline JPEG of w x h pixels, quality 95: comps 1 (grey), 3 (RGB) or
 * 4 (CMYK, written with libjpeg's Adobe marker). pixels: h rows of
 * w * comps bytes. */
struct imgfix_buf imgfix_jpeg(uint32_t w, uint32_t h, int comps, const uint8_t *pixels);

/* An archive: "zip", "tar" or "tar.gz"; n entries of name[i] with
 * data[i][0..len[i]). */
struct imgfix_buf imgfix_archive(const char *format, size_t n, const char *const *names,
                                 const struct imgfix_buf *data);

/* Write a buffer to a file. */
void imgfix_write(const char *path, const struct imgfix_buf *b);

#endif
