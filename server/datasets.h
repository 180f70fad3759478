/*
 * datasets.h - the data set resources: upload (upload.c streams the body),
 * listing, reading back, preview, deletion.
 */
#ifndef PODIUM_SERVER_DATASETS_H
#define PODIUM_SERVER_DATASETS_H

#include <stdint.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "lib/crypto.h"
#include "server/http.h"
#include "server/router.h"

/* POST /v1/datasets, streamed. */
extern const struct route_stream datasets_upload;

int datasets_list(struct http_req *r);
int datasets_get(struct http_req *r);
int datasets_content(struct http_req *r);
int datasets_preview(struct http_req *r);
int datasets_delete(struct http_req *r);

/* What an upload hands over to be recorded. */
struct dataset_new {
    const char *team_id;
    const char *name;
    const char *kind;           /* "tabular" or "images" */
    const char *format;         /* "csv", "zip", ... */
    const char *content_type;   /* answered on download */
    Oid lo;                     /* the new large object holding the bytes */
    int zstd;                   /* ...compressed */
    uint64_t size;
    unsigned char sha256[CRYPTO_SHA256_LEN];
    const cJSON *profile;
};

/* In db's open transaction: find or record the blob (unlinking d->lo when
 * the team has these bytes already) and insert the data set. Returns its
 * JSON, or NULL with the failed result in *res (NULL result: out of
 * memory). */
cJSON *datasets_insert(PGconn *db, const struct dataset_new *d, PGresult **res);

#endif
