/*
 * artifact.h - storing a succeeded trial: its model file and out-of-fold
 * predictions become large objects and the trial row gets its results, in
 * one transaction that also checks the lease is still ours (so a trial
 * taken over by another scheduler is never written twice, and a failure
 * leaves nothing behind). Blocking: call from a uv_queue_work thread.
 */
#ifndef PODIUM_SCHEDULER_ARTIFACT_H
#define PODIUM_SCHEDULER_ARTIFACT_H

#include <stddef.h>

#include <libpq-fe.h>

enum { ARTIFACT_STORED = 0, ARTIFACT_LEASE_LOST = 1, ARTIFACT_EDB = -1, ARTIFACT_EFILE = -2 };

struct artifact_store {
    const char *trial_id;
    const char *owner;            /* our lease_owner */
    const char *model_path;
    const char *oof_path;         /* may be NULL */
    /* text values for the trial row (NULL = SQL NULL) */
    const char *metrics, *score, *score_std, *fit_seconds, *predict_us_per_row,
        *model_bytes, *progress, *learning_curve, *stderr_tail;
};

/* ARTIFACT_STORED, ARTIFACT_LEASE_LOST (nothing written), or a negative
 * code with err (EDB: retry later; EFILE: the trainer's files are bad). */
int artifact_store(PGconn *db, const struct artifact_store *a, char *err, size_t errlen);

#endif
