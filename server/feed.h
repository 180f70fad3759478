/*
 * feed.h - GET /v1/jobs/{job_id}/events: a job's events, stored in
 * job_events by triggers (migrations/0005), in order of their per-job seq.
 *
 * Two representations of the same events:
 *
 *   - JSON (the default): the events after ?after=SEQ (default 0), at most
 *     ?limit (default 100, at most 1000), for clients that poll; tagged
 *     like the job itself (etag.h), so an unchanged poll is a 304 from
 *     memory.
 *   - Server-Sent Events (Accept: text/event-stream): the stored events
 *     after Last-Event-ID (or ?after), then live ones as they are
 *     committed, as "id: <seq>", "event: <type>", "data: <the JSON item>".
 *     Replay and live are one loop over "seq > the last sent", so nothing
 *     is lost or repeated at the boundary, nor across a reconnection with
 *     Last-Event-ID. An idle stream gets ": ping" every --sse-heartbeat
 *     seconds. The stream ends after the job's final job_state event; a
 *     reconnection after that is answered 204 (which tells an EventSource
 *     to stop).
 *
 * A stream with nothing to send suspends its connection (events.h), so an
 * open stream costs a connection slot and a little memory, not a thread.
 *
 * Compaction (migrations/0007): the scheduler deletes old trial_progress
 * events, and only those, and records in the job's compacted_seq that
 * every progress event up to it is gone. seq numbers are never reused, so
 * what remains is still in order, with holes. A reader whose position
 * (after, Last-Event-ID, or a live stream's last event) is below
 * compacted_seq is told, never silently skipped:
 *
 *   - JSON: every answer has "compacted_seq" (0: nothing ever deleted)
 *     and "compacted": true when after < compacted_seq, i.e. progress
 *     events of (after, compacted_seq] are missing from this page and the
 *     next ones. Its tag is weak (W/), since a compaction changes the body
 *     without a new event.
 *   - SSE: before the events that follow the position, one
 *     "event: compacted" with data {"after": <position>, "compacted_seq":
 *     N} and no id (Last-Event-ID stays the last real event's); the
 *     stream then goes on. Sent again only if a later compaction overtakes
 *     the stream once more (a slow reader of a running job with a cap).
 *
 * Either way the client refetches what it showed from progress events,
 * the job and its trials (each trial has its latest progress), and keeps
 * reading: every other event is still there.
 */
#ifndef PODIUM_SERVER_FEED_H
#define PODIUM_SERVER_FEED_H

#include "server/http.h"

int feed_get(struct http_req *r);

#endif
