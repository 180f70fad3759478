/*
 * fuzz_imageset.c - libFuzzer entry point for lib/imageset (image archives:
 * zip, tar, tar.gz through libarchive; PNG/JPEG through lib/image; IDX).
 * Not built by the Makefile; tests/fuzz/run.sh builds it, seeds a corpus
 * (tests/data/images/digits8x8.zip plus small tar, tar.gz, zip and IDX
 * archives it makes) and runs it. By hand, from the repository root:
 *
 *   P="libcjson libarchive libpng libjpeg zlib"
 *   clang -std=c11 -D_GNU_SOURCE -I. $(pkg-config --cflags $P) -g -O1 \
 *       -fsanitize=fuzzer,address,undefined tests/fuzz/fuzz_imageset.c \
 *       lib/imageset.c lib/image.c $(pkg-config --libs $P) -lm \
 *       -o build/fuzz/fuzz_imageset
 *   ./build/fuzz/fuzz_imageset -max_len=65536 -max_total_time=60 build/fuzz-corpus/imageset
 *
 * Input: byte 0 picks whether the source can seek (bit 0), whether
 * compressed_bytes is given (bit 1), small limits (bit 2: 8 entries, 3
 * classes) and the read size (bits 4-7); the rest is the archive, served
 * from memory. Limits are always small (64 KiB per entry, 1 MiB in all)
 * so one run is fast.
 *
 * Besides memory safety and UB it checks the contract: 0 comes with a
 * profile (kind "images", images >= 1, a known layout) and an empty error;
 * a failure comes with *out NULL, err.code equal to the status, a known
 * status with a name, and a message. A tar that reads cleanly without a
 * seek callback gives the same profile with one.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "lib/imageset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property that failed: say which, then abort (libFuzzer saves the input). */
#define REQUIRE(c) do { if (!(c)) { fprintf(stderr, "%s:%d: property failed: %s\n", \
                                            __FILE__, __LINE__, #c); abort(); } } while (0)

struct mem {
    const uint8_t *p;
    size_t n, off, chunk;
};

static ssize_t mem_read(void *ctx, const void **buf)
{
    struct mem *m = ctx;
    if (m->off >= m->n) return 0;
    size_t k = m->n - m->off < m->chunk ? m->n - m->off : m->chunk;
    *buf = m->p + m->off;
    m->off += k;
    return (ssize_t)k;
}

static int64_t mem_seek(void *ctx, int64_t offset, int whence)
{
    struct mem *m = ctx;
    int64_t base;
    switch (whence) {
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: base = (int64_t)m->off; break;
    case SEEK_END: base = (int64_t)m->n; break;
    default: return -1;
    }
    if ((offset > 0 && base > INT64_MAX - offset)) return -1;
    int64_t to = base + offset;
    if (to < 0) return -1;
    m->off = (size_t)to > m->n ? m->n : (size_t)to; /* past the end reads as EOF */
    return to;
}

static int check(int rc, cJSON *out, const struct imageset_error *e)
{
    if (getenv("FUZZ_VERBOSE")) fprintf(stderr, "imageset: %d %s\n", rc, rc ? e->message : "ok");
    if (rc == 0) {
        REQUIRE(out != NULL && e->code == 0);
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(out, "kind");
        const cJSON *layout = cJSON_GetObjectItemCaseSensitive(out, "layout");
        const cJSON *images = cJSON_GetObjectItemCaseSensitive(out, "images");
        REQUIRE(!(!cJSON_IsString(kind) || strcmp(kind->valuestring, "images") != 0));
        REQUIRE(!(!cJSON_IsString(layout) || (strcmp(layout->valuestring, "folders") != 0 &&
                                        strcmp(layout->valuestring, "idx") != 0)));
        REQUIRE(!(!cJSON_IsNumber(images) || images->valuedouble < 1));
        char *txt = cJSON_PrintUnformatted(out);
        REQUIRE(txt != NULL);
        free(txt);
        cJSON_Delete(out);
    } else {
        REQUIRE(out == NULL && e->code == rc && rc >= IMAGESET_EARG && rc <= IMAGESET_ENOMEM);
        REQUIRE(imageset_strerror(rc) != NULL && e->message[0] != '\0');
        REQUIRE(memchr(e->message, 0, sizeof e->message) != NULL);
        REQUIRE(memchr(e->entry, 0, sizeof e->entry) != NULL);
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t sel = data[0];
    static const size_t chunks[16] = {1, 7, 64, 511, 512, 513, 1000, 4096,
                                      10240, 65536, 3, 100, 2048, 8192, 16384, 1 << 20};
    struct mem m = {data + 1, size - 1, 0, chunks[sel >> 4]};
    struct imageset_source src = {&m, mem_read, (sel & 1) ? mem_seek : NULL};
    struct imageset_limits lim = {
        .max_entries = (sel & 4) ? 8 : 64,
        .max_entry_bytes = 64 << 10,
        .max_total_bytes = 1 << 20,
        .compressed_bytes = (sel & 2) ? size - 1 : 0,
        .max_classes = (sel & 4) ? 3 : 16,
    };
    struct imageset_error e;
    memset(&e, 0xAA, sizeof e); /* the library must fill it */
    cJSON *out = (cJSON *)&m; /* and set *out on failure too */
    int rc = check(imageset_profile(&src, &lim, &out, &e), out, &e);

    /* A tar needs no seeking: one that reads cleanly streaming must read
     * the same when the source can seek. (Not the converse: with a seek
     * callback libarchive also bids the seekable zip reader, which finds a
     * central directory at the end of a tar/zip polyglot; and a zip that
     * happens to hold "ustar" at 257 is read from its local headers when
     * streaming but from its central directory when seeking.) */
    if ((sel & 1) && size - 1 >= 262 && memcmp(data + 1 + 257, "ustar", 5) == 0 &&
        memcmp(data + 1, "PK", 2) != 0) {
        struct mem m1 = {data + 1, size - 1, 0, chunks[sel >> 4]};
        struct mem m2 = m1;
        struct imageset_source s1 = {&m1, mem_read, mem_seek};
        struct imageset_source s2 = {&m2, mem_read, NULL};
        cJSON *o1 = NULL, *o2 = NULL;
        struct imageset_error e1, e2;
        if (imageset_profile(&s2, &lim, &o2, &e2) == 0) {
            REQUIRE(imageset_profile(&s1, &lim, &o1, &e1) == 0);
            char *t1 = cJSON_PrintUnformatted(o1), *t2 = cJSON_PrintUnformatted(o2);
            REQUIRE(t1 != NULL && t2 != NULL && strcmp(t1, t2) == 0);
            free(t1);
            free(t2);
        }
        cJSON_Delete(o1);
        cJSON_Delete(o2);
    }
    (void)rc;
    return 0;
}
