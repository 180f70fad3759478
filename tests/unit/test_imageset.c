/* test_imageset.c - lib/imageset profiles image archives read through
 * callbacks, and refuses hostile ones as a whole.
 *
 * Real data: tests/data/images/digits8x8.zip (always), and from the shared
 * data folder ($PODIUM_SHARED_DATA, else ../shared/data; the check is
 * skipped when it is missing) mnist10k.zip and the MNIST IDX pair.
 * Everything else is built here in memory with libarchive's writer,
 * libpng and libjpeg: colour images in class folders, IDX pairs, paths
 * that escape, zip/tar.gz bombs, truncated archives, corrupt images. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <jpeglib.h>
#include <png.h>
#include <zlib.h>

#include "lib/imageset.h"

/* --- memory buffers and sources ----------------------------------------------- */

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

static struct mem mem_file(const char *path)
{
    struct mem m = {0};
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        mem_put(&m, buf, n);
    fclose(f);
    return m;
}

/* A gzip'd file, inflated. */
static struct mem mem_gunzip(const char *path)
{
    struct mem m = {0};
    gzFile g = gzopen(path, "rb");
    if (!g)
        fail_msg("cannot open %s", path);
    unsigned char buf[65536];
    int n;
    while ((n = gzread(g, buf, sizeof buf)) > 0)
        mem_put(&m, buf, (size_t)n);
    assert_int_equal(n, 0);
    gzclose(g);
    return m;
}

static struct mem mem_gzip(const void *p, size_t len)
{
    struct mem m = {0};
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    unsigned char out[65536];
    z.next_in = (Bytef *)p;
    z.avail_in = (uInt)len;
    int r;
    do {
        z.next_out = out;
        z.avail_out = sizeof out;
        r = deflate(&z, Z_FINISH);
        mem_put(&m, out, sizeof out - z.avail_out);
    } while (r == Z_OK);
    assert_int_equal(r, Z_STREAM_END);
    deflateEnd(&z);
    return m;
}

/* A source over memory: `step` bytes per read; fail_after: read returns
 * -1 once that many bytes were handed out (0 = never). */
struct msrc {
    const unsigned char *p;
    size_t len, off, step, fail_after, handed;
};

static ssize_t msrc_read(void *ctx, const void **buf)
{
    struct msrc *s = ctx;
    if (s->fail_after && s->handed >= s->fail_after)
        return -1;
    size_t n = s->len - s->off;
    if (n > s->step)
        n = s->step;
    *buf = s->p + s->off;
    s->off += n;
    s->handed += n;
    return (ssize_t)n;
}

static int64_t msrc_seek(void *ctx, int64_t off, int whence)
{
    struct msrc *s = ctx;
    int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? (int64_t)s->off : (int64_t)s->len;
    int64_t to = base + off;
    if (to < 0 || to > (int64_t)s->len)
        return -1;
    s->off = (size_t)to;
    return to;
}

static int profile_mem(const struct mem *m, int seekable, size_t step,
                       const struct imageset_limits *lim, cJSON **out,
                       struct imageset_error *err)
{
    struct msrc s = {m->p, m->len, 0, step ? step : 4096, 0, 0};
    struct imageset_source src = {&s, msrc_read, seekable ? msrc_seek : NULL};
    return imageset_profile(&src, lim, out, err);
}

/* --- archives built in memory ------------------------------------------------- */

static la_ssize_t aw_write(struct archive *a, void *ud, const void *buf, size_t n)
{
    (void)a;
    mem_put(ud, buf, n);
    return (la_ssize_t)n;
}

/* fmt: "zip", "tar" or "tar.gz" */
static struct archive *aw_open(struct mem *m, const char *fmt)
{
    struct archive *a = archive_write_new();
    assert_non_null(a);
    if (strcmp(fmt, "zip") == 0) {
        assert_int_equal(archive_write_set_format_zip(a), ARCHIVE_OK);
    } else {
        assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
        if (strcmp(fmt, "tar.gz") == 0)
            assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
        archive_write_set_bytes_in_last_block(a, 1);
    }
    assert_int_equal(archive_write_open2(a, m, NULL, aw_write, NULL, NULL), ARCHIVE_OK);
    return a;
}

/* size_known = 0: a zip entry without a size in its local header. */
static void aw_add2(struct archive *a, const char *path, const void *data, size_t len,
                    int size_known)
{
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, path);
    if (size_known)
        archive_entry_set_size(e, (la_int64_t)len);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_mtime(e, 1700000000, 0);
    int r = archive_write_header(a, e);   /* WARN: a name kept as raw bytes */
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
        fail_msg("write_header %s: %s", path, archive_error_string(a));
    if (len)
        assert_int_equal(archive_write_data(a, data, len), (la_ssize_t)len);
    archive_entry_free(e);
}

static void aw_add(struct archive *a, const char *path, const void *data, size_t len)
{
    aw_add2(a, path, data, len, 1);
}

static void aw_add_mem(struct archive *a, const char *path, const struct mem *m)
{
    aw_add(a, path, m->p, m->len);
}

static void aw_dir(struct archive *a, const char *path)
{
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, path);
    archive_entry_set_filetype(e, AE_IFDIR);
    archive_entry_set_perm(e, 0755);
    assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
    archive_entry_free(e);
}

static void aw_symlink(struct archive *a, const char *path, const char *target)
{
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, path);
    archive_entry_set_filetype(e, AE_IFLNK);
    archive_entry_set_symlink(e, target);
    archive_entry_set_perm(e, 0777);
    assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
    archive_entry_free(e);
}

static void aw_close(struct archive *a)
{
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
}

/* --- images built here -------------------------------------------------------- */

static void png_w(png_structp png, png_bytep p, size_t n)
{
    mem_put(png_get_io_ptr(png), p, n);
}

static void png_flush_nop(png_structp png)
{
    (void)png;
}

/* An 8-bit w x h PNG with `channels` channels (1 grey, 2 grey+alpha,
 * 3 RGB, 4 RGBA). */
