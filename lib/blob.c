/* blob.c - see blob.h. */
#include "lib/blob.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq/libpq-fs.h>
#include <openssl/evp.h>
#include <zstd.h>

#include "lib/db.h"

#define BLOCK (1u << 20)

/* The writer keeps two 1 MiB buffers: the request's thread fills one
 * while a thread of the writer's own sends the other to PostgreSQL, so
 * parsing and profiling overlap the database's work instead of waiting
 * for it. The connection is used by that thread only between the first
 * write and close; the caller must not touch it meanwhile. */
struct blob_writer {
    PGconn *db;
    Oid oid;
    int fd;
    EVP_MD_CTX *sha;
    unsigned char digest[CRYPTO_SHA256_LEN];
    uint64_t size;

    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *buf[2];
    size_t len[2];
    int full[2];          /* handed to the thread, not yet written */
    int fill;             /* the buffer the caller fills */
    int next;             /* the buffer the thread writes next */
    int stop;
    int failed;
    int started;          /* a buffer has been handed over */
    char err[256];

    /* zstd: the thread compresses each buffer into zbuf before writing. */
    ZSTD_CCtx *zc;
    char *zbuf;
    size_t zcap;
};

/* Write n bytes to the large object (the writer's thread). */
static int lo_write_all(struct blob_writer *w, const char *p, size_t n, char *err, size_t errlen)
{
    size_t off = 0;
    while (off < n) {
        int wrote = lo_write(w->db, w->fd, p + off, n - off);
        if (wrote <= 0) {
            db_error(w->db, err, errlen);
            return -1;
        }
        off += (size_t)wrote;
    }
    return 0;
}

/* Compress (when zstd) and write one buffer; last ends the zstd frame. */
static int write_block(struct blob_writer *w, const char *p, size_t n, int last, char *err,
                       size_t errlen)
{
    if (w->zc == NULL) return lo_write_all(w, p, n, err, errlen);
    ZSTD_inBuffer in = {p, n, 0};
    for (;;) {
        ZSTD_outBuffer out = {w->zbuf, w->zcap, 0};
        size_t left = ZSTD_compressStream2(w->zc, &out, &in, last ? ZSTD_e_end : ZSTD_e_continue);
        if (ZSTD_isError(left)) {
            snprintf(err, errlen, "zstd: %s", ZSTD_getErrorName(left));
            return -1;
        }
        if (out.pos > 0 && lo_write_all(w, w->zbuf, out.pos, err, errlen) < 0) return -1;
        if (last ? left == 0 : in.pos == in.size) return 0;
    }
}

/* The writing thread: send full buffers in order until told to stop. */
static void *writer_main(void *arg)
{
    struct blob_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->full[w->next] && !w->stop) pthread_cond_wait(&w->cv, &w->mu);
        if (!w->full[w->next]) break; /* stopped with nothing left */
        int i = w->next;
        size_t n = w->len[i];
        int last = w->stop;   /* close hands the final buffer over with stop set */
        pthread_mutex_unlock(&w->mu);
        char err[256] = "";
        int rc = write_block(w, w->buf[i], n, last, err, sizeof err);
        pthread_mutex_lock(&w->mu);
        if (rc < 0 && !w->failed) {
            w->failed = 1;
            snprintf(w->err, sizeof w->err, "%s", err);
        }
        w->len[i] = 0;
        w->full[i] = 0;
        w->next = 1 - i;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

struct blob_writer *blob_writer_new(PGconn *db, char *err, size_t errlen)
{
    struct blob_writer *w = calloc(1, sizeof *w);
    if (w == NULL) goto oom;
    w->fd = -1;
    w->db = db;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->buf[0] = malloc(BLOCK);
    w->buf[1] = malloc(BLOCK);
    w->sha = EVP_MD_CTX_new();
    if (w->buf[0] == NULL || w->buf[1] == NULL || w->sha == NULL) goto oom;
    if (EVP_DigestInit_ex(w->sha, EVP_sha256(), NULL) != 1) goto oom;
    w->oid = lo_creat(db, INV_READ | INV_WRITE);
    if (w->oid == InvalidOid) goto db_fail;
    w->fd = lo_open(db, w->oid, INV_WRITE);
    if (w->fd < 0) goto db_fail;
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) goto oom;
    w->thread_started = 1;
    return w;
oom:
    snprintf(err, errlen, "out of memory");
    blob_writer_free(w);
    return NULL;
db_fail:
    db_error(db, err, errlen);
    blob_writer_free(w);
    return NULL;
}

/* Hand the buffer being filled to the thread and wait for the other one
 * to be free. Called with the lock held. */
static void hand_over(struct blob_writer *w)
{
    w->started = 1;
    w->full[w->fill] = 1;
    pthread_cond_broadcast(&w->cv);
    w->fill = 1 - w->fill;
    while (w->full[w->fill]) pthread_cond_wait(&w->cv, &w->mu);
}

int blob_writer_write(struct blob_writer *w, const void *data, size_t n, char *err, size_t errlen)
{
    const char *p = data;
    EVP_DigestUpdate(w->sha, data, n);
    w->size += n;
    pthread_mutex_lock(&w->mu);
    while (n > 0 && !w->failed) {
        int i = w->fill;
        size_t take = BLOCK - w->len[i] < n ? BLOCK - w->len[i] : n;
        /* The filled buffer is the caller's alone: copy without the lock. */
        pthread_mutex_unlock(&w->mu);
        memcpy(w->buf[i] + w->len[i], p, take);
        pthread_mutex_lock(&w->mu);
        w->len[i] += take;
        p += take;
        n -= take;
        if (w->len[i] == BLOCK) hand_over(w);
    }
    int failed = w->failed;
    if (failed) snprintf(err, errlen, "%s", w->err);
    pthread_mutex_unlock(&w->mu);
    return failed ? -1 : 0;
}

