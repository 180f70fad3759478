/*
 * artifact.h - storing a succeeded trial: its model file and out-of-fold
 * predictions become large objects and the trial row gets its results, in
 * one transaction that also checks the lease is still ours (so a trial
 * taken over by another scheduler is never written twice, and a failure
 * leaves nothing behind); and fetching a stored trial's files back for an
 * ensemble trial. Blocking: call from a uv_queue_work thread.
 */
#ifndef PODIUM_SCHEDULER_ARTIFACT_H
#define PODIUM_SCHEDULER_ARTIFACT_H

#include <stddef.h>

#include <libpq-fe.h>

/* ARTIFACT_EDATA: the database refused the values themselves (a data or
 * constraint error): retrying cannot help, the trial fails with the reason. */
enum { ARTIFACT_STORED = 0, ARTIFACT_LEASE_LOST = 1, ARTIFACT_EDB = -1, ARTIFACT_EFILE = -2,
       ARTIFACT_EDATA = -3 };

struct artifact_store {
    const char *trial_id;
    const char *owner;            /* our lease_owner */
    const char *model_path;       /* NULL: a result without a model (lr_find) */
    const char *oof_path;         /* may be NULL */
    /* text values for the trial row (NULL = SQL NULL) */
    const char *metrics, *score, *score_std, *fit_seconds, *predict_us_per_row,
        *model_bytes, *progress, *learning_curve, *stderr_tail, *details;
};

/* ARTIFACT_STORED, ARTIFACT_LEASE_LOST (nothing written), or a negative
 * code with err (EDB: retry later; EFILE: the trainer's files are bad). */
int artifact_store(PGconn *db, const struct artifact_store *a, char *err, size_t errlen);

/* The other way, for an ensemble trial (trainers/ensemble.h): copy a
 * succeeded trial's model file and OOF file out of their large objects
 * into model_path and oof_path (written under NAME.tmp and renamed).
 * 0, or ARTIFACT_EFILE (no such succeeded trial with both objects, or a
 * local file error) / ARTIFACT_EDB with err. */
int artifact_fetch(PGconn *db, const char *trial_id, const char *model_path,
                   const char *oof_path, char *err, size_t errlen);

#endif
