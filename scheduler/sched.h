/*
 * sched.h - the scheduler proper: slots, trials and their children, leases
 * and timers, on one libuv loop.
 *
 * Events that make it claim work: start, a NOTIFY on podium_jobs (payload:
 * a job id; sent by the server on create, cancel and budget change), a
 * trial ending, a reconnection, and a slow sweep (--sweep-seconds) as a
 * safety net for anything a notification missed. Each trial takes one CPU
 * slot from claim (claim.h) until its outcome is stored:
 *
 *   claimed -> [fetch the data set into the cache: thread pool]
 *           -> run podium-train (runner.h), progress throttled to ~1 write/s
 *           -> succeeded: upload artifact + OOF and the results (thread pool,
 *              artifact.h); failed/cancelled: one UPDATE with the reason
 *           -> slot free, complete the job if it is done, claim again.
 *
 * The ensemble trial (family 'ensemble', claim.h step 3) takes the same
 * path with one more step before the child: its members' artifact_lo and
 * oof_lo are copied out of PostgreSQL into the trial folder (thread pool,
 * artifact_fetch), then podium-train runs the {"ensemble": ...} spec
 * (trainers/ensemble.h) under the same lease, timeout and cancellation.
 *
 * A heartbeat renews the leases of every trial we hold; one that is no
 * longer ours is killed and dropped without writing anything. Shutdown
 * (sched_stop): claim nothing more, SIGTERM the children, hand their trials
 * back (lease_expires_at = now(), so any scheduler resumes them at once,
 * attempts + 1), wait for uploads in progress, then close (at most ~10 s).
 *
 * Slots (slots.h): a trial holds a CPU slot, or a GPU slot when its family
 * can use a GPU and one is free; its child sees only that GPU
 * (CUDA_VISIBLE_DEVICES) and its spec says "device": "cuda" or "cpu". With
 * only GPU slots free, claim asks for GPU families only.
 *
 * Loop thread only (the thread pool runs cache.h and artifact.h work).
 */
#ifndef PODIUM_SCHEDULER_SCHED_H
#define PODIUM_SCHEDULER_SCHED_H

#include <stddef.h>

#include <uv.h>

#include "scheduler/config.h"

struct sched;

/* Start on loop (it connects and claims as the loop runs). NULL with err. */
struct sched *sched_new(uv_loop_t *loop, const struct sched_config *cfg, char *err,
                        size_t errlen);
/* Begin the graceful shutdown; the loop runs out when it is over. */
void sched_stop(struct sched *s);
/* After uv_run returned. NULL-safe. */
void sched_free(struct sched *s);

#endif
