/* test_image_encode.c - lib/image's thumbnail helpers: image_encode_png
 * writes grey and RGB PNGs that image_decode (and image_probe) read back
 * to the very same pixels, at sizes from 1x1 up; image_resize_area keeps
 * an image that fits as it is, averages exact blocks exactly, keeps the
 * aspect ratio with each side at least 1 px, and refuses what it cannot
 * take. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/image.h"

static struct image_pixels make(uint32_t w, uint32_t h, int ch, uint32_t seed)
{
    struct image_pixels px = {malloc((size_t)w * h * (size_t)ch), w, h, ch};
    assert_non_null(px.data);
    for (size_t i = 0; i < (size_t)w * h * (size_t)ch; i++) {
        seed = seed * 1103515245u + 12345u;
        px.data[i] = (uint8_t)(seed >> 16);
    }
    return px;
}

static void round_trip(uint32_t w, uint32_t h, int ch)
{
    struct image_pixels in = make(w, h, ch, w * 31 + h * 7 + (uint32_t)ch);
    unsigned char *png;
    size_t len;
    char msg[256];
    int rc = image_encode_png(&in, &png, &len, msg, sizeof msg);
    if (rc != 0) fail_msg("image_encode_png %ux%ux%d: %d %s", w, h, ch, rc, msg);
    assert_int_equal(image_sniff(png, len), IMAGE_PNG);
    struct image_info info;
    struct image_pixels out;
    rc = image_decode(png, len, NULL, &info, &out, msg, sizeof msg);
    if (rc != 0) fail_msg("image_decode %ux%ux%d: %d %s", w, h, ch, rc, msg);
    assert_int_equal(info.format, IMAGE_PNG);
    assert_int_equal(info.channels, ch);
    assert_int_equal(info.bit_depth, 8);
    assert_int_equal(out.width, w);
    assert_int_equal(out.height, h);
    assert_int_equal(out.channels, ch);
    assert_memory_equal(out.data, in.data, (size_t)w * h * (size_t)ch);
    assert_int_equal(image_probe(png, len, NULL, &info, msg, sizeof msg), 0);
    image_pixels_free(&out);
    image_pixels_free(&in);
    free(png);
}

static void png_round_trip_grey(void **state)
{
    round_trip(1, 1, 1);
    round_trip(8, 8, 1);
    round_trip(7, 5, 1);
    round_trip(300, 2, 1);
}

static void png_round_trip_rgb(void **state)
{
    round_trip(1, 1, 3);
    round_trip(8, 8, 3);
    round_trip(13, 3, 3);
    round_trip(128, 96, 3);
}

static void png_refuses_bad_pixels(void **state)
{
    uint8_t data[12] = {0};
    struct image_pixels bad[] = {
        {data, 2, 2, 2},      /* grey+alpha is not an output of image_decode */
        {data, 2, 2, 4},
        {NULL, 2, 2, 1},
        {data, 0, 2, 1},
        {data, 2, 0, 3},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned char *png = (unsigned char *)1;
        size_t len = 99;
        char msg[128];
        assert_int_equal(image_encode_png(&bad[i], &png, &len, msg, sizeof msg), IMAGE_ECORRUPT);
        assert_null(png);
        assert_int_equal(len, 0);
        assert_true(msg[0] != '\0');
    }
    unsigned char *png;
    size_t len;
    assert_int_equal(image_encode_png(NULL, &png, &len, NULL, 0), IMAGE_ECORRUPT);
}

static void resize_keeps_what_fits(void **state)
{
    struct image_pixels in = make(128, 40, 3, 5), out;
    assert_int_equal(image_resize_area(&in, 128, &out), 0);
    assert_int_equal(out.width, 128);
    assert_int_equal(out.height, 40);
    assert_int_equal(out.channels, 3);
    assert_memory_equal(out.data, in.data, 128 * 40 * 3);
    assert_true(out.data != in.data);
    image_pixels_free(&out);
    assert_int_equal(image_resize_area(&in, 0, &out), 0);   /* no limit */
    assert_int_equal(out.width, 128);
    image_pixels_free(&out);
    image_pixels_free(&in);
}

/* Halving: each output pixel is the rounded mean of its 2x2 block. */
static void resize_averages_blocks(void **state)
{
    for (int ch = 1; ch <= 3; ch += 2) {
        struct image_pixels in = make(256, 100, ch, 11), out;
        assert_int_equal(image_resize_area(&in, 128, &out), 0);
        assert_int_equal(out.width, 128);
        assert_int_equal(out.height, 50);
        assert_int_equal(out.channels, ch);
        for (uint32_t y = 0; y < 50; y++)
            for (uint32_t x = 0; x < 128; x++)
                for (int c = 0; c < ch; c++) {
                    unsigned sum = 0;
                    for (int dy = 0; dy < 2; dy++)
                        for (int dx = 0; dx < 2; dx++)
                            sum += in.data[((2 * y + (uint32_t)dy) * 256 + 2 * x + (uint32_t)dx) * (uint32_t)ch + (uint32_t)c];
                    assert_int_equal(out.data[(y * 128 + x) * (uint32_t)ch + (uint32_t)c], (sum + 2) / 4);
                }
        image_pixels_free(&out);
        image_pixels_free(&in);
    }
}

/* Odd shapes: the longer side becomes max_side, the shorter one is
 * rounded but never 0, and a flat colour stays that colour. */
static void resize_keeps_the_aspect(void **state)
{
    static const struct { uint32_t w, h, ow, oh; } cases[] = {
        {300, 7, 128, 3}, {7, 300, 3, 128}, {1000, 1, 128, 1}, {129, 129, 128, 128},
        {200, 150, 128, 96}, {131, 64, 128, 63},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct image_pixels in = make(cases[i].w, cases[i].h, 3, 1), out;
        memset(in.data, 77, (size_t)cases[i].w * cases[i].h * 3);
        assert_int_equal(image_resize_area(&in, 128, &out), 0);
        assert_int_equal(out.width, cases[i].ow);
        assert_int_equal(out.height, cases[i].oh);
        for (size_t j = 0; j < (size_t)out.width * out.height * 3; j++)
            assert_int_equal(out.data[j], 77);
        image_pixels_free(&out);
        image_pixels_free(&in);
    }
}

static void resize_refuses_bad_pixels(void **state)
{
    uint8_t data[8] = {0};
    struct image_pixels bad = {data, 2, 2, 2}, out;
    assert_int_equal(image_resize_area(&bad, 1, &out), IMAGE_ECORRUPT);
    assert_null(out.data);
    assert_int_equal(image_resize_area(NULL, 1, &out), IMAGE_ECORRUPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(png_round_trip_grey),
        cmocka_unit_test(png_round_trip_rgb),
        cmocka_unit_test(png_refuses_bad_pixels),
        cmocka_unit_test(resize_keeps_what_fits),
        cmocka_unit_test(resize_averages_blocks),
        cmocka_unit_test(resize_keeps_the_aspect),
        cmocka_unit_test(resize_refuses_bad_pixels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
