/*
 * fuzz_csv.c - libFuzzer entry point for lib/csv and lib/profile (not built
 * by the Makefile). Build and run, from the repository root:
 *
 *   clang -std=c11 -D_GNU_SOURCE -I. -I/usr/include/cjson -g -O1 \
 *       -fsanitize=fuzzer,address,undefined tests/fuzz/fuzz_csv.c \
 *       lib/csv.c lib/profile.c -lcjson -lm -o build/fuzz_csv
 *   mkdir -p build/fuzz-corpus && cp tests/data/tabular/[A-Za-z]*.csv build/fuzz-corpus/
 *   ./build/fuzz_csv -max_len=4096 -max_total_time=60 build/fuzz-corpus
 *
 * The first input byte picks the options (delimiter or sniffing, small
 * limits, ragged rows allowed or not) and a chunk size; the rest is the CSV.
 * Besides memory errors it checks one property: the records and the error
 * (code, line, column) are the same whether the input arrives whole or in
 * chunks. Then the same input goes through the table loader and the
 * profiler, whose JSON must print.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "lib/csv.h"
#include "lib/profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct digest {
    uint64_t h;
    uint64_t records;
};

static int digest_cb(void *ctx, const struct csv_record *r)
{
    struct digest *d = ctx;
    uint64_t h = d->h ^ (r->line * 0x9E3779B97F4A7C15ULL) ^ r->n_fields;
    for (size_t i = 0; i < r->n_fields; i++) {
        if (r->fields[i].ptr[r->fields[i].len] != '\0') __builtin_trap();
        if (memchr(r->fields[i].ptr, 0, r->fields[i].len) != NULL) __builtin_trap();
        for (size_t k = 0; k < r->fields[i].len; k++)
            h = (h ^ (unsigned char)r->fields[i].ptr[k]) * 1099511628211ULL;
        h = (h ^ (uint64_t)(r->fields[i].quoted + 2)) * 1099511628211ULL;
    }
    d->h = h;
    d->records++;
    return 0;
}

static int run(const struct csv_opts *o, const char *s, size_t n, size_t chunk,
               struct digest *d, struct csv_error *e)
{
    struct csv_parser *p = csv_parser_new(o, digest_cb, d);
    if (p == NULL) return -100;
    int rc = 0;
    for (size_t off = 0; off < n && rc == 0; off += chunk)
        rc = csv_parser_feed(p, s + off, n - off < chunk ? n - off : chunk);
    if (rc == 0) rc = csv_parser_finish(p);
    *e = *csv_parser_error(p);
    csv_parser_free(p);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t sel = data[0];
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    static const char delims[4] = {0, ',', ';', '\t'};
    struct csv_opts o = {.delimiter = delims[sel & 3], .allow_ragged = (sel >> 2) & 1};
    if (sel & 8) {
        o.max_field_bytes = 16;
        o.max_record_bytes = 64;
        o.max_columns = 8;
        o.sniff_bytes = 32;
    }
    size_t chunk = 1 + (sel >> 4);

    struct digest a = {0, 0}, b = {0, 0};
    struct csv_error ea, eb;
    int ra = run(&o, s, n, n ? n : 1, &a, &ea);
    int rb = run(&o, s, n, chunk, &b, &eb);
    /* sniffing on a sample that depends on the chunking is not possible: the
     * window is a byte count, so both runs see the same sample */
    if (ra != rb || a.h != b.h || a.records != b.records) __builtin_trap();
    if (ra != 0 && (ea.line != eb.line || ea.column != eb.column || ea.code != eb.code)) __builtin_trap();

    struct csv_table t;
    if (csv_table_load_buffer(s, n, &o, &t, NULL) == 0) {
        for (size_t r = 0; r < t.n_rows; r++)
            for (size_t c = 0; c < t.n_cols; c++)
                if (csv_table_cell(&t, r, c) == NULL) __builtin_trap();
        csv_table_free(&t);
    }

    struct profile_opts po = {.distinct_cap = 4};
    cJSON *j = NULL;
    if (profile_buffer(s, n, &o, &po, &j, NULL) == 0) {
        char *out = cJSON_PrintUnformatted(j);
        if (out == NULL) __builtin_trap();
        free(out);
        cJSON_Delete(j);
    }
    return 0;
}