static struct mem make_png(uint32_t w, uint32_t h, int channels, unsigned seed)
{
    static const int types[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                 PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGBA};
    struct mem m = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    assert_non_null(png);
    assert_non_null(info);
    if (setjmp(png_jmpbuf(png)))
        fail_msg("libpng failed while writing a test image");
    png_set_write_fn(png, &m, png_w, png_flush_nop);
    png_set_IHDR(png, info, w, h, 8, types[channels], PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    unsigned char *row = malloc((size_t)w * channels);
    assert_non_null(row);
    for (uint32_t y = 0; y < h; y++) {
        for (size_t i = 0; i < (size_t)w * channels; i++)
            row[i] = (unsigned char)(i * 7 + y * 3 + seed * 11);
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(row);
    return m;
}

static struct mem make_jpeg(uint32_t w, uint32_t h, int comps, unsigned seed)
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
    jpeg_start_compress(&ci, TRUE);
    unsigned char *row = malloc((size_t)w * comps);
    assert_non_null(row);
    while (ci.next_scanline < h) {
        for (size_t i = 0; i < (size_t)w * comps; i++)
            row[i] = (unsigned char)(i * 5 + ci.next_scanline * 9 + seed);
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

/* A PNG whose IDAT holds garbage (with a correct CRC, so zlib must notice). */
static struct mem make_corrupt_png(void)
{
    struct mem m = make_png(16, 16, 3, 1);
    size_t off = 8;
    while (off + 12 <= m.len) {
        uint32_t len = (uint32_t)m.p[off] << 24 | (uint32_t)m.p[off + 1] << 16 |
                       (uint32_t)m.p[off + 2] << 8 | m.p[off + 3];
        if (memcmp(m.p + off + 4, "IDAT", 4) == 0) {
            for (uint32_t i = 0; i < len; i++)
                m.p[off + 8 + i] = (unsigned char)(0x5A ^ (i * 29));
            uLong crc = crc32(0, m.p + off + 4, 4 + len);
            unsigned char *c = m.p + off + 8 + len;
            c[0] = (unsigned char)(crc >> 24);
            c[1] = (unsigned char)(crc >> 16);
            c[2] = (unsigned char)(crc >> 8);
            c[3] = (unsigned char)crc;
            return m;
        }
        off += 12 + (size_t)len;
    }
    fail_msg("no IDAT");
    return m;
}

/* IDX files: n images of rows x cols (pixel = i + r + c), labels i % 3
 * (labels_n may differ from n; extra adds bytes after the image data). */
static struct mem make_idx_images(uint32_t n, uint32_t rows, uint32_t cols, int extra)
{
    struct mem m = {0};
    unsigned char h[16] = {0, 0, 8, 3};
    uint32_t v[3] = {n, rows, cols};
    for (int k = 0; k < 3; k++) {
        h[4 + 4 * k] = (unsigned char)(v[k] >> 24);
        h[5 + 4 * k] = (unsigned char)(v[k] >> 16);
        h[6 + 4 * k] = (unsigned char)(v[k] >> 8);
        h[7 + 4 * k] = (unsigned char)v[k];
    }
    mem_put(&m, h, 16);
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t p = 0; p < rows * cols; p++) {
            unsigned char b = (unsigned char)(i + p);
            mem_put(&m, &b, 1);
        }
    for (int i = 0; i < extra; i++)
        mem_put(&m, "x", 1);
    return m;
}

static struct mem make_idx_labels(uint32_t n)
{
    struct mem m = {0};
    unsigned char h[8] = {0, 0, 8, 1, (unsigned char)(n >> 24), (unsigned char)(n >> 16),
                          (unsigned char)(n >> 8), (unsigned char)n};
    mem_put(&m, h, 8);
    for (uint32_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)(i % 3);
        mem_put(&m, &b, 1);
    }
    return m;
}

/* --- JSON helpers ------------------------------------------------------------- */

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v))
        fail_msg("no number \"%s\"", key);
    return v->valuedouble;
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v))
        fail_msg("no string \"%s\"", key);
    return v->valuestring;
}

static const cJSON *obj(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v)
        fail_msg("no \"%s\"", key);
    return v;
}

static double class_count(const cJSON *o, const char *name)
{
    const cJSON *k;
    cJSON_ArrayForEach(k, obj(o, "classes"))
        if (strcmp(str(k, "name"), name) == 0)
            return num(k, "count");
    return -1;
}

static int n_classes(const cJSON *o)
{
    return cJSON_GetArraySize(obj(o, "classes"));
}

static double channels(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj(o, "channels"), key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static int list_has(const cJSON *list, const char *s)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, list)
        if (cJSON_IsString(v) && strcmp(v->valuestring, s) == 0)
            return 1;
    return 0;
}

