/*
 * ingest.h - what an upload's bytes are, decided and checked as they
 * stream in, with no database and no HTTP (so it is tested on its own).
 *
 * The first bytes tell the format (magic numbers, not the file name): zip,
 * gzip (then the first decompressed bytes tell .csv.gz from .tar.gz), tar,
 * or else CSV text. CSV, plain or gzip'd, is parsed and profiled while it
 * streams in (lib/csv, lib/profile); archives are only recognised here and
 * profiled after the upload from the stored copy (lib/imageset), since a
 * zip's directory is at its end. A declared Content-Type must agree with
 * the content.
 *
 * Memory: one CSV record, the profile's bounded sketches, zlib's window.
 */
#ifndef PODIUM_SERVER_INGEST_H
#define PODIUM_SERVER_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "lib/csv.h"
#include "lib/profile.h"

/* What the client said the body is. */
enum ingest_declared {
    INGEST_DECLARED_ANY = 0,    /* application/octet-stream, a form's file part */
    INGEST_DECLARED_CSV,        /* text/csv */
    INGEST_DECLARED_GZIP,       /* application/gzip */
    INGEST_DECLARED_ZIP,        /* application/zip */
    INGEST_DECLARED_TAR,        /* application/x-tar */
};

enum ingest_format {
    INGEST_UNKNOWN = 0,
    INGEST_CSV,
    INGEST_CSV_GZ,
    INGEST_ZIP,
    INGEST_TAR,
    INGEST_TAR_GZ,
};

struct ingest_opts {
    enum ingest_declared declared;
    struct csv_opts csv;
    struct profile_opts profile;
    uint64_t max_decompressed;  /* .csv.gz: decompressed bytes allowed */
};

/* Why the content was refused: the HTTP answer to give. */
struct ingest_error {
    unsigned status;            /* 415, 422, 500 */
    char slug[40];              /* problem type */
    char detail[512];
    uint64_t line, column;      /* CSV position, 0 when n/a */
};

struct ingest;

/* Map a Content-Type header value to what it declares; -1 when it is not
 * one we take. */
int ingest_declared_from_type(const char *content_type, enum ingest_declared *out);

struct ingest *ingest_new(const struct ingest_opts *opts);
void ingest_free(struct ingest *in);

/* Push body bytes. 0, or -1 with ingest_error set. */
int ingest_feed(struct ingest *in, const char *data, size_t len);
/* End of body. 0, or -1 with ingest_error set. */
int ingest_finish(struct ingest *in);

const struct ingest_error *ingest_error(const struct ingest *in);
enum ingest_format ingest_format(const struct ingest *in);
/* "csv", "csv.gz", "zip", "tar", "tar.gz". */
const char *ingest_format_name(enum ingest_format f);
/* 1 for zip/tar/tar.gz (to be profiled as images). */
int ingest_is_archive(enum ingest_format f);
/* The tabular profile after a successful finish (the caller owns it). */
cJSON *ingest_take_profile(struct ingest *in);

#endif
