/* test_image_decode.c - lib/image's image_decode gives the exact 8-bit
 * pixels of PNGs of every colour type (grey of depth 1..16, grey+alpha,
 * RGB, RGBA, palette with and without transparency, interlaced or not),
 * JPEG grey/RGB/CMYK within JPEG's loss, agrees with image_probe on what
 * the file is, and refuses damaged, non-image and oversized input with a
 * message and no pixels. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <png.h>

#include "lib/image.h"
#include "tests/support/imgfix.h"

enum { W = 7, H = 5 };

static struct image_pixels decode_ok(const struct imgfix_buf *b, struct image_info *info)
{
    struct image_pixels px;
    char msg[256];
    int rc = image_decode(b->p, b->len, NULL, info, &px, msg, sizeof msg);
    if (rc != 0) fail_msg("image_decode: %d %s", rc, msg);
    /* the probe says the same about the file */
    struct image_info pi;
    assert_int_equal(image_probe(b->p, b->len, NULL, &pi, msg, sizeof msg), 0);
    assert_int_equal(pi.format, info->format);
    assert_int_equal(pi.channels, info->channels);
    assert_int_equal(pi.width, px.width);
    assert_int_equal(pi.height, px.height);
    return px;
}

static void png_grey_depths(void **state)
{
    (void)state;
    static const int depths[] = {1, 2, 4, 8, 16};
    for (size_t d = 0; d < sizeof depths / sizeof depths[0]; d++) {
        int depth = depths[d];
        uint16_t s[W * H];
        unsigned max = (1u << depth) - 1;
        for (int i = 0; i < W * H; i++) s[i] = (uint16_t)((unsigned)(i * 37 + 11) % (max + 1));
        for (int il = 0; il < 2; il++) {
            struct imgfix_buf b = imgfix_png(W, H, PNG_COLOR_TYPE_GRAY, depth, il, s, NULL, 0, NULL, 0);
            struct image_info info;
            struct image_pixels px = decode_ok(&b, &info);
            assert_int_equal(px.channels, 1);
            assert_int_equal(px.width, W);
            assert_int_equal(px.height, H);
            assert_int_equal(info.bit_depth, depth);
            for (int i = 0; i < W * H; i++) {
                /* scaled to 0..255 with rounding */
                unsigned want = (unsigned)((s[i] * 255u * 2 + max) / (2 * max));
                if (px.data[i] != want)
                    fail_msg("depth %d interlace %d pixel %d: %u, want %u", depth, il, i, px.data[i], want);
            }
            image_pixels_free(&px);
            assert_null(px.data);
            free(b.p);
        }
    }
}

static void png_colour_types(void **state)
{
    (void)state;
    uint16_t s[W * H * 4];
    for (int i = 0; i < W * H * 4; i++) s[i] = (uint16_t)((i * 53 + 7) & 0xff);
    /* grey + alpha: alpha dropped */
    struct imgfix_buf b = imgfix_png(W, H, PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0, s, NULL, 0, NULL, 0);
    struct image_info info;
    struct image_pixels px = decode_ok(&b, &info);
    assert_int_equal(info.channels, 2);
    assert_int_equal(px.channels, 1);
    for (int i = 0; i < W * H; i++) assert_int_equal(px.data[i], s[2 * i]);
    image_pixels_free(&px);
    free(b.p);
    /* RGB, exact */
    b = imgfix_png(W, H, PNG_COLOR_TYPE_RGB, 8, 1, s, NULL, 0, NULL, 0);
    px = decode_ok(&b, &info);
    assert_int_equal(px.channels, 3);
    for (int i = 0; i < W * H * 3; i++) assert_int_equal(px.data[i], s[i]);
    image_pixels_free(&px);
    free(b.p);
    /* RGBA: alpha dropped */
    b = imgfix_png(W, H, PNG_COLOR_TYPE_RGB_ALPHA, 8, 0, s, NULL, 0, NULL, 0);
    px = decode_ok(&b, &info);
    assert_int_equal(info.channels, 4);
    assert_int_equal(px.channels, 3);
    for (int i = 0; i < W * H; i++)
        for (int c = 0; c < 3; c++) assert_int_equal(px.data[3 * i + c], s[4 * i + c]);
    image_pixels_free(&px);
    free(b.p);
    /* RGB 16-bit: the high byte, rounded */
    uint16_t s16[W * H * 3];
    for (int i = 0; i < W * H * 3; i++) s16[i] = (uint16_t)(i * 1999 + 3);
    b = imgfix_png(W, H, PNG_COLOR_TYPE_RGB, 16, 0, s16, NULL, 0, NULL, 0);
    px = decode_ok(&b, &info);
    for (int i = 0; i < W * H * 3; i++) {
        unsigned want = (s16[i] * 255u + 32767u) / 65535u;
        assert_true(abs((int)px.data[i] - (int)want) <= 1);
    }
    image_pixels_free(&px);
    free(b.p);
}