static void expect_fail(int rc, int want, const struct imageset_error *err, const char *entry)
{
    if (rc != want)
        fail_msg("got %d (%s: %s), wanted %d", rc, err->entry, err->message, want);
    assert_int_equal(err->code, want);
    assert_true(err->message[0] != '\0');
    if (entry) {
        assert_string_equal(err->entry, entry);
        assert_non_null(strstr(err->message, entry));
    }
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Path of a shared data file, or NULL when the folder is not there. */
static const char *shared(const char *name, char *buf, size_t len)
{
    const char *dir = getenv("PODIUM_SHARED_DATA");
    snprintf(buf, len, "%s/%s", dir && *dir ? dir : "../shared/data", name);
    return access(buf, R_OK) == 0 ? buf : NULL;
}

#define DIGITS "tests/data/images/digits8x8.zip"

static void check_digits(const cJSON *o)
{
    assert_string_equal(str(o, "kind"), "images");
    assert_string_equal(str(o, "layout"), "folders");
    assert_string_equal(str(o, "format"), "zip");
    assert_int_equal(num(o, "images"), 1797);
    assert_int_equal(num(o, "entries"), 1797);
    assert_int_equal(n_classes(o), 10);
    const int counts[10] = {178, 182, 177, 183, 181, 182, 181, 179, 174, 180};
    int i = 0;
    const cJSON *k;
    cJSON_ArrayForEach(k, obj(o, "classes")) {
        char name[12];
        snprintf(name, sizeof name, "%d", i);
        assert_string_equal(str(k, "name"), name);
        assert_int_equal(num(k, "count"), counts[i]);
        const cJSON *s = obj(k, "samples");
        assert_int_equal(cJSON_GetArraySize(s), 5);
        assert_int_equal(strncmp(cJSON_GetArrayItem(s, 0)->valuestring, name, 1), 0);
        i++;
    }
    const cJSON *sizes = obj(o, "sizes");
    assert_int_equal(num(obj(sizes, "min"), "width"), 8);
    assert_int_equal(num(obj(sizes, "max"), "height"), 8);
    assert_int_equal(num(obj(sizes, "most_common"), "count"), 1797);
    assert_int_equal(num(obj(sizes, "most_common"), "width"), 8);
    assert_int_equal(channels(o, "1"), 1797);
    assert_int_equal(channels(o, "3"), 0);
    assert_int_equal(num(obj(o, "unreadable"), "count"), 0);
    assert_int_equal(num(obj(o, "skipped"), "count"), 0);
    assert_true(num(o, "uncompressed_bytes") > 200000);
}

/* --- tests: real data ---------------------------------------------------------- */

static void digits_zip_from_file(void **state)
{
    cJSON *o;
    struct imageset_error err;
    int rc = imageset_profile_file(DIGITS, NULL, &o, &err);
    if (rc)
        fail_msg("%s: %s", DIGITS, err.message);
    check_digits(o);
    cJSON_Delete(o);
}

static void digits_zip_through_callbacks_with_and_without_seek(void **state)
{
    struct mem m = mem_file(DIGITS);
    const size_t steps[3] = {65536, 4093, 7};
    for (int seekable = 0; seekable <= 1; seekable++) {
        for (int s = 0; s < 3; s++) {
            cJSON *o;
            struct imageset_error err;
            int rc = profile_mem(&m, seekable, steps[s], NULL, &o, &err);
            if (rc)
                fail_msg("seek %d step %zu: %s", seekable, steps[s], err.message);
            check_digits(o);
            cJSON_Delete(o);
        }
    }
    free(m.p);
}

static void mnist_zip_and_idx_agree(void **state)
{
    char zp[1024], ip[1024], lp[1024];
    if (!shared("images/mnist10k.zip", zp, sizeof zp) ||
        !shared("images/mnist10k-images-idx3-ubyte.gz", ip, sizeof ip) ||
        !shared("images/mnist10k-labels-idx1-ubyte.gz", lp, sizeof lp)) {
        print_message("shared data not found; skipping the MNIST checks\n");
        skip();
        return;
    }
    cJSON *z;
    struct imageset_error err;
    double t0 = now();
    int rc = imageset_profile_file(zp, NULL, &z, &err);
    double t1 = now();
    if (rc)
        fail_msg("%s: %s", zp, err.message);
    print_message("mnist10k.zip: 10000 images profiled in %.3f s\n", t1 - t0);
    assert_string_equal(str(z, "layout"), "folders");
    assert_int_equal(num(z, "images"), 10000);
    assert_int_equal(n_classes(z), 10);
    assert_int_equal(num(obj(obj(z, "sizes"), "most_common"), "width"), 28);
    assert_int_equal(num(obj(obj(z, "sizes"), "most_common"), "height"), 28);
    assert_int_equal(num(obj(obj(z, "sizes"), "most_common"), "count"), 10000);
    assert_int_equal(channels(z, "1"), 10000);

    /* the IDX pair: gzip'd in a tar, raw in a tar, raw in a tar.gz, gzip'd in a zip */
    struct mem gi = mem_file(ip), gl = mem_file(lp);
    struct mem ri = mem_gunzip(ip), rl = mem_gunzip(lp);
    assert_int_equal(ri.len, 16 + 10000 * 784);
    assert_int_equal(rl.len, 8 + 10000);
    const struct { const char *fmt; int gz; } v[4] = {
        {"tar", 1}, {"tar", 0}, {"tar.gz", 0}, {"zip", 1},
    };
    for (int i = 0; i < 4; i++) {
        struct mem ar = {0};
        struct archive *a = aw_open(&ar, v[i].fmt);
        aw_add_mem(a, v[i].gz ? "mnist/t10k-labels-idx1-ubyte.gz" : "labels-idx1-ubyte",
                   v[i].gz ? &gl : &rl);
        aw_add_mem(a, v[i].gz ? "mnist/t10k-images-idx3-ubyte.gz" : "images-idx3-ubyte",
                   v[i].gz ? &gi : &ri);
        aw_close(a);
        for (int seekable = 0; seekable <= 1; seekable++) {
            cJSON *o;
            rc = profile_mem(&ar, seekable, 65536, NULL, &o, &err);
            if (rc)
                fail_msg("%s gz=%d: %s", v[i].fmt, v[i].gz, err.message);
            assert_string_equal(str(o, "layout"), "idx");
            assert_string_equal(str(o, "format"), v[i].fmt);
            assert_int_equal(num(o, "images"), 10000);
            assert_int_equal(n_classes(o), 10);
            for (int c = 0; c < 10; c++) {
                char name[12];
                snprintf(name, sizeof name, "%d", c);
                assert_true(class_count(o, name) > 800);
                assert_int_equal(class_count(o, name), class_count(z, name));
            }
            assert_int_equal(num(obj(obj(o, "sizes"), "min"), "width"), 28);
            assert_int_equal(num(obj(obj(o, "sizes"), "max"), "height"), 28);
            assert_int_equal(channels(o, "1"), 10000);
            assert_true(cJSON_IsTrue(obj(obj(o, "idx"), "gzip")) == v[i].gz);
            cJSON_Delete(o);
        }
        free(ar.p);
    }
    free(gi.p);
    free(gl.p);
    free(ri.p);
    free(rl.p);
    cJSON_Delete(z);
}

/* --- tests: layouts ---------------------------------------------------------- */

static void colour_png_and_jpeg_in_class_folders(void **state)
{
    struct mem rgb = make_png(10, 6, 3, 1), rgba = make_png(10, 6, 4, 2);
    struct mem grey = make_png(10, 6, 1, 3), jpg = make_jpeg(20, 12, 3, 4);
    struct mem jgrey = make_jpeg(20, 12, 1, 5), big = make_png(30, 2, 3, 6);
    const char *fmts[3] = {"tar.gz", "zip", "tar"};
    for (int f = 0; f < 3; f++) {
        struct mem ar = {0};
        struct archive *a = aw_open(&ar, fmts[f]);
        aw_dir(a, "train/");
        aw_dir(a, "train/cat/");
        aw_add_mem(a, "train/cat/1.png", &rgb);
        aw_add_mem(a, "train/cat/2.png", &rgba);
        aw_add_mem(a, "train/cat/3.jpeg", &jpg);
        aw_add_mem(a, "train/cat/really_a_png.jpg", &rgb);   /* magic, not extension */
        aw_dir(a, "train/dog/");
        aw_add_mem(a, "train/dog/1.jpg", &jpg);
        aw_add_mem(a, "train/dog/2.jpg", &jgrey);
        aw_add_mem(a, "train/dog/3.png", &grey);
        aw_add_mem(a, "train/dog/4.bin", &big);                /* no extension needed */
        aw_add(a, "train/dog/notes.txt", "woof", 4);
        aw_add_mem(a, "__MACOSX/train/cat/._1.png", &rgb);
        aw_add(a, ".DS_Store", "junk", 4);
        aw_add_mem(a, "train/cat/.hidden.png", &rgb);
        aw_add_mem(a, "root.png", &rgb);
        aw_add(a, "README", "hello", 5);
        if (f != 1)
            aw_symlink(a, "train/cat/link.png", "1.png");
        aw_close(a);

        for (int seekable = 0; seekable <= 1; seekable++) {
            cJSON *o;
            struct imageset_error err;
            int rc = profile_mem(&ar, seekable, 1000, NULL, &o, &err);
            if (rc)
                fail_msg("%s: %s", fmts[f], err.message);
            assert_string_equal(str(o, "format"), fmts[f]);
            assert_string_equal(str(o, "layout"), "folders");
            assert_int_equal(num(o, "images"), 8);
            assert_int_equal(n_classes(o), 2);
            const cJSON *cat = cJSON_GetArrayItem(obj(o, "classes"), 0);
            assert_string_equal(str(cat, "name"), "cat");
            assert_int_equal(num(cat, "count"), 4);
            assert_string_equal(cJSON_GetArrayItem(obj(cat, "samples"), 0)->valuestring,
                                "train/cat/1.png");
            assert_int_equal(class_count(o, "dog"), 4);
            assert_int_equal(channels(o, "1"), 2);
            assert_int_equal(channels(o, "3"), 5);
            assert_int_equal(channels(o, "4"), 1);
            assert_int_equal(num(obj(o, "encodings"), "png"), 5);
            assert_int_equal(num(obj(o, "encodings"), "jpeg"), 3);
            const cJSON *sizes = obj(o, "sizes");
            assert_int_equal(num(obj(sizes, "min"), "width"), 10);
            assert_int_equal(num(obj(sizes, "min"), "height"), 2);
            assert_int_equal(num(obj(sizes, "max"), "width"), 30);
            assert_int_equal(num(obj(sizes, "max"), "height"), 12);
            assert_int_equal(num(obj(sizes, "most_common"), "width"), 10);
            assert_int_equal(num(obj(sizes, "most_common"), "height"), 6);
            assert_int_equal(num(obj(sizes, "most_common"), "count"), 4);
            assert_int_equal(num(sizes, "distinct"), 3);
            const cJSON *sk = obj(o, "skipped");
            int links = f != 1;
            assert_int_equal(num(sk, "count"), 6 + links);
            assert_true(list_has(obj(sk, "files"), "train/dog/notes.txt"));
            assert_true(list_has(obj(sk, "files"), "root.png"));
            assert_true(list_has(obj(sk, "files"), "__MACOSX/train/cat/._1.png"));
            const cJSON *rs = obj(sk, "reasons");
            assert_int_equal(num(rs, "hidden"), 3);
            assert_int_equal(num(rs, "at the archive root"), 1);
            assert_int_equal(num(rs, "not an image"), 2);
            if (links)
                assert_int_equal(num(rs, "not a regular file"), 1);
            assert_int_equal(num(obj(o, "unreadable"), "count"), 0);
            assert_int_equal(num(o, "entries"), 17 + links);
            cJSON_Delete(o);
        }
        free(ar.p);
    }
    free(rgb.p);
    free(rgba.p);
    free(grey.p);
    free(jpg.p);
    free(jgrey.p);
    free(big.p);
}

static void classes_in_natural_order(void **state)
{
    struct mem png = make_png(4, 4, 1, 0);
    struct mem ar = {0};
    struct archive *a = aw_open(&ar, "tar");
    const char *names[] = {"10/a.png", "b/a.png", "2/a.png", "a10/a.png", "1/a.png",
                           "a9/a.png", "x/02/a.png", "10/b.png"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        aw_add_mem(a, names[i], &png);
    aw_close(a);
    cJSON *o;
    struct imageset_error err;
    assert_int_equal(profile_mem(&ar, 1, 0, NULL, &o, &err), 0);
    const char *want[] = {"1", "02", "2", "10", "a9", "a10", "b"};
    assert_int_equal(n_classes(o), 7);
    for (int i = 0; i < 7; i++)
        assert_string_equal(str(cJSON_GetArrayItem(obj(o, "classes"), i), "name"), want[i]);
    assert_int_equal(class_count(o, "10"), 2);
    cJSON_Delete(o);
    free(ar.p);
    free(png.p);
}

static void names_become_valid_utf8(void **state)
{
    struct mem png = make_png(4, 4, 1, 0), bad = make_corrupt_png();
    const char *fmts[2] = {"tar", "zip"};
    for (int f = 0; f < 2; f++) {
        struct mem ar = {0};
        struct archive *a = aw_open(&ar, fmts[f]);
        aw_add_mem(a, "caf\xe9/1.png", &png);             /* Latin-1 */
        aw_add_mem(a, "\xc3\xa9t\xc3\xa9/1.png", &png);    /* UTF-8 */
        aw_add_mem(a, "x/\xff\xfe.png", &bad);
        aw_close(a);
        cJSON *o;
        struct imageset_error err;
        int rc = profile_mem(&ar, 1, 0, NULL, &o, &err);
        if (rc)
            fail_msg("%s: %s", fmts[f], err.message);
        assert_int_equal(class_count(o, "caf?"), 1);
        assert_int_equal(class_count(o, "\xc3\xa9t\xc3\xa9"), 1);
        assert_string_equal(cJSON_GetArrayItem(obj(obj(o, "unreadable"), "files"), 0)->valuestring,
                            "x/??.png");
        cJSON_Delete(o);
        free(ar.p);
    }
    free(png.p);
    free(bad.p);
}

static void small_idx_built_here(void **state)
{
    struct mem im = make_idx_images(50, 4, 5, 0), lb = make_idx_labels(50);
    struct mem gim = mem_gzip(im.p, im.len);
    const char *fmts[3] = {"tar", "zip", "tar.gz"};
    for (int f = 0; f < 3; f++) {
        for (int gz = 0; gz <= 1; gz++) {
            struct mem ar = {0};
            struct archive *a = aw_open(&ar, fmts[f]);
            aw_add_mem(a, "data/train-images", gz ? &gim : &im);   /* any name */
            aw_add(a, "notes.txt", "hi", 2);
            aw_add_mem(a, "data/train-labels", &lb);
            aw_close(a);
            for (int seekable = 0; seekable <= 1; seekable++) {
                cJSON *o;
                struct imageset_error err;
                int rc = profile_mem(&ar, seekable, 333, NULL, &o, &err);
                if (rc)
                    fail_msg("%s: %s", fmts[f], err.message);
                assert_string_equal(str(o, "layout"), "idx");
                assert_int_equal(num(o, "images"), 50);
                assert_int_equal(n_classes(o), 3);
                assert_int_equal(class_count(o, "0"), 17);
                assert_int_equal(class_count(o, "1"), 17);
                assert_int_equal(class_count(o, "2"), 16);
                const cJSON *mc = obj(obj(o, "sizes"), "most_common");
                assert_int_equal(num(mc, "width"), 5);
                assert_int_equal(num(mc, "height"), 4);
                assert_int_equal(num(mc, "count"), 50);
                assert_int_equal(channels(o, "1"), 50);
                const cJSON *idx = obj(o, "idx");
                assert_string_equal(str(idx, "images_file"), "data/train-images");
                assert_string_equal(str(idx, "labels_file"), "data/train-labels");
                assert_true(cJSON_IsTrue(obj(idx, "gzip")) == gz);
                assert_int_equal(num(obj(o, "skipped"), "count"), 1);
                cJSON_Delete(o);
            }
            free(ar.p);
        }
    }
    free(im.p);
    free(lb.p);
    free(gim.p);
}

/* Builds a tar with the given IDX files and expects EIDX naming `bad`. */
static void expect_eidx(const struct mem *im, const char *im_name, const struct mem *lb,
                        const char *lb_name, const struct mem *extra, const char *bad)
{
    struct mem ar = {0};
    struct archive *a = aw_open(&ar, "tar");
    if (im)
        aw_add_mem(a, im_name, im);
    if (lb)
        aw_add_mem(a, lb_name, lb);
    if (extra)
        aw_add_mem(a, "second-images", extra);
    aw_close(a);
    cJSON *o;
    struct imageset_error err;
    int rc = profile_mem(&ar, 1, 0, NULL, &o, &err);
    expect_fail(rc, IMAGESET_EIDX, &err, bad);
    assert_null(o);
    free(ar.p);
}

static void inconsistent_idx_is_rejected(void **state)
{
    struct mem im = make_idx_images(50, 4, 5, 0), lb = make_idx_labels(50);
    struct mem lb49 = make_idx_labels(49);
    /* counts disagree: names the labels file and both counts */
    expect_eidx(&im, "imgs", &lb49, "lbls", NULL, "lbls");
    /* image data shorter / longer than the header says */
    struct mem shortim = {0};
    mem_put(&shortim, im.p, im.len - 20);
    expect_eidx(&shortim, "imgs", &lb, "lbls", NULL, "imgs");
    struct mem longim = make_idx_images(50, 4, 5, 3);
    expect_eidx(&longim, "imgs", &lb, "lbls", NULL, "imgs");
    /* labels data short */
    struct mem shortlb = {0};
    mem_put(&shortlb, lb.p, lb.len - 1);
    expect_eidx(&im, "imgs", &shortlb, "lbls", NULL, "lbls");
    /* one file missing */
    expect_eidx(&im, "imgs", NULL, NULL, NULL, "imgs");
    expect_eidx(NULL, NULL, &lb, "lbls", NULL, "lbls");
    /* two images files */
    expect_eidx(&im, "imgs", &lb, "lbls", &im, "second-images");
    /* a truncated gzip'd images file */
    struct mem g = mem_gzip(im.p, im.len);
    g.len /= 2;
    expect_eidx(&g, "imgs.gz", &lb, "lbls", NULL, "imgs.gz");
    /* a header cut short */
    struct mem hdr = {0};
    mem_put(&hdr, im.p, 10);
    expect_eidx(&hdr, "imgs", &lb, "lbls", NULL, "imgs");
    /* absurd dimensions */
    struct mem huge = {0};
    mem_put(&huge, im.p, 16);
    huge.p[8] = 0x7f;   /* rows = 2^30 + ... */
    expect_eidx(&huge, "imgs", &lb, "lbls", NULL, "imgs");
    free(im.p);
    free(lb.p);
    free(lb49.p);
    free(shortim.p);
    free(longim.p);
    free(shortlb.p);
    free(g.p);
    free(hdr.p);
    free(huge.p);
}

static void idx_beside_folders_is_skipped(void **state)
{
    struct mem png = make_png(4, 4, 1, 0);
    struct mem im = make_idx_images(5, 2, 2, 0), lb = make_idx_labels(5);
    struct mem ar = {0};
    struct archive *a = aw_open(&ar, "tar");
    aw_add_mem(a, "a/1.png", &png);
    aw_add_mem(a, "imgs", &im);
    aw_add_mem(a, "lbls", &lb);
    aw_close(a);
    cJSON *o;
    struct imageset_error err;
    assert_int_equal(profile_mem(&ar, 1, 0, NULL, &o, &err), 0);
    assert_string_equal(str(o, "layout"), "folders");
    assert_int_equal(num(o, "images"), 1);
    assert_int_equal(num(obj(obj(o, "skipped"), "reasons"), "IDX beside class folders"), 2);
    cJSON_Delete(o);
    free(ar.p);
    free(png.p);
    free(im.p);
    free(lb.p);
}

static void no_layout(void **state)
{
    struct mem png = make_png(4, 4, 1, 0);
    struct mem ar = {0};
    struct archive *a = aw_open(&ar, "zip");
    aw_add_mem(a, "a.png", &png);
    aw_add_mem(a, "b.png", &png);
    aw_add(a, "docs/readme.txt", "hello", 5);
    aw_close(a);
    cJSON *o;
    struct imageset_error err;
    expect_fail(profile_mem(&ar, 1, 0, NULL, &o, &err), IMAGESET_ELAYOUT, &err, NULL);
    assert_non_null(strstr(err.message, "root"));
    free(ar.p);

    memset(&ar, 0, sizeof ar);
    a = aw_open(&ar, "tar");
    aw_add(a, "docs/readme.txt", "hello", 5);
    aw_close(a);
    expect_fail(profile_mem(&ar, 1, 0, NULL, &o, &err), IMAGESET_ELAYOUT, &err, NULL);
    free(ar.p);

    memset(&ar, 0, sizeof ar);   /* an empty tar */
    a = aw_open(&ar, "tar");
    aw_close(a);
    expect_fail(profile_mem(&ar, 1, 0, NULL, &o, &err), IMAGESET_ELAYOUT, &err, NULL);
    free(ar.p);
    free(png.p);
}

/* --- tests: damaged images ----------------------------------------------------- */

static void corrupt_png_is_listed_unreadable(void **state)
{
    struct mem good = make_png(8, 8, 3, 1), bad = make_corrupt_png();
    struct mem trunc_jpg = make_jpeg(32, 32, 3, 2);
    trunc_jpg.len /= 2;
    struct mem ar = {0};
    struct archive *a = aw_open(&ar, "zip");
    aw_add_mem(a, "cat/1.png", &good);
    aw_add_mem(a, "cat/broken.png", &bad);
    aw_add_mem(a, "dog/1.png", &good);
    aw_add_mem(a, "dog/half.jpg", &trunc_jpg);
    aw_close(a);
    cJSON *o;
    struct imageset_error err;
    assert_int_equal(profile_mem(&ar, 1, 0, NULL, &o, &err), 0);
    assert_int_equal(num(o, "images"), 2);
    assert_int_equal(class_count(o, "cat"), 1);
    const cJSON *u = obj(o, "unreadable");
    assert_int_equal(num(u, "count"), 2);
    assert_string_equal(cJSON_GetArrayItem(obj(u, "files"), 0)->valuestring, "cat/broken.png");
    assert_string_equal(cJSON_GetArrayItem(obj(u, "files"), 1)->valuestring, "dog/half.jpg");
    assert_non_null(strstr(cJSON_GetArrayItem(obj(u, "reasons"), 0)->valuestring, "png"));
    assert_non_null(strstr(cJSON_GetArrayItem(obj(u, "reasons"), 1)->valuestring, "jpeg"));
    cJSON_Delete(o);
    free(ar.p);

    /* only the corrupt one: nothing readable */
    memset(&ar, 0, sizeof ar);
    a = aw_open(&ar, "tar.gz");
    aw_add_mem(a, "cat/broken.png", &bad);
    aw_close(a);
    expect_fail(profile_mem(&ar, 1, 0, NULL, &o, &err), IMAGESET_ENOIMAGES, &err,
                "cat/broken.png");
    assert_null(o);
    free(ar.p);
    free(good.p);
    free(bad.p);
    free(trunc_jpg.p);
}

static void unreadable_names_are_capped(void **state)
{
    struct mem good = make_png(8, 8, 1, 1), bad = make_corrupt_png();
    struct mem ar = {0};
    struct archive *a = aw_open(&ar, "tar");
    aw_add_mem(a, "ok/good.png", &good);
    for (int i = 0; i < 150; i++) {
        char name[32];
        snprintf(name, sizeof name, "bad/%03d.png", i);
        aw_add_mem(a, name, &bad);
    }
    aw_close(a);
    cJSON *o;
    struct imageset_error err;
    assert_int_equal(profile_mem(&ar, 0, 0, NULL, &o, &err), 0);
    const cJSON *u = obj(o, "unreadable");
    assert_int_equal(num(u, "count"), 150);
    assert_int_equal(cJSON_GetArraySize(obj(u, "files")), 100);
    assert_int_equal(cJSON_GetArraySize(obj(u, "reasons")), 100);
    cJSON_Delete(o);
    free(ar.p);
    free(good.p);
    free(bad.p);
}

/* --- tests: hostile archives --------------------------------------------------- */

static void escaping_paths_reject_the_archive(void **state)
{
    struct mem png = make_png(4, 4, 1, 0);
    const char *bad[] = {"../evil.png", "/abs.png", "cat/../../evil.png", "cat/..",
                         "C:/win.png", "c:evil.png", "cat\\..\\..\\evil.png", "\\server\\x.png"};
    const char *fmts[3] = {"zip", "tar", "tar.gz"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (int f = 0; f < 3; f++) {
            struct mem ar = {0};
            struct archive *a = aw_open(&ar, fmts[f]);
            aw_add_mem(a, "cat/ok.png", &png);    /* good entries first */
            aw_add_mem(a, bad[i], &png);
            aw_add_mem(a, "dog/ok.png", &png);
            aw_close(a);
            for (int seekable = 0; seekable <= 1; seekable++) {
                cJSON *o;
                struct imageset_error err;
                int rc = profile_mem(&ar, seekable, 0, NULL, &o, &err);
                if (rc != IMAGESET_EPATH)
                    fail_msg("%s in %s: got %d (%s)", bad[i], fmts[f], rc, err.message);
                /* libarchive may turn '\\' into '/' in zip names */
                expect_fail(rc, IMAGESET_EPATH, &err, strchr(bad[i], '\\') ? NULL : bad[i]);
                assert_null(o);
            }
            free(ar.p);
        }
    }
    free(png.p);
}

/* A zip holding one entry of `bytes` zeros, deflated while streaming. */
static struct mem make_zero_archive(const char *fmt, uint64_t bytes)
{
    struct mem ar = {0};
    struct archive *a = aw_open(&ar, fmt);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, "bomb/zeros.png");
    archive_entry_set_size(e, (la_int64_t)bytes);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
    static const unsigned char zeros[1 << 16];
    for (uint64_t left = bytes; left > 0;) {
        size_t n = left < sizeof zeros ? (size_t)left : sizeof zeros;
        assert_int_equal(archive_write_data(a, zeros, n), (la_ssize_t)n);
        left -= n;
    }
    archive_entry_free(e);
    aw_close(a);
    return ar;
}

static void zip_bomb_fails_fast(void **state)
{
    /* 200 MiB: under the 256 MiB entry limit, so only the ratio stops it */
    struct mem zip = make_zero_archive("zip", 200ull << 20);
    assert_true(zip.len < (1u << 20));      /* ~200 KB compressed */
    for (int seekable = 0; seekable <= 1; seekable++) {
        cJSON *o;
        struct imageset_error err;
        double t0 = now();
        int rc = profile_mem(&zip, seekable, 65536, NULL, &o, &err);
        double t = now() - t0;
        expect_fail(rc, IMAGESET_ELIMIT, &err, "bomb/zeros.png");
        assert_non_null(strstr(err.message, "ratio"));
        /* stops after ~16 MiB of 200 MiB */
        if (t > 2.0)
            fail_msg("the bomb took %.2f s", t);
    }
    free(zip.p);

    /* the same as a tar.gz (ratio ~1000) */
    struct mem tgz = make_zero_archive("tar.gz", 40ull << 20);
    cJSON *o;
    struct imageset_error err;
    expect_fail(profile_mem(&tgz, 0, 0, NULL, &o, &err), IMAGESET_ELIMIT, &err, NULL);
    /* allowed with a looser ratio: then it is just a file that is no image */
    struct imageset_limits lim = {.max_ratio = 1e6};
    assert_int_equal(profile_mem(&tgz, 0, 0, &lim, &o, &err), IMAGESET_ELAYOUT);
    /* and the per-entry and total limits still hold */
    lim.max_entry_bytes = 1u << 20;
    expect_fail(profile_mem(&tgz, 0, 0, &lim, &o, &err), IMAGESET_ELIMIT, &err,
                "bomb/zeros.png");
    free(tgz.p);

    /* 300 MiB, over the entry limit: the zip's header says so (seekable),
     * or counting stops it at 256 MiB (streaming, no size in the header) */
    zip = make_zero_archive("zip", 300ull << 20);
    expect_fail(profile_mem(&zip, 1, 0, NULL, &o, &err), IMAGESET_ELIMIT, &err,
                "bomb/zeros.png");
    lim = (struct imageset_limits){.max_ratio = 1e6};
    expect_fail(profile_mem(&zip, 0, 65536, &lim, &o, &err), IMAGESET_ELIMIT, &err,
                "bomb/zeros.png");
    free(zip.p);
}

static void size_and_count_limits(void **state)
{
    struct mem png = make_png(40, 40, 3, 9);
    assert_true(png.len > 100);
    cJSON *o;
    struct imageset_error err;

    /* entry size: a zip entry with no size in its header, read streaming,
     * so only counting can catch it; and the same with the size known */
    for (int known = 0; known <= 1; known++) {
        struct mem ar = {0};
        struct archive *a = aw_open(&ar, "zip");
        aw_add2(a, "cat/big.png", png.p, png.len, known);
        aw_close(a);
        struct imageset_limits lim = {.max_entry_bytes = png.len - 1};
        for (int seekable = 0; seekable <= 1; seekable++)
            expect_fail(profile_mem(&ar, seekable, 0, &lim, &o, &err), IMAGESET_ELIMIT, &err,
                        "cat/big.png");
        free(ar.p);
    }

    struct mem ar = {0};
    struct archive *a = aw_open(&ar, "tar");
    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof name, "c%d/x.png", i);
        aw_add_mem(a, name, &png);
    }
    aw_close(a);
    assert_int_equal(profile_mem(&ar, 1, 0, NULL, &o, &err), 0);
    assert_int_equal(num(o, "images"), 5);
    cJSON_Delete(o);
    struct imageset_limits lim = {.max_entries = 4};
    expect_fail(profile_mem(&ar, 1, 0, &lim, &o, &err), IMAGESET_ELIMIT, &err, NULL);
    lim = (struct imageset_limits){.max_total_bytes = png.len * 3 + 10};
    expect_fail(profile_mem(&ar, 1, 0, &lim, &o, &err), IMAGESET_ELIMIT, &err, "c3/x.png");
    lim = (struct imageset_limits){.max_classes = 4};
    expect_fail(profile_mem(&ar, 1, 0, &lim, &o, &err), IMAGESET_ELIMIT, &err, "c4/x.png");
    free(ar.p);
    free(png.p);
}

