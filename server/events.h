/*
 * events.h - what the server knows of job events without asking PostgreSQL.
 *
 * Job events are rows of job_events written by triggers (migrations/0005),
 * each announced by NOTIFY podium_events '<job_id> <seq>'. One listener
 * thread holds its own connection, LISTENs on podium_events and
 * podium_keys, and keeps:
 *
 *   - a table job_id -> (team_id, latest seq), filled lazily by handlers
 *     that read a job from the database (events_note) and advanced by every
 *     notification. Handlers answer an unchanged poll (If-None-Match) from
 *     it with no query (events_peek).
 *   - the open Server-Sent Events streams (struct events_waiter): a stream
 *     with nothing to send suspends its libmicrohttpd connection; the
 *     listener resumes it when its job's seq moves, when its heartbeat is
 *     due, or when the server stops.
 *
 * podium_keys payloads (a key id, or '*') go to the key_changed callback.
 *
 * When the listener loses its connection, it reconnects with backoff; once
 * back, it LISTENs again and then re-reads the seq of every job in the
 * table, so a notification missed while it was away is caught up. While it
 * is away the table is still used: if PostgreSQL is down nothing can change
 * it, and if only our connection broke, the reconnect is quick (the first
 * retry is at once). See README "Live job status".
 *
 * Threads: every function may be called from any thread; one mutex guards
 * the table and the waiters. libmicrohttpd is only ever asked to resume a
 * connection that a waiter suspended, and never while that mutex is held.
 */
#ifndef PODIUM_SERVER_EVENTS_H
#define PODIUM_SERVER_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

struct events;

/* A job's latest event seq as each kind of resource sees it: every event
 * (its trials, its events), the job itself (all but trial_progress), its
 * leaderboard (all but trial_started, trial_progress, job_updated); see
 * migrations/0005. */
enum events_view { EVENTS_ALL = 0, EVENTS_JOB = 1, EVENTS_BOARD = 2, EVENTS_VIEWS = 3 };

/* What the table knows of one job. */
struct events_job {
    char team_id[37];
    int64_t seq[EVENTS_VIEWS];
};

/* Start the listener on conninfo. heartbeat_ms: how often an idle stream
 * is woken for a heartbeat. key_changed(cls, payload) runs on the listener
 * thread for each podium_keys notification, and with "*" after every
 * reconnection. NULL on failure (err says why); the database need not be
 * reachable yet. */
struct events *events_new(const char *conninfo, int heartbeat_ms,
                          void (*key_changed)(void *cls, const char *payload), void *cls,
                          char *err, size_t errlen);
/* Stop the listener and free everything; every waiter must be gone. */
void events_free(struct events *ev);

/* The table's entry for job_id: 1 and *out filled when the job and its
 * team are known, 0 when not (ask the database). */
int events_peek(struct events *ev, const char *job_id, struct events_job *out);

/* A counter that changes when the table drops entries wholesale. Read it
 * before a query and give it to events_note, so that a result read before
 * the drop is not taken as current. */
uint64_t events_epoch(struct events *ev);

/* What a handler read from the database: job_id belongs to known->team_id
 * and its latest events are known->seq. Only moves the table forward. */
void events_note(struct events *ev, const char *job_id, const struct events_job *known,
                 uint64_t epoch);

/* --- streams ---------------------------------------------------------------- */

/* One open stream. The owner fills conn, job_id and seen, and keeps seen
 * (the last seq it sent) current; the rest is the module's. */
struct events_waiter {
    struct MHD_Connection *conn;
    char job_id[37];
    int64_t seen;
    int64_t wake_at_ms;      /* heartbeat or retry, on events_now_ms's clock */
    int suspended;
    struct events_waiter *prev, *next;
};

void events_watch(struct events *ev, struct events_waiter *w);
void events_unwatch(struct events *ev, struct events_waiter *w);

/* Called by the stream's content reader when it has nothing to send: if
 * the job has moved past w->seen or the server is stopping, returns 0 (go
 * on); otherwise suspends w->conn until then or until wake_at_ms, and
 * returns 1 (the reader then returns 0 to libmicrohttpd). */
int events_suspend(struct events *ev, struct events_waiter *w, int64_t wake_at_ms);

/* The latest seq (EVENTS_ALL) known for a job (0 when unknown). */
int64_t events_seq(struct events *ev, const char *job_id);

/* 1 once events_close_streams was called. */
int events_closing(struct events *ev);

/* Server shutdown: wake every stream so that it ends. */
void events_close_streams(struct events *ev);

/* Monotonic milliseconds. */
int64_t events_now_ms(void);

/* The heartbeat interval given to events_new. */
int events_heartbeat_ms(struct events *ev);

#endif
