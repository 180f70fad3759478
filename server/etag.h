/*
 * etag.h - entity tags for job resources and If-None-Match matching.
 *
 * A job resource's tag is made from the job's latest event seq and the
 * representation (GET /v1/jobs/{id}, its trials, its leaderboard as JSON
 * or CSV, its events after N): "p1-<seq>-<variant>". Every change a client
 * can see is an event (migrations/0005), so the same tag means the same
 * content, and a poll is answered from the server's memory (events.h).
 * "p1" is the format of our representations: bump it when a response's
 * shape changes, so that tags from an older server never match.
 *
 * Pure functions; no I/O.
 */
#ifndef PODIUM_SERVER_ETAG_H
#define PODIUM_SERVER_ETAG_H

#include <stddef.h>
#include <stdint.h>

#define ETAG_MAX 96

/* The tag for seq and variant (short, [a-z0-9.-]); weak adds W/. */
void etag_job(char out[ETAG_MAX], int64_t seq, const char *variant, int weak);

/* 1 if an If-None-Match value (a list of tags, or "*") matches etag by
 * the weak comparison (RFC 9110 13.1.2: W/ ignored on both sides). */
int etag_match(const char *if_none_match, const char *etag);

#endif
