/*
 * imgfix.c - see imgfix.h. Test-side writers only: libpng and libjpeg's
 * classic write APIs into a growing memory buffer, libarchive's writer
 * into memory.
 */
#include "tests/support/imgfix.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <jpeglib.h>
#include <png.h>

static void buf_put(struct imgfix_buf *b, const void *p, size_t n)
{
    unsigned char *q = realloc(b->p, b->len + n + 1);
    if (q == NULL) fail_msg("imgfix: out of memory");
    b->p = q;
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void png_w(png_structp png, png_bytep p, size_t n)
{
    buf_put(png_get_io_ptr(png), p, n);
}

static void png_flush_nop(png_structp png)
{
    (void)png;
}

struct imgfix_buf imgfix_png(uint32_t w, uint32_t h, int color_type, int depth, int interlace,
                             const uint16_t *samples, const uint8_t *palette, int n_palette,
                             const uint8_t *trns, int n_trns)
{
    struct imgfix_buf b = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (!png || !info) fail_msg("imgfix: libpng");
    if (setjmp(png_jmpbuf(png))) fail_msg("imgfix: libpng failed while writing");
    png_set_write_fn(png, &b, png_w, png_flush_nop);
    png_set_IHDR(png, info, w, h, depth, color_type,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[256];
        for (int i = 0; i < n_palette && i < 256; i++) {
            pal[i].red = palette[3 * i];
            pal[i].green = palette[3 * i + 1];
            pal[i].blue = palette[3 * i + 2];
        }
        png_set_PLTE(png, info, pal, n_palette);
        if (trns && n_trns > 0) png_set_tRNS(png, info, trns, n_trns, NULL);
    }
    png_write_info(png, info);
    int ch = color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_PALETTE ? 1
           : color_type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
           : color_type == PNG_COLOR_TYPE_RGB ? 3 : 4;
    size_t per_row = (size_t)w * (size_t)ch;
    size_t rowbytes = (per_row * (size_t)depth + 7) / 8;
    unsigned char *row = calloc(1, rowbytes + 1);
    if (row == NULL) fail_msg("imgfix: out of memory");
    int passes = png_set_interlace_handling(png);
    for (int pass = 0; pass < passes; pass++) {
        for (uint32_t y = 0; y < h; y++) {
            const uint16_t *s = samples + (size_t)y * per_row;
            memset(row, 0, rowbytes);
            for (size_t i = 0; i < per_row; i++) {
                if (depth == 16) {
                    row[2 * i] = (unsigned char)(s[i] >> 8);
                    row[2 * i + 1] = (unsigned char)(s[i] & 0xff);
                } else if (depth == 8) {
                    row[i] = (unsigned char)s[i];
                } else {
                    size_t bit = i * (size_t)depth;
                    row[bit / 8] |= (unsigned char)(s[i] << (8 - depth - bit % 8));
                }
            }
            png_write_row(png, row);
        }
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(row);
    return b;
}

struct imgfix_buf imgfix_jpeg(uint32_t w, uint32_t h, int comps, const uint8_t *pixels)
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
    ci.in_color_space = comps == 1 ? JCS_GRAYSCALE : comps == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 95, TRUE);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < h) {
        JSAMPROW r[1] = {(JSAMPROW)(pixels + (size_t)ci.next_scanline * w * (size_t)comps)};
        jpeg_write_scanlines(&ci, r, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    struct imgfix_buf b = {0};
    buf_put(&b, out, outlen);
    free(out);
    return b;
}

struct imgfix_buf imgfix_archive(const char *format, size_t n, const char *const *names,
                                 const struct imgfix_buf *data)
{
    struct archive *a = archive_write_new();
    if (a == NULL) fail_msg("imgfix: libarchive");
    if (strcmp(format, "zip") == 0) {
        archive_write_set_format_zip(a);
    } else {
        archive_write_set_format_pax_restricted(a);
        if (strcmp(format, "tar.gz") == 0) archive_write_add_filter_gzip(a);
    }
    size_t cap = 1 << 20, used = 0;
    for (size_t i = 0; i < n; i++) cap += data[i].len * 2 + 1024;
    unsigned char *mem = malloc(cap);
    if (mem == NULL) fail_msg("imgfix: out of memory");
    if (archive_write_open_memory(a, mem, cap, &used) != ARCHIVE_OK)
        fail_msg("imgfix: %s", archive_error_string(a));
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, names[i]);
        archive_entry_set_size(e, (la_int64_t)data[i].len);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        if (archive_write_header(a, e) != ARCHIVE_OK)
            fail_msg("imgfix: %s: %s", names[i], archive_error_string(a));
        if (data[i].len && archive_write_data(a, data[i].p, data[i].len) != (la_ssize_t)data[i].len)
            fail_msg("imgfix: %s: %s", names[i], archive_error_string(a));
        archive_entry_free(e);
    }
    if (archive_write_close(a) != ARCHIVE_OK) fail_msg("imgfix: %s", archive_error_string(a));
    archive_write_free(a);
    struct imgfix_buf b = {mem, used};
    return b;
}

void imgfix_write(const char *path, const struct imgfix_buf *b)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(b->p, 1, b->len, f) != b->len || fclose(f) != 0)
        fail_msg("imgfix: cannot write %s", path);
}
