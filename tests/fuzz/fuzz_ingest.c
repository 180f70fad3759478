/*
 * fuzz_ingest.c - libFuzzer entry point for server/ingest (the upload
 * content pipeline: format sniffing, gzip through lib/gunzip, CSV through
 * lib/csv and lib/profile). Not built by the Makefile; tests/fuzz/run.sh
 * builds and runs it. By hand, from the repository root:
 *
 *   clang -std=c11 -D_GNU_SOURCE -I. $(pkg-config --cflags libcjson zlib) -g -O1 \
 *       -fsanitize=fuzzer,address,undefined tests/fuzz/fuzz_ingest.c \
 *       server/ingest.c lib/gunzip.c lib/csv.c lib/profile.c \
 *       $(pkg-config --libs libcjson zlib) -lm -o build/fuzz/fuzz_ingest
 *   ./build/fuzz/fuzz_ingest -max_len=8192 -max_total_time=60 build/fuzz-corpus/ingest
 *
 * Input: byte 0 picks the declared content type (bits 0-2: any, csv, gzip,
 * zip, tar; 5-7 = any), small limits or not (bit 3: a 4 KiB decompression
 * cap, small CSV limits, distinct_cap 4) and the chunk size (bits 4-7, an
 * index into a table that straddles the 512-byte sniff window); the rest
 * is the body.
 *
 * Besides memory safety and UB it checks one property: the outcome is the
 * same whether the body arrives whole or in chunks - the format, the return
 * code, the error (status, slug, detail, line, column) and the profile's
 * JSON text. A successful CSV must give a profile; a failure must give a
 * 4xx/5xx status and a slug. FUZZ_VERBOSE=1 prints both outcomes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "server/ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property that failed: say which, then abort (libFuzzer saves the input). */
#define REQUIRE(c) do { if (!(c)) { fprintf(stderr, "%s:%d: property failed: %s\n", \
                                            __FILE__, __LINE__, #c); abort(); } } while (0)

struct outcome {
    int rc;
    enum ingest_format format;
    struct ingest_error err;
    char *json;
};

static void run(const struct ingest_opts *o, const char *s, size_t n, size_t chunk,
                struct outcome *out)
{
    memset(out, 0, sizeof *out);
    struct ingest *in = ingest_new(o);
    REQUIRE(in != NULL);
    int rc = 0;
    for (size_t off = 0; off < n && rc == 0; off += chunk)
        rc = ingest_feed(in, s + off, n - off < chunk ? n - off : chunk);
    if (rc == 0) rc = ingest_finish(in);
    out->rc = rc;
    out->format = ingest_format(in);
    out->err = *ingest_error(in);
    /* ingest_format_name must cover every format it reports */
    REQUIRE(ingest_format_name(out->format) != NULL);
    cJSON *j = ingest_take_profile(in);
    if (j != NULL) {
        out->json = cJSON_PrintUnformatted(j);
        REQUIRE(out->json != NULL);
        cJSON_Delete(j);
    }
    if (rc == 0 && (out->format == INGEST_CSV || out->format == INGEST_CSV_GZ)) REQUIRE(out->json != NULL);
    if (rc != 0) REQUIRE(out->err.status >= 400 && out->err.status <= 599 && out->err.slug[0] != '\0');
    ingest_free(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t sel = data[0];
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    static const size_t chunks[16] = {1, 2, 3, 7, 13, 64, 100, 255,
                                      256, 511, 512, 513, 700, 1024, 1500, 4096};
    struct ingest_opts o;
    memset(&o, 0, sizeof o);
    o.declared = (sel & 7) <= 4 ? (enum ingest_declared)(sel & 7) : INGEST_DECLARED_ANY;
    if (sel & 8) {
        o.max_decompressed = 4096;
        o.csv.max_field_bytes = 16;
        o.csv.max_record_bytes = 64;
        o.csv.max_columns = 8;
        o.csv.sniff_bytes = 32;
        o.profile.distinct_cap = 4;
        o.profile.top_k = 2;
    } else {
        o.max_decompressed = 1u << 20;
    }
    size_t chunk = chunks[sel >> 4];

    struct outcome a, b;
    run(&o, s, n, n ? n : 1, &a);
    run(&o, s, n, chunk, &b);
    if (getenv("FUZZ_VERBOSE"))
        for (int i = 0; i < 2; i++) {
            const struct outcome *x = i ? &b : &a;
            fprintf(stderr, "%s: rc %d format %s status %u slug %s line %llu col %llu: %s\n",
                    i ? "chunked" : "whole", x->rc, ingest_format_name(x->format), x->err.status,
                    x->err.slug, (unsigned long long)x->err.line,
                    (unsigned long long)x->err.column, x->err.detail);
        }
    REQUIRE(a.rc == b.rc && a.format == b.format);
    if (a.rc != 0) {
        REQUIRE(a.err.status == b.err.status);
        REQUIRE(strcmp(a.err.slug, b.err.slug) == 0);
        REQUIRE(strcmp(a.err.detail, b.err.detail) == 0);
        REQUIRE(a.err.line == b.err.line && a.err.column == b.err.column);
    }
    REQUIRE((a.json == NULL) == (b.json == NULL));
    REQUIRE(a.json == NULL || strcmp(a.json, b.json) == 0);
    free(a.json);
    free(b.json);
    return 0;
}
