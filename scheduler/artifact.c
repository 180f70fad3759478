/*
 * artifact.c - upload a trial's files and results, and download a stored
 * trial's files for an ensemble (artifact.h). Thread pool.
 */
#include "scheduler/artifact.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    int rc = a->model_path ? upload(db, a->model_path, &model, sha, err, errlen) : 0;
    if (rc == 0 && a->oof_path) rc = upload(db, a->oof_path, &oof, NULL, err, errlen);
    if (rc != 0) goto rollback;

    char model_s[16], oof_s[16], sha_hex[2 * CRYPTO_SHA256_LEN + 3] = "\\x";
    snprintf(model_s, sizeof model_s, "%u", model);
    snprintf(oof_s, sizeof oof_s, "%u", oof);
    crypto_hex(sha, sizeof sha, sha_hex + 2);
    const char *v[] = {a->trial_id, a->owner, a->model_path ? model_s : NULL,
                       a->model_path ? sha_hex : NULL, a->oof_path ? oof_s : NULL,
                       a->metrics, a->score, a->score_std, a->fit_seconds,
                       a->predict_us_per_row, a->model_bytes, a->progress,
                       a->learning_curve, a->stderr_tail, a->details};
    res = PQexecParams(db,
                       "UPDATE trials SET state = 'succeeded', artifact_lo = $3::oid, "
                       "artifact_sha256 = $4::bytea, oof_lo = $5::oid, metrics = $6::jsonb, "
                       "score = $7::float8, score_std = $8::float8, fit_seconds = $9::float8, "
                       "predict_us_per_row = $10::float8, model_bytes = $11::bigint, "
                       "progress = coalesce($12::jsonb, progress), "
                       "learning_curve = coalesce($13::jsonb, learning_curve), "
                       "stderr_tail = $14, details = $15::jsonb, finished_at = now(), "
                       "lease_expires_at = NULL "
                       "WHERE id = $1::uuid AND lease_owner = $2 AND state = 'running' "
                       "RETURNING id",
                       15, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        db_error(db, err, errlen);
        rc = state && (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0)
                 ? ARTIFACT_EDATA : ARTIFACT_EDB;
        PQclear(res);
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

/* One large object into path (via path.tmp). In the caller's transaction. */
static int download(PGconn *db, Oid lo, const char *path, char *err, size_t errlen)
{
    char tmp[1400];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (f == NULL) {
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        return ARTIFACT_EFILE;
    }
    int rc = ARTIFACT_EDB;
    struct blob_reader *b = blob_reader_open(db, lo, 0, err, errlen);
    if (b) {
        for (;;) {
            const void *chunk;
            ssize_t got = blob_reader_read(b, &chunk);
            if (got < 0) {
                db_error(db, err, errlen);
                break;
            }
            if (got == 0) {
                rc = 0;
                break;
            }
            if (fwrite(chunk, 1, (size_t)got, f) != (size_t)got) {
                snprintf(err, errlen, "write %s failed", tmp);
                rc = ARTIFACT_EFILE;
                break;
            }
        }
        blob_reader_close(b);
    }
    if (fclose(f) != 0 && rc == 0) {
        snprintf(err, errlen, "write %s failed", tmp);
        rc = ARTIFACT_EFILE;
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        snprintf(err, errlen, "rename %s failed: %s", tmp, strerror(errno));
        rc = ARTIFACT_EFILE;
    }
    if (rc != 0) unlink(tmp);
    return rc;
}

int artifact_fetch(PGconn *db, const char *trial_id, const char *model_path,
                   const char *oof_path, char *err, size_t errlen)
{
    PGresult *res = PQexec(db, "BEGIN READ ONLY");
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok) {
        db_error(db, err, errlen);
        return ARTIFACT_EDB;
    }
    const char *v[] = {trial_id};
    res = PQexecParams(db,
                       "SELECT artifact_lo, oof_lo FROM trials WHERE id = $1::uuid "
                       "AND state = 'succeeded' AND artifact_lo IS NOT NULL AND oof_lo IS NOT NULL",
                       1, NULL, v, NULL, NULL, 0);
    int rc;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_error(db, err, errlen);
        rc = ARTIFACT_EDB;
    } else if (PQntuples(res) != 1) {
        snprintf(err, errlen, "trial %s has no stored model and OOF predictions", trial_id);
        rc = ARTIFACT_EFILE;
    } else {
        Oid model = (Oid)strtoul(PQgetvalue(res, 0, 0), NULL, 10);
        Oid oof = (Oid)strtoul(PQgetvalue(res, 0, 1), NULL, 10);
        rc = download(db, model, model_path, err, errlen);
        if (rc == 0) rc = download(db, oof, oof_path, err, errlen);
    }
    PQclear(res);
    PQclear(PQexec(db, "ROLLBACK"));
    return rc;
}