static struct mem make_png_archive(const char *fmt, int n)
{
    struct mem ar = {0};
    struct archive *a = aw_open(&ar, fmt);
    for (int i = 0; i < n; i++) {
        struct mem png = make_png(16, 16, 3, (unsigned)i);
        char name[32];
        snprintf(name, sizeof name, "k%d/%03d.png", i % 3, i);
        aw_add_mem(a, name, &png);
        free(png.p);
    }
    aw_close(a);
    return ar;
}

static void truncated_archives_are_corrupt(void **state)
{
    const char *fmts[3] = {"zip", "tar", "tar.gz"};
    for (int f = 0; f < 3; f++) {
        struct mem ar = make_png_archive(fmts[f], 40);
        cJSON *o;
        struct imageset_error err;
        assert_int_equal(profile_mem(&ar, 1, 0, NULL, &o, &err), 0);
        cJSON_Delete(o);
        struct mem half = {ar.p, ar.len / 2 + 3, 0};
        for (int seekable = 0; seekable <= 1; seekable++) {
            int rc = profile_mem(&half, seekable, 0, NULL, &o, &err);
            if (rc != IMAGESET_ECORRUPT)
                fail_msg("%s cut in half: got %d (%s)", fmts[f], rc, err.message);
            assert_null(o);
        }
        free(ar.p);
    }
    /* the real digits zip, cut in half */
    struct mem d = mem_file(DIGITS);
    d.len /= 2;
    cJSON *o;
    struct imageset_error err;
    for (int seekable = 0; seekable <= 1; seekable++)
        expect_fail(profile_mem(&d, seekable, 0, NULL, &o, &err), IMAGESET_ECORRUPT, &err, NULL);
    free(d.p);
}

