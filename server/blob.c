/* blob.c - see blob.h. */
#include "server/blob.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq/libpq-fs.h>
#include <openssl/evp.h>

#include "lib/db.h"

#define BLOCK (1u << 20)

struct blob_writer {
    PGconn *db;
    Oid oid;
    int fd;
    EVP_MD_CTX *sha;
    unsigned char digest[CRYPTO_SHA256_LEN];
    uint64_t size;
    size_t len;
    char *buf;
};

struct blob_writer *blob_writer_new(PGconn *db, char *err, size_t errlen)
{
    struct blob_writer *w = calloc(1, sizeof *w);
    if (w == NULL) goto oom;
    w->fd = -1;
    w->db = db;
    w->buf = malloc(BLOCK);
    w->sha = EVP_MD_CTX_new();
    if (w->buf == NULL || w->sha == NULL) goto oom;
    if (EVP_DigestInit_ex(w->sha, EVP_sha256(), NULL) != 1) goto oom;
    w->oid = lo_creat(db, INV_READ | INV_WRITE);
    if (w->oid == InvalidOid) goto db_fail;
    w->fd = lo_open(db, w->oid, INV_WRITE);
    if (w->fd < 0) goto db_fail;
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

static int flush(struct blob_writer *w, char *err, size_t errlen)
{
    size_t off = 0;
    while (off < w->len) {
        int n = lo_write(w->db, w->fd, w->buf + off, w->len - off);
        if (n <= 0) {
            db_error(w->db, err, errlen);
            return -1;
        }
        off += (size_t)n;
    }
    w->len = 0;
    return 0;
}

int blob_writer_write(struct blob_writer *w, const void *data, size_t n, char *err, size_t errlen)
{
    const char *p = data;
    EVP_DigestUpdate(w->sha, data, n);
    w->size += n;
    while (n > 0) {
        size_t take = BLOCK - w->len < n ? BLOCK - w->len : n;
        memcpy(w->buf + w->len, p, take);
        w->len += take;
        p += take;
        n -= take;
        if (w->len == BLOCK && flush(w, err, errlen) < 0) return -1;
    }
    return 0;
}

int blob_writer_close(struct blob_writer *w, char *err, size_t errlen)
{
    if (flush(w, err, errlen) < 0) return -1;
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

void blob_writer_free(struct blob_writer *w)
{
    if (w == NULL) return;
    EVP_MD_CTX_free(w->sha);
    free(w->buf);
    free(w);
}

struct blob_reader {
    PGconn *db;
    int fd;
    char *buf;
};

struct blob_reader *blob_reader_open(PGconn *db, Oid oid, char *err, size_t errlen)
{
    struct blob_reader *r = calloc(1, sizeof *r);
    if (r == NULL || (r->buf = malloc(BLOCK / 4)) == NULL) {
        free(r);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->db = db;
    r->fd = lo_open(db, oid, INV_READ);
    if (r->fd < 0) {
        db_error(db, err, errlen);
        free(r->buf);
        free(r);
        return NULL;
    }
    return r;
}

ssize_t blob_reader_read(struct blob_reader *r, const void **buf)
{
    int n = lo_read(r->db, r->fd, r->buf, BLOCK / 4);
    *buf = r->buf;
    return n < 0 ? -1 : n;
}

int64_t blob_reader_seek(struct blob_reader *r, int64_t offset, int whence)
{
    pg_int64 at = lo_lseek64(r->db, r->fd, offset, whence);
    return at < 0 ? -1 : (int64_t)at;
}

void blob_reader_close(struct blob_reader *r)
{
    if (r == NULL) return;
    if (r->fd >= 0) lo_close(r->db, r->fd);
    free(r->buf);
    free(r);
}
