/*
 * cache.c - the data set cache (cache.h). Runs on thread-pool threads.
 */
#include "scheduler/cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/blob.h"
#include "lib/db.h"
#include "lib/gunzip.h"

int cache_path(const char *dir, const struct cache_src *src, char *out, size_t len)
{
    const char *sha = src->sha256_hex;
    if (sha == NULL || strlen(sha) != 64 || strspn(sha, "0123456789abcdef") != 64) return -1;
    int n = snprintf(out, len, "%s/%s%s", dir, sha, src->gzip ? ".gunzip" : "");
    return n > 0 && (size_t)n < len ? 0 : -1;
}

int cache_has(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int cache_mkdirs(const char *dir, char *err, size_t errlen)
{
    char p[4096];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) {
        snprintf(err, errlen, "path too long");
        return -1;
    }
    for (char *c = p + 1;; c++) {
        if (*c == '/' || *c == '\0') {
            char save = *c;
            *c = '\0';
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                snprintf(err, errlen, "mkdir %s: %s", p, strerror(errno));
                return -1;
            }
            *c = save;
            if (save == '\0') break;
        }
    }
    return 0;
}

static int write_out(void *ctx, const char *data, size_t len)
{
    return fwrite(data, 1, len, ctx) == len ? 0 : -1;
}

int cache_fetch(PGconn *db, const char *dir, const struct cache_src *src, char *err,
                size_t errlen)
{
    char path[4096], tmp[4200];
    if (cache_path(dir, src, path, sizeof path) < 0) {
        snprintf(err, errlen, "bad blob hash or cache path");
        return -1;
    }
    if (cache_has(path)) return 0;
    if (cache_mkdirs(dir, err, errlen) < 0) return -1;
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%lx", path, (long)getpid(),
             (unsigned long)pthread_self());
    FILE *f = fopen(tmp, "wb");
    if (f == NULL) {
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    int rc = -1;
    struct blob_reader *r = NULL;
    struct gunzip *gz = NULL;
    PGresult *res = PQexec(db, "BEGIN READ ONLY");
    int began = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!began) {
        db_error(db, err, errlen);
        goto out;
    }
    r = blob_reader_open(db, src->lo, src->zstd, err, errlen);
    if (r == NULL) goto out;
    if (src->gzip && (gz = gunzip_new(0, 0, write_out, f)) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    long long total = 0;
    for (;;) {
        const void *buf;
        /* Stop at blobs.size: lib/blob.c's zstd reader reports an error
         * when asked for more after the frame's end (a fix is requested;
         * this stays correct after it). */
        if (src->zstd && src->size >= 0 && total >= src->size) break;
        ssize_t n = blob_reader_read(r, &buf);
        if (n > 0) total += n;
        if (n < 0) {
            db_error(db, err, errlen);
            if (!err[0]) snprintf(err, errlen, "reading the data set failed");
            goto out;
        }
        if (n == 0) break;
        if (gz ? gunzip_feed(gz, buf, (size_t)n) != GUNZIP_OK
               : fwrite(buf, 1, (size_t)n, f) != (size_t)n) {
            snprintf(err, errlen, gz ? "the data set is not valid gzip" : "write %s failed", tmp);
            goto out;
        }
    }
    if (gz && gunzip_finish(gz) != GUNZIP_OK) {
        snprintf(err, errlen, "the data set's gzip stream is truncated");
        goto out;
    }
    rc = 0;
out:
    gunzip_free(gz);
    blob_reader_close(r);
    if (began) PQclear(PQexec(db, rc == 0 ? "COMMIT" : "ROLLBACK"));
    if (fclose(f) != 0 && rc == 0) {
        snprintf(err, errlen, "write %s failed", tmp);
        rc = -1;
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        snprintf(err, errlen, "rename to %s: %s", path, strerror(errno));
        rc = -1;
    }
    if (rc != 0) unlink(tmp);
    return rc;
}