static void png_palette(void **state)
{
    (void)state;
    uint8_t pal[4 * 3] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30};
    uint8_t trns[2] = {0, 128};
    uint16_t idx[W * H];
    for (int i = 0; i < W * H; i++) idx[i] = (uint16_t)(i % 4);
    for (int t = 0; t < 2; t++) {
        for (int depth = 2; depth <= 8; depth *= 2) {
            struct imgfix_buf b = imgfix_png(W, H, PNG_COLOR_TYPE_PALETTE, depth, 0, idx, pal, 4,
                                             t ? trns : NULL, t ? 2 : 0);
            struct image_info info;
            struct image_pixels px = decode_ok(&b, &info);
            assert_int_equal(info.channels, t ? 4 : 3);
            assert_int_equal(px.channels, 3);
            for (int i = 0; i < W * H; i++)
                assert_memory_equal(px.data + 3 * i, pal + 3 * idx[i], 3);
            image_pixels_free(&px);
            free(b.p);
        }
    }
}

static void jpeg_grey_rgb_cmyk(void **state)
{
    (void)state;
    enum { JW = 16, JH = 16 };
    uint8_t grey[JW * JH], rgb[JW * JH * 3], cmyk[JW * JH * 4];
    for (int i = 0; i < JW * JH; i++) {
        grey[i] = 77;
        rgb[3 * i] = 200, rgb[3 * i + 1] = 40, rgb[3 * i + 2] = 90;
        /* red in CMYK (C=0 M=255 Y=255 K=0), stored inverted as Adobe's files are */
        cmyk[4 * i] = 255, cmyk[4 * i + 1] = 0, cmyk[4 * i + 2] = 0, cmyk[4 * i + 3] = 255;
    }
    struct imgfix_buf b = imgfix_jpeg(JW, JH, 1, grey);
    struct image_info info;
    struct image_pixels px = decode_ok(&b, &info);
    assert_int_equal(info.format, IMAGE_JPEG);
    assert_int_equal(px.channels, 1);
    for (int i = 0; i < JW * JH; i++) assert_true(abs(px.data[i] - 77) <= 2);
    image_pixels_free(&px);
    free(b.p);

    b = imgfix_jpeg(JW, JH, 3, rgb);
    px = decode_ok(&b, &info);
    assert_int_equal(px.channels, 3);
    for (int i = 0; i < JW * JH; i++) {
        assert_true(abs(px.data[3 * i] - 200) <= 4);
        assert_true(abs(px.data[3 * i + 1] - 40) <= 4);
        assert_true(abs(px.data[3 * i + 2] - 90) <= 4);
    }
    image_pixels_free(&px);
    free(b.p);

    b = imgfix_jpeg(JW, JH, 4, cmyk);
    px = decode_ok(&b, &info);
    assert_int_equal(info.channels, 4);
    assert_int_equal(px.channels, 3);
    for (int i = 0; i < JW * JH; i++) {
        assert_true(px.data[3 * i] >= 250);
        assert_true(px.data[3 * i + 1] <= 5);
        assert_true(px.data[3 * i + 2] <= 5);
    }
    image_pixels_free(&px);
    free(b.p);
}

static void damaged_and_foreign_input(void **state)
{
    (void)state;
    uint16_t s[W * H * 3];
    for (int i = 0; i < W * H * 3; i++) s[i] = (uint16_t)(i & 0xff);
    struct imgfix_buf b = imgfix_png(W, H, PNG_COLOR_TYPE_RGB, 8, 0, s, NULL, 0, NULL, 0);
    struct image_pixels px;
    struct image_info info;
    char msg[256];
    /* truncated anywhere: refused, no pixels left behind */
    for (size_t cut = 1; cut < b.len; cut += 7) {
        memset(&px, 0xab, sizeof px);
        int rc = image_decode(b.p, cut, NULL, &info, &px, msg, sizeof msg);
        assert_true(rc < 0);
        assert_null(px.data);
        assert_true(msg[0] != '\0');
    }
    /* a flipped byte in the image data: CRC error */
    b.p[b.len - 20] ^= 0x5a;
    assert_int_equal(image_decode(b.p, b.len, NULL, &info, &px, msg, sizeof msg), IMAGE_ECORRUPT);
    assert_null(px.data);
    free(b.p);

    const char *csv = "a,b\n1,2\n";
    assert_int_equal(image_decode(csv, strlen(csv), NULL, &info, &px, msg, sizeof msg), IMAGE_EFORMAT);
    assert_string_equal(msg, "not a PNG or JPEG file");
    assert_int_equal(image_decode(NULL, 0, NULL, NULL, &px, msg, sizeof msg), IMAGE_EFORMAT);

    /* a JPEG cut short is corrupt (libjpeg would pad it with grey) */
    uint8_t rgb[32 * 32 * 3];
    for (size_t i = 0; i < sizeof rgb; i++) rgb[i] = (uint8_t)(i * 13);
    b = imgfix_jpeg(32, 32, 3, rgb);
    assert_int_equal(image_decode(b.p, b.len / 2, NULL, &info, &px, msg, sizeof msg), IMAGE_ECORRUPT);
    assert_null(px.data);

    /* over the pixel limit: refused before decoding */
    struct image_limits lim = {.max_pixels = 100};
    assert_int_equal(image_decode(b.p, b.len, &lim, &info, &px, msg, sizeof msg), IMAGE_ETOOBIG);
    assert_int_equal(info.width, 32);
    assert_null(px.data);
    free(b.p);
    image_pixels_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(png_grey_depths),
        cmocka_unit_test(png_colour_types),
        cmocka_unit_test(png_palette),
        cmocka_unit_test(jpeg_grey_rgb_cmyk),
        cmocka_unit_test(damaged_and_foreign_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