/* Stop the thread after it has written everything handed over. */
static void stop_thread(struct blob_writer *w)
{
    if (!w->thread_started) return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    w->thread_started = 0;
}

int blob_writer_close(struct blob_writer *w, char *err, size_t errlen)
{
    pthread_mutex_lock(&w->mu);
    /* The last buffer goes with stop set, so a zstd frame is ended (an
     * empty last buffer still carries the frame's end). */
    /* Let the buffer before it finish first: only the last one may end
     * the frame. */
    while (w->full[1 - w->fill] && !w->failed) pthread_cond_wait(&w->cv, &w->mu);
    if ((w->len[w->fill] > 0 || w->zc) && !w->failed) {
        w->stop = 1;
        w->full[w->fill] = 1;
        pthread_cond_broadcast(&w->cv);
        while (w->full[w->fill] && !w->failed) pthread_cond_wait(&w->cv, &w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    stop_thread(w);
    if (w->failed) {
        snprintf(err, errlen, "%s", w->err);
        return -1;
    }
    unsigned int len = 0;
    EVP_DigestFinal_ex(w->sha, w->digest, &len);
    if (lo_close(w->db, w->fd) < 0) {
        db_error(w->db, err, errlen);
        return -1;
    }
    w->fd = -1;
    return 0;
}

Oid blob_writer_oid(const struct blob_writer *w) { return w->oid; }
uint64_t blob_writer_size(const struct blob_writer *w) { return w->size; }

void blob_writer_sha256(const struct blob_writer *w, unsigned char out[CRYPTO_SHA256_LEN])
{
    memcpy(out, w->digest, CRYPTO_SHA256_LEN);
}

int blob_writer_compress(struct blob_writer *w)
{
    pthread_mutex_lock(&w->mu);
    int too_late = w->started;
    pthread_mutex_unlock(&w->mu);
    if (too_late || w->zc) return -1;
    w->zcap = ZSTD_compressBound(BLOCK);
    w->zbuf = malloc(w->zcap);
    w->zc = ZSTD_createCCtx();
    if (w->zbuf == NULL || w->zc == NULL) {
        free(w->zbuf);
        ZSTD_freeCCtx(w->zc);
        w->zbuf = NULL;
        w->zc = NULL;
        return -1;
    }
    ZSTD_CCtx_setParameter(w->zc, ZSTD_c_compressionLevel, 1);
    return 0;
}

int blob_writer_compressed(const struct blob_writer *w) { return w->zc != NULL; }

void blob_writer_free(struct blob_writer *w)
{
    if (w == NULL) return;
    stop_thread(w);
    ZSTD_freeCCtx(w->zc);
    free(w->zbuf);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    EVP_MD_CTX_free(w->sha);
    free(w->buf[0]);
    free(w->buf[1]);
    free(w);
}

struct blob_reader {
    PGconn *db;
    int fd;
    char *buf;
    /* zstd: compressed bytes in zin[zpos..zlen), decompressed into buf */
    ZSTD_DCtx *zd;
    char *zin;
    size_t zpos, zlen;
    int eof;
    int frame_done;  /* the last zstd call finished a frame: a clean end */
};

#define READ_BLOCK (BLOCK / 4)

struct blob_reader *blob_reader_open(PGconn *db, Oid oid, int zstd, char *err, size_t errlen)
{
    struct blob_reader *r = calloc(1, sizeof *r);
    if (r == NULL || (r->buf = malloc(READ_BLOCK)) == NULL ||
        (zstd && ((r->zin = malloc(READ_BLOCK)) == NULL || (r->zd = ZSTD_createDCtx()) == NULL))) {
        if (r) {
            free(r->buf);
            free(r->zin);
            free(r);
        }
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->db = db;
    r->fd = lo_open(db, oid, INV_READ);
    if (r->fd < 0) {
        db_error(db, err, errlen);
        r->fd = -1;
        blob_reader_close(r);
        return NULL;
    }
    return r;
}

ssize_t blob_reader_read(struct blob_reader *r, const void **buf)
{
    *buf = r->buf;
    if (r->zd == NULL) {
        int n = lo_read(r->db, r->fd, r->buf, READ_BLOCK);
        return n < 0 ? -1 : n;
    }
    for (;;) {
        if (r->zpos == r->zlen && !r->eof) {
            int n = lo_read(r->db, r->fd, r->zin, READ_BLOCK);
            if (n < 0) return -1;
            if (n == 0) r->eof = 1;
            r->zpos = 0;
            r->zlen = (size_t)n;
        }
        if (r->eof && r->zpos == r->zlen) return r->frame_done ? 0 : -1; /* else: a cut frame */
        ZSTD_inBuffer in = {r->zin, r->zlen, r->zpos};
        ZSTD_outBuffer out = {r->buf, READ_BLOCK, 0};
        size_t rc = ZSTD_decompressStream(r->zd, &out, &in);
        if (ZSTD_isError(rc)) return -1;
        if (in.pos > r->zpos || out.pos > 0) r->frame_done = rc == 0;
        r->zpos = in.pos;
        if (out.pos > 0) return (ssize_t)out.pos;
    }
}

int64_t blob_reader_seek(struct blob_reader *r, int64_t offset, int whence)
{
    if (r->zd) return -1; /* compressed objects are read front to back */
    pg_int64 at = lo_lseek64(r->db, r->fd, offset, whence);
    return at < 0 ? -1 : (int64_t)at;
}

void blob_reader_close(struct blob_reader *r)
{
    if (r == NULL) return;
    if (r->fd >= 0) lo_close(r->db, r->fd);
    ZSTD_freeDCtx(r->zd);
    free(r->zin);
    free(r->buf);
    free(r);
}