static void not_an_archive(void **state)
{
    struct mem rnd = {0};
    uint32_t x = 12345;
    for (int i = 0; i < 5000; i++) {
        x = x * 1103515245u + 12345u;
        unsigned char b = (unsigned char)(x >> 16);
        mem_put(&rnd, &b, 1);
    }
    cJSON *o;
    struct imageset_error err;
    for (int seekable = 0; seekable <= 1; seekable++) {
        expect_fail(profile_mem(&rnd, seekable, 0, NULL, &o, &err), IMAGESET_EFORMAT, &err, NULL);
        assert_null(o);
    }
    struct mem empty = {0};
    expect_fail(profile_mem(&empty, 1, 0, NULL, &o, &err), IMAGESET_EFORMAT, &err, NULL);
    /* a bare image, and a gzip'd image, are not archives */
    struct mem png = make_png(8, 8, 3, 0);
    expect_fail(profile_mem(&png, 1, 0, NULL, &o, &err), IMAGESET_EFORMAT, &err, NULL);
    struct mem gz = mem_gzip(png.p, png.len);
    expect_fail(profile_mem(&gz, 1, 0, NULL, &o, &err), IMAGESET_EFORMAT, &err, NULL);
    /* a gzip'd zip is not one of ours either */
    struct mem zip = make_png_archive("zip", 3);
    struct mem gzip_zip = mem_gzip(zip.p, zip.len);
    expect_fail(profile_mem(&gzip_zip, 1, 0, NULL, &o, &err), IMAGESET_EFORMAT, &err, NULL);
    free(rnd.p);
    free(png.p);
    free(gz.p);
    free(zip.p);
    free(gzip_zip.p);
}

