/*
 * gunzip.h - push-style gzip decompression with a bound on what comes out.
 *
 * Bytes go in as they arrive (an upload's chunks, a large object's reads);
 * decompressed bytes come out through a callback, so nothing is held whole.
 * A limit on the decompressed total and on the compression ratio stops a
 * gzip bomb after at most one output block past the limit. Concatenated
 * gzip members (what `cat a.gz b.gz` makes) are one stream, as gzip(1)
 * reads them.
 */
#ifndef PODIUM_LIB_GUNZIP_H
#define PODIUM_LIB_GUNZIP_H

#include <stddef.h>
#include <stdint.h>

enum gunzip_status {
    GUNZIP_OK = 0,
    GUNZIP_ENOMEM = -1,
    GUNZIP_EDATA = -2,      /* not gzip, or corrupt */
    GUNZIP_ETRUNCATED = -3, /* ended inside a member */
    GUNZIP_ELIMIT = -4,     /* decompressed size or ratio over the limit */
    GUNZIP_ESTOPPED = -5,   /* the output callback returned non-zero */
};

/* Receives decompressed bytes; non-zero stops decompression. */
typedef int (*gunzip_out_fn)(void *ctx, const char *data, size_t len);

struct gunzip;

/* max_out: decompressed bytes allowed (0 = no limit); max_ratio: output /
 * input allowed once the output passes 16 MiB (0 = no limit). */
struct gunzip *gunzip_new(uint64_t max_out, double max_ratio, gunzip_out_fn fn, void *ctx);
void gunzip_free(struct gunzip *g);

int gunzip_feed(struct gunzip *g, const void *data, size_t len);
/* End of input: GUNZIP_ETRUNCATED if a member is unfinished. */
int gunzip_finish(struct gunzip *g);

uint64_t gunzip_total_in(const struct gunzip *g);
uint64_t gunzip_total_out(const struct gunzip *g);

/* 1 if data starts with the gzip magic bytes. */
int gunzip_is_gzip(const void *data, size_t len);

#endif
