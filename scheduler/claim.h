/*
 * claim.h - every SQL statement about jobs and leases, on the scheduler's
 * asynchronous connection (pgloop): claiming work, renewing and releasing
 * leases, finishing trials and completing jobs.
 *
 * Claiming (claim_next) tries, in order:
 *   1. take over one trial whose lease has expired (its scheduler died or
 *      was stopped): one UPDATE over a SELECT ... FOR UPDATE SKIP LOCKED of
 *      the oldest expired lease, attempts + 1, same family and params;
 *   2. propose a new trial, in one transaction: lock the oldest active job
 *      with room (queued/running, not cancel_requested, running <
 *      parallelism, trials < max_trials, failed <= max_failed_trials,
 *      now() < started_at + max_seconds) FOR UPDATE SKIP LOCKED; read its
 *      trials (a fresh snapshot now that the row is ours, so the counts are
 *      re-checked exactly); ask the strategy; INSERT the trial (seq =
 *      max + 1, running, leased to us) and UPDATE the job (running,
 *      started_at, strategy_state); COMMIT.
 * A job whose search cannot go on (no data set, a strategy error) is
 * failed inside that same transaction.
 *   3. when no job has room: the ensemble trial of a job that is about to
 *      succeed (no trial running, out of trials, time or allowed failures,
 *      not cancelled, >= 2 succeeded trials, no 'ensemble' trial yet):
 *      lock it FOR UPDATE SKIP LOCKED, re-check in a fresh snapshot, INSERT
 *      family 'ensemble' with params {"members": [the top 10 succeeded
 *      trial ids, best first], "rounds": 50}, seq = max + 1; COMMIT. The
 *      row lock plus the re-check make it run once across schedulers.
 *
 * Completion (claim_complete_jobs) locks the active jobs (one, waiting, or
 * all that are not locked right now) and in a second statement, which sees
 * everything committed before the locks, finishes those with no running
 * trial that are cancelled or out of trials, time or allowed failures,
 * except those still owed their ensemble trial (3. above): a job is
 * completed once that trial has ended, whatever its outcome.
 *
 * Loop thread only. Strings in a claim_trial are owned by it.
 */
#ifndef PODIUM_SCHEDULER_CLAIM_H
#define PODIUM_SCHEDULER_CLAIM_H

#include <stddef.h>

#include "scheduler/pgloop.h"

struct claim_trial {
    char id[40];
    int seq;
    int attempts;
    char *family;
    char *params;            /* JSON text */
    /* its job */
    char job_id[40];
    char *target, *task, *metric, *cv; /* cv: JSON text */
    long long seed;
    int trial_timeout;       /* seconds */
    double budget_left;      /* seconds until started_at + max_seconds */
    /* its data set */
    char *kind, *format, *sha256_hex;
    unsigned lo;
    int zstd;
    long long size;          /* the uploaded bytes' */
    char *options;           /* the job's options (JSON text, "{}" for most) */
    /* takeover of a trial that must not run again (job cancelled, over
     * budget): the state and reason to finish it with instead */
    const char *finish_state;
    char finish_reason[160];
};

void claim_trial_free(struct claim_trial *t);

struct claim_config {
    const char *owner;
    int lease_seconds;
};

/* t: a trial now leased to us (the callee owns it), or NULL when there
 * was nothing to claim (or the database failed). */
typedef void (*claim_cb)(void *ctx, struct claim_trial *t);

/* One claim: takeover first, else a proposal. gpu_only: only GPU slots
 * are free (slots.h), so only trials of families that can use a GPU
 * (space.h) are taken over or proposed, among jobs that list one, and no
 * ensemble trial. 0, or -1 (out of memory). */
int claim_next(struct pgloop *pl, const struct claim_config *c, int gpu_only, claim_cb cb,
               void *ctx);

/* Complete the job (job_id) or every active job (NULL) that is done. */
void claim_complete_jobs(struct pgloop *pl, const char *job_id);

#endif
