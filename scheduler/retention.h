/*
 * retention.h - deleting old job events (migrations/0007), on the
 * scheduler's libuv loop with a PostgreSQL connection of its own.
 *
 * trial_progress events are the bulk of job_events (about one a second
 * per running trial) and say nothing once their trial has ended. A pass
 * deletes
 *   - every progress event of a job that finished (succeeded, failed,
 *     cancelled) longer ago than the retention window (--events-retention,
 *     default 7 days; 0 or "never": none);
 *   - the progress events of an active job beyond its newest N
 *     (--events-progress-cap, default 10000; 0: no cap);
 * and keeps every other event. It walks the jobs that still hold progress
 * events (a partial index) in job_id order, 100 at a time, and deletes
 * each job's events in batches of RETENTION_BATCH, oldest first, each
 * batch a statement (and transaction) of its own: SELECT
 * podium_compact_progress(job, keep, batch). A batch never waits for a
 * lock: a job whose head is busy is left for the next pass. Any number of
 * schedulers may run passes at once.
 *
 * A pass starts when the connection is made and then every
 * RETENTION_EVERY_MS. Loop thread only.
 */
#ifndef PODIUM_SCHEDULER_RETENTION_H
#define PODIUM_SCHEDULER_RETENTION_H

#include <stddef.h>

#include <uv.h>

#define RETENTION_BATCH 500
#define RETENTION_EVERY_MS 60000
#define RETENTION_DEFAULT_SECONDS (7LL * 86400)
#define RETENTION_DEFAULT_CAP 10000

struct retention;

/* Parse a retention window: "never" or a non-negative integer with an
 * optional unit s, m, h or d ("7d", "36h", "90" = 90 seconds), at most
 * ten years. "0" and "never" both give -1 (keep everything). 0 or -1 on a
 * malformed value. */
int retention_parse(const char *text, long long *seconds);

/* Start on loop: retention_seconds as retention_parse gives it (-1:
 * never), progress_cap 0 for none. With neither, nothing runs (no
 * connection is made). NULL on out-of-memory. */
struct retention *retention_new(uv_loop_t *loop, const char *conninfo,
                                long long retention_seconds, int progress_cap);
/* Stop passes and close the handles (the loop must run once more). */
void retention_stop(struct retention *r);
/* After uv_run returned. NULL-safe. */
void retention_free(struct retention *r);

#endif