static void read_errors_and_bad_arguments(void **state)
{
    struct mem ar = make_png_archive("tar.gz", 30);
    for (int seekable = 0; seekable <= 1; seekable++) {
        struct msrc s = {ar.p, ar.len, 0, 512, ar.len / 2, 0};
        struct imageset_source src = {&s, msrc_read, seekable ? msrc_seek : NULL};
        cJSON *o;
        struct imageset_error err;
        expect_fail(imageset_profile(&src, NULL, &o, &err), IMAGESET_ECORRUPT, &err, NULL);
        assert_null(o);
        /* failing from the first byte */
        s = (struct msrc){ar.p, ar.len, 0, 512, 0, 0};
        s.fail_after = 1;
        s.handed = 1;
        expect_fail(imageset_profile(&src, NULL, &o, &err), IMAGESET_ECORRUPT, &err, NULL);
    }
    free(ar.p);

    cJSON *o;
    struct imageset_error err;
    assert_int_equal(imageset_profile(NULL, NULL, &o, &err), IMAGESET_EARG);
    assert_int_equal(imageset_profile_file("/nonexistent/x.zip", NULL, &o, &err), IMAGESET_EARG);
    assert_non_null(strstr(err.message, "/nonexistent/x.zip"));
    assert_int_equal(imageset_profile_file(DIGITS, NULL, NULL, NULL), IMAGESET_EARG);
    for (int c = 0; c >= -9; c--)
        assert_non_null(imageset_strerror(c));
    assert_string_equal(imageset_strerror(IMAGESET_EPATH), "unsafe path in the archive");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(digits_zip_from_file),
        cmocka_unit_test(digits_zip_through_callbacks_with_and_without_seek),
        cmocka_unit_test(mnist_zip_and_idx_agree),
        cmocka_unit_test(colour_png_and_jpeg_in_class_folders),
        cmocka_unit_test(classes_in_natural_order),
        cmocka_unit_test(names_become_valid_utf8),
        cmocka_unit_test(small_idx_built_here),
        cmocka_unit_test(inconsistent_idx_is_rejected),
        cmocka_unit_test(idx_beside_folders_is_skipped),
        cmocka_unit_test(no_layout),
        cmocka_unit_test(corrupt_png_is_listed_unreadable),
        cmocka_unit_test(unreadable_names_are_capped),
        cmocka_unit_test(escaping_paths_reject_the_archive),
        cmocka_unit_test(zip_bomb_fails_fast),
        cmocka_unit_test(size_and_count_limits),
        cmocka_unit_test(truncated_archives_are_corrupt),
        cmocka_unit_test(not_an_archive),
        cmocka_unit_test(read_errors_and_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
