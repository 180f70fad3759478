/* test_image.c - lib/image decodes every PNG colour type and bit depth and
 * JPEG grey/colour made here with libpng/libjpeg, reports their shape, and
 * rejects damaged, truncated and oversized files with a message instead of
 * crashing or printing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jpeglib.h>
#include <png.h>
#include <zlib.h>

#include "lib/image.h"

/* --- writers (test side) -------------------------------------------------- */

struct mem {
    unsigned char *p;
    size_t len, cap;
};

static void mem_put(struct mem *m, const void *p, size_t n)
{
    if (m->len + n > m->cap) {
        m->cap = (m->len + n) * 2 + 64;
        m->p = realloc(m->p, m->cap);
        assert_non_null(m->p);
    }
    memcpy(m->p + m->len, p, n);
    m->len += n;
}

static void png_w(png_structp png, png_bytep p, size_t n)
{
    mem_put(png_get_io_ptr(png), p, n);
}

static void png_flush_nop(png_structp png)
{
    (void)png;
}

/* A w x h PNG of the given colour type and depth with a gradient, written
 * with libpng's classic API. */
static struct mem make_png(uint32_t w, uint32_t h, int color, int depth, int interlace, int trns)
{
    struct mem m = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    assert_non_null(png);
    assert_non_null(info);
    if (setjmp(png_jmpbuf(png)))
        fail_msg("libpng failed while writing the test image");
    png_set_write_fn(png, &m, png_w, png_flush_nop);
    png_set_IHDR(png, info, w, h, depth, color,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (color == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[16];
        for (int i = 0; i < 16; i++)
            pal[i].red = pal[i].green = pal[i].blue = (png_byte)(i * 16);
        png_set_PLTE(png, info, pal, 16);
        if (trns) {
            png_byte t[2] = {0, 128};
            png_set_tRNS(png, info, t, 2, NULL);
        }
    }
    png_write_info(png, info);
    int channels = color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_PALETTE ? 1
                 : color == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
                 : color == PNG_COLOR_TYPE_RGB ? 3 : 4;
    size_t rowbytes = ((size_t)w * channels * depth + 7) / 8;
    unsigned char *row = calloc(1, rowbytes);
    assert_non_null(row);
    int passes = png_set_interlace_handling(png);
    for (int pass = 0; pass < passes; pass++)
        for (uint32_t y = 0; y < h; y++) {
            for (size_t i = 0; i < rowbytes; i++)
                row[i] = (unsigned char)((i * 7 + y * 3) &
                                         (depth < 8 ? 0x11 : color == PNG_COLOR_TYPE_PALETTE ? 0x0f : 0xff));
            png_write_row(png, row);
        }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(row);
    return m;
}

/* A w x h JPEG with 1 or 3 components. */
static struct mem make_jpeg(uint32_t w, uint32_t h, int comps, int progressive)
{
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&ci);
    unsigned char *out = NULL;
    unsigned long outlen = 0;
    jpeg_mem_dest(&ci, &out, &outlen);
    ci.image_width = w;
    ci.image_height = h;
    ci.input_components = comps;
    ci.in_color_space = comps == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 90, TRUE);
    if (progressive)
        jpeg_simple_progression(&ci);
    jpeg_start_compress(&ci, TRUE);
    unsigned char *row = malloc((size_t)w * comps);
    assert_non_null(row);
    while (ci.next_scanline < h) {
        for (size_t i = 0; i < (size_t)w * comps; i++)
            row[i] = (unsigned char)(i * 5 + ci.next_scanline * 9);
        JSAMPROW r[1] = {row};
        jpeg_write_scanlines(&ci, r, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    free(row);
    struct mem m = {0};
    mem_put(&m, out, outlen);
    free(out);
    return m;
}

/* Offset of the first chunk of type `type` in a PNG, or 0. */
static size_t png_chunk(const struct mem *m, const char *type)
{
    size_t off = 8;
    while (off + 12 <= m->len) {
        uint32_t len = (uint32_t)m->p[off] << 24 | (uint32_t)m->p[off + 1] << 16 |
                       (uint32_t)m->p[off + 2] << 8 | m->p[off + 3];
        if (memcmp(m->p + off + 4, type, 4) == 0)
            return off;
        off += 12 + (size_t)len;
    }
    return 0;
}

static uint32_t chunk_len(const struct mem *m, size_t off)
{
    return (uint32_t)m->p[off] << 24 | (uint32_t)m->p[off + 1] << 16 |
           (uint32_t)m->p[off + 2] << 8 | m->p[off + 3];
}

/* Replace the IDAT data with garbage; fix_crc: recompute its CRC so that
 * zlib (not the CRC check) has to catch it. */
static void garble_idat(struct mem *m, int fix_crc)
{
    size_t off = png_chunk(m, "IDAT");
    assert_true(off > 0);
    uint32_t len = chunk_len(m, off);
    for (uint32_t i = 0; i < len; i++)
        m->p[off + 8 + i] = (unsigned char)(0xA5 ^ (i * 31));
    if (fix_crc) {
        uLong crc = crc32(0, m->p + off + 4, 4 + len);
        unsigned char *c = m->p + off + 8 + len;
        c[0] = (unsigned char)(crc >> 24);
        c[1] = (unsigned char)(crc >> 16);
        c[2] = (unsigned char)(crc >> 8);
        c[3] = (unsigned char)crc;
    }
}

/* --- tests ------------------------------------------------------------------ */

static void sniff_by_magic(void **state)
{
    const unsigned char png[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    const unsigned char jpg[3] = {0xff, 0xd8, 0xff};
    assert_int_equal(image_sniff(png, 8), IMAGE_PNG);
    assert_int_equal(image_sniff(png, 7), IMAGE_UNKNOWN);
    assert_int_equal(image_sniff(jpg, 3), IMAGE_JPEG);
    assert_int_equal(image_sniff("GIF89a", 6), IMAGE_UNKNOWN);
    assert_int_equal(image_sniff(NULL, 0), IMAGE_UNKNOWN);
    assert_string_equal(image_format_name(IMAGE_PNG), "png");
    assert_string_equal(image_format_name(IMAGE_JPEG), "jpeg");
}

static void png_every_colour_type_and_depth(void **state)
{
    static const struct {
        int color, depth, trns, channels;
    } cases[] = {
        {PNG_COLOR_TYPE_GRAY, 1, 0, 1},      {PNG_COLOR_TYPE_GRAY, 4, 0, 1},
        {PNG_COLOR_TYPE_GRAY, 8, 0, 1},      {PNG_COLOR_TYPE_GRAY, 16, 0, 1},
        {PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0, 2}, {PNG_COLOR_TYPE_GRAY_ALPHA, 16, 0, 2},
        {PNG_COLOR_TYPE_RGB, 8, 0, 3},       {PNG_COLOR_TYPE_RGB, 16, 0, 3},
        {PNG_COLOR_TYPE_RGBA, 8, 0, 4},      {PNG_COLOR_TYPE_RGBA, 16, 0, 4},
        {PNG_COLOR_TYPE_PALETTE, 4, 0, 3},   {PNG_COLOR_TYPE_PALETTE, 8, 1, 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int interlace = 0; interlace <= 1; interlace++) {
            struct mem m = make_png(13, 7, cases[i].color, cases[i].depth, interlace,
                                    cases[i].trns);
            struct image_info info;
            char msg[256];
            int rc = image_probe(m.p, m.len, NULL, &info, msg, sizeof msg);
            if (rc != 0)
                fail_msg("case %zu: %s", i, msg);
            assert_int_equal(info.format, IMAGE_PNG);
            assert_int_equal(info.width, 13);
            assert_int_equal(info.height, 7);
            assert_int_equal(info.channels, cases[i].channels);
            assert_int_equal(info.bit_depth, cases[i].depth);
            free(m.p);
        }
    }
}

static void jpeg_grey_colour_progressive(void **state)
{
    for (int comps = 1; comps <= 3; comps += 2) {
        for (int prog = 0; prog <= 1; prog++) {
            struct mem m = make_jpeg(33, 17, comps, prog);
            struct image_info info;
            char msg[256];
            assert_int_equal(image_probe(m.p, m.len, NULL, &info, msg, sizeof msg), 0);
            assert_int_equal(info.format, IMAGE_JPEG);
            assert_int_equal(info.width, 33);
            assert_int_equal(info.height, 17);
            assert_int_equal(info.channels, comps);
            assert_int_equal(info.bit_depth, 8);
            free(m.p);
        }
    }
}

static void png_garbage_idat_is_caught(void **state)
{
    for (int fix_crc = 0; fix_crc <= 1; fix_crc++) {
        struct mem m = make_png(40, 40, PNG_COLOR_TYPE_RGB, 8, 0, 0);
        garble_idat(&m, fix_crc);
        struct image_info info;
        char msg[256];
        int rc = image_probe(m.p, m.len, NULL, &info, msg, sizeof msg);
        assert_int_equal(rc, IMAGE_ECORRUPT);
        assert_non_null(strstr(msg, "png:"));
        assert_int_equal(info.width, 40);   /* the header was fine */
        free(m.p);
    }
}

static void png_truncated_and_bad_crc(void **state)
{
    struct mem m = make_png(64, 64, PNG_COLOR_TYPE_GRAY, 8, 0, 0);
    char msg[256];
    struct image_info info;
    /* every cut short of the whole file fails, IEND included */
    for (size_t cut = 0; cut < m.len; cut += (cut < 64 ? 1 : 7)) {
        int rc = image_probe(m.p, cut, NULL, &info, msg, sizeof msg);
        if (rc == 0)
            fail_msg("a PNG cut to %zu of %zu bytes was accepted", cut, m.len);
    }
    assert_int_equal(image_probe(m.p, m.len - 1, NULL, &info, msg, sizeof msg), IMAGE_ECORRUPT);
    /* a flipped bit in IHDR: bad CRC of a critical chunk */
    m.p[16 + 3] ^= 1;
    assert_int_equal(image_probe(m.p, m.len, NULL, &info, msg, sizeof msg), IMAGE_ECORRUPT);
    free(m.p);
}

static void jpeg_truncated_and_garbled(void **state)
{
    struct mem m = make_jpeg(64, 48, 3, 0);
    char msg[256];
    struct image_info info;
    /* half a JPEG: libjpeg only warns ("premature end"); we fail it */
    assert_int_equal(image_probe(m.p, m.len / 2, NULL, &info, msg, sizeof msg), IMAGE_ECORRUPT);
    assert_non_null(strstr(msg, "jpeg:"));
    assert_int_equal(image_probe(m.p, 3, NULL, &info, msg, sizeof msg), IMAGE_ECORRUPT);
    /* garbage after the headers */
    struct mem g = {0};
    mem_put(&g, m.p, m.len);
    for (size_t i = g.len / 2; i < g.len - 2; i++)
        g.p[i] = (unsigned char)(i * 13);
    assert_int_equal(image_probe(g.p, g.len, NULL, &info, msg, sizeof msg), IMAGE_ECORRUPT);
    /* every prefix is handled without crashing or printing */
    for (size_t cut = 0; cut < m.len; cut += 5)
        assert_int_not_equal(image_probe(m.p, cut, NULL, &info, msg, sizeof msg), 0);
    free(m.p);
    free(g.p);
}

static void too_big_fails_before_decoding(void **state)
{
    struct image_limits lim = {.max_pixels = 100};
    struct image_info info;
    char msg[256];
    struct mem m = make_png(20, 20, PNG_COLOR_TYPE_GRAY, 8, 0, 0);
    assert_int_equal(image_probe(m.p, m.len, &lim, &info, msg, sizeof msg), IMAGE_ETOOBIG);
    assert_int_equal(info.width, 20);
    free(m.p);
    m = make_jpeg(20, 20, 1, 0);
    assert_int_equal(image_probe(m.p, m.len, &lim, &info, msg, sizeof msg), IMAGE_ETOOBIG);
    free(m.p);

    /* A PNG header claiming 60000 x 60000 (3.6 Gpx) with a tiny body: the
     * default limit stops it without any big allocation. */
    m = make_png(1, 1, PNG_COLOR_TYPE_GRAY, 8, 0, 0);
    unsigned char *ihdr = m.p + 16;
    ihdr[0] = 0; ihdr[1] = 0; ihdr[2] = 0xEA; ihdr[3] = 0x60;
    ihdr[4] = 0; ihdr[5] = 0; ihdr[6] = 0xEA; ihdr[7] = 0x60;
    uLong crc = crc32(0, m.p + 12, 17);
    m.p[29] = (unsigned char)(crc >> 24);
    m.p[30] = (unsigned char)(crc >> 16);
    m.p[31] = (unsigned char)(crc >> 8);
    m.p[32] = (unsigned char)crc;
    assert_int_equal(image_probe(m.p, m.len, NULL, &info, msg, sizeof msg), IMAGE_ETOOBIG);
    assert_int_equal(info.width, 60000);
    free(m.p);
}

static void not_an_image(void **state)
{
    char msg[64];
    struct image_info info;
    assert_int_equal(image_probe("hello world", 11, NULL, &info, msg, sizeof msg), IMAGE_EFORMAT);
    assert_int_equal(info.format, IMAGE_UNKNOWN);
    assert_int_equal(image_probe(NULL, 0, NULL, NULL, NULL, 0), IMAGE_EFORMAT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sniff_by_magic),
        cmocka_unit_test(png_every_colour_type_and_depth),
        cmocka_unit_test(jpeg_grey_colour_progressive),
        cmocka_unit_test(png_garbage_idat_is_caught),
        cmocka_unit_test(png_truncated_and_bad_crc),
        cmocka_unit_test(jpeg_truncated_and_garbled),
        cmocka_unit_test(too_big_fails_before_decoding),
        cmocka_unit_test(not_an_image),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
