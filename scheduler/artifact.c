/*
 * artifact.c - upload a trial's files and results (artifact.h). Thread pool.
 */
#include "scheduler/artifact.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/blob.h"
#include "lib/crypto.h"
#include "lib/db.h"

/* Copy a file into a new large object; 0, ARTIFACT_EFILE or ARTIFACT_EDB. */
static int upload(PGconn *db, const char *path, Oid *oid, unsigned char sha[CRYPTO_SHA256_LEN],
                  char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return ARTIFACT_EFILE;
    }
    int rc = ARTIFACT_EDB;
    char *buf = malloc(1 << 20);
    struct blob_writer *w = buf ? blob_writer_new(db, err, errlen) : NULL;
    if (w == NULL) goto out;
    size_t n;
    while ((n = fread(buf, 1, 1 << 20, f)) > 0)
        if (blob_writer_write(w, buf, n, err, errlen) < 0) goto out;
    if (ferror(f)) {
        snprintf(err, errlen, "read %s failed", path);
        rc = ARTIFACT_EFILE;
        goto out;
    }
    if (blob_writer_close(w, err, errlen) < 0) goto out;
    *oid = blob_writer_oid(w);
    if (sha) blob_writer_sha256(w, sha);
    rc = 0;
out:
    blob_writer_free(w);
    free(buf);
    fclose(f);
    return rc;
}

int artifact_store(PGconn *db, const struct artifact_store *a, char *err, size_t errlen)
{
    PGresult *res = PQexec(db, "BEGIN");
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok) {
        db_error(db, err, errlen);
        return ARTIFACT_EDB;
    }
    Oid model = 0, oof = 0;
    unsigned char sha[CRYPTO_SHA256_LEN];
    int rc = upload(db, a->model_path, &model, sha, err, errlen);
    if (rc == 0 && a->oof_path) rc = upload(db, a->oof_path, &oof, NULL, err, errlen);
    if (rc != 0) goto rollback;

    char model_s[16], oof_s[16], sha_hex[2 * CRYPTO_SHA256_LEN + 3] = "\\x";
    snprintf(model_s, sizeof model_s, "%u", model);
    snprintf(oof_s, sizeof oof_s, "%u", oof);
    crypto_hex(sha, sizeof sha, sha_hex + 2);
    const char *v[] = {a->trial_id, a->owner, model_s, sha_hex, a->oof_path ? oof_s : NULL,
                       a->metrics, a->score, a->score_std, a->fit_seconds,
                       a->predict_us_per_row, a->model_bytes, a->progress,
                       a->learning_curve, a->stderr_tail};
    res = PQexecParams(db,
                       "UPDATE trials SET state = 'succeeded', artifact_lo = $3::oid, "
                       "artifact_sha256 = $4::bytea, oof_lo = $5::oid, metrics = $6::jsonb, "
                       "score = $7::float8, score_std = $8::float8, fit_seconds = $9::float8, "
                       "predict_us_per_row = $10::float8, model_bytes = $11::bigint, "
                       "progress = coalesce($12::jsonb, progress), "
                       "learning_curve = coalesce($13::jsonb, learning_curve), "
                       "stderr_tail = $14, finished_at = now(), lease_expires_at = NULL "
                       "WHERE id = $1::uuid AND lease_owner = $2 AND state = 'running' "
                       "RETURNING id",
                       14, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_error(db, err, errlen);
        PQclear(res);
        rc = ARTIFACT_EDB;
        goto rollback;
    }
    int rows = PQntuples(res);
    PQclear(res);
    if (rows == 0) {
        rc = ARTIFACT_LEASE_LOST;
        goto rollback;
    }
    res = PQexec(db, "COMMIT");
    ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok) {
        db_error(db, err, errlen);
        return ARTIFACT_EDB;
    }
    return ARTIFACT_STORED;
rollback:
    PQclear(PQexec(db, "ROLLBACK"));
    return rc;
}
