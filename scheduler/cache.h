/*
 * cache.h - the machine's content-addressed copy of data sets.
 *
 * A trial's data set is a blob in PostgreSQL (a large object, zstd or
 * identity encoded; a 'csv.gz' upload is gunzipped on the way). It is
 * copied once per machine to <dir>/<blob sha256 hex> (the uploaded bytes:
 * a CSV, an image archive), or <dir>/<sha>.gunzip for a 'csv.gz' upload
 * (the same blob may back a data set that wants it as it is): written under a
 * temporary name and renamed, so any number of schedulers sharing a
 * machine (and a folder) can fetch at once and nobody ever reads half a
 * file. Blocking: call cache_fetch from a uv_queue_work thread.
 */
#ifndef PODIUM_SCHEDULER_CACHE_H
#define PODIUM_SCHEDULER_CACHE_H

#include <stddef.h>

#include <libpq-fe.h>

struct cache_src {
    const char *sha256_hex;   /* 64 hex digits: the blob's */
    Oid lo;
    int zstd;                 /* blobs.encoding = 'zstd' */
    int gzip;                 /* datasets.format = 'csv.gz' */
    long long size;           /* blobs.size: the uploaded (uncompressed) bytes */
};

/* <dir>/<sha>[.gunzip] into out. 0, or -1 (sha not 64 hex digits, path
 * too long). */
int cache_path(const char *dir, const struct cache_src *src, char *out, size_t len);
/* 1 if the cached copy is there. */
int cache_has(const char *path);
/* Make sure the copy exists (creating dir). 0, or -1 with err. */
int cache_fetch(PGconn *db, const char *dir, const struct cache_src *src, char *err,
                size_t errlen);
/* mkdir -p. 0 or -1 with err. */
int cache_mkdirs(const char *dir, char *err, size_t errlen);

#endif
