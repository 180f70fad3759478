/*
 * workdb.h - blocking PostgreSQL connections for the libuv thread pool.
 *
 * Large-object reads and writes have no asynchronous libpq form, so the
 * scheduler does them in uv_queue_work callbacks, each on a connection of
 * its own taken from this pool (never the loop's pgloop connection). A
 * connection that failed is dropped rather than returned, so a PostgreSQL
 * restart costs one failed attempt and a reconnect. Thread-safe.
 */
#ifndef PODIUM_SCHEDULER_WORKDB_H
#define PODIUM_SCHEDULER_WORKDB_H

#include <stddef.h>

#include <libpq-fe.h>

struct workdb;

struct workdb *workdb_new(const char *conninfo);
/* A connection (pooled or new), or NULL with err. */
PGconn *workdb_get(struct workdb *w, char *err, size_t errlen);
/* Give it back; ok = 0 (it failed, or is in an unknown state) closes it. */
void workdb_put(struct workdb *w, PGconn *conn, int ok);
void workdb_free(struct workdb *w);

#endif
