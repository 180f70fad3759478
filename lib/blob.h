/*
 * blob.h - file contents in PostgreSQL large objects.
 *
 * A blob_writer streams an upload into a new large object while computing
 * its SHA-256 and size. It writes 1 MiB at a time (a 1 GiB upload is a
 * thousand round trips, not a hundred thousand) from a thread of its own,
 * so the caller's parsing overlaps PostgreSQL's work; between
 * blob_writer_new and blob_writer_close (or _free) the connection belongs
 * to that thread. A blob_reader reads one
 * back in blocks, with seek, for libarchive and for downloads.
 *
 * Large objects are transactional: both must be used inside a transaction
 * on their connection, and a ROLLBACK removes a half-written object with
 * everything else the transaction did. That is what keeps a failed upload
 * from leaving anything behind.
 */
#ifndef PODIUM_LIB_BLOB_H
#define PODIUM_LIB_BLOB_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <libpq-fe.h>

#include "lib/crypto.h"

struct blob_writer;

/* A new large object on db (in an open transaction). NULL with err. */
struct blob_writer *blob_writer_new(PGconn *db, char *err, size_t errlen);
/* Store the object zstd-compressed (level 1: hundreds of MB/s, and a CSV
 * takes a third of the space or less). Only before the first MiB has been
 * handed over; -1 when too late or out of memory. */
int blob_writer_compress(struct blob_writer *w);
int blob_writer_compressed(const struct blob_writer *w);
/* Append n bytes. 0, or -1 with err (the database failed). */
int blob_writer_write(struct blob_writer *w, const void *data, size_t n, char *err, size_t errlen);
/* Flush and close the object. 0, or -1 with err. */
int blob_writer_close(struct blob_writer *w, char *err, size_t errlen);
Oid blob_writer_oid(const struct blob_writer *w);
uint64_t blob_writer_size(const struct blob_writer *w);
/* The SHA-256 of everything written (after close). */
void blob_writer_sha256(const struct blob_writer *w, unsigned char out[CRYPTO_SHA256_LEN]);
/* Free the writer (NULL-safe). The object itself stays until the
 * transaction rolls back or someone lo_unlinks it. */
void blob_writer_free(struct blob_writer *w);

struct blob_reader;

/* zstd: the object was written compressed; reads give the original bytes
 * (and seek is not available). */
struct blob_reader *blob_reader_open(PGconn *db, Oid oid, int zstd, char *err, size_t errlen);
/* Point *buf at the next bytes (valid until the next call); their count,
 * 0 at the end, -1 on error. */
ssize_t blob_reader_read(struct blob_reader *r, const void **buf);
/* lseek(2)-like; the new offset or -1. */
int64_t blob_reader_seek(struct blob_reader *r, int64_t offset, int whence);
void blob_reader_close(struct blob_reader *r);

#endif
