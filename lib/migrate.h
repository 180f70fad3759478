/*
 * migrate.h - schema migrations: ordered SQL files applied once each.
 *
 * migrations/NNNN_name.sql are embedded in the binary at build time
 * (scripts/embed-migrations.sh). migrate_apply takes a session-level
 * PostgreSQL advisory lock, so any number of processes may call it at once
 * and each migration is applied exactly once; it records every migration in
 * schema_migrations with the SHA-256 of its text, applies each pending one in
 * its own transaction, and refuses to go on when an applied migration's text
 * has changed since (that is a bug in a release, never something to paper
 * over).
 */
#ifndef PODIUM_LIB_MIGRATE_H
#define PODIUM_LIB_MIGRATE_H

#include <stddef.h>

#include <libpq-fe.h>

struct migration {
    int version;        /* NNNN, strictly increasing */
    const char *name;   /* the file name's rest, without .sql */
    const char *sql;
    size_t len;
};

/* The migrations compiled into this binary, in order. */
extern const struct migration podium_migrations[];
extern const size_t podium_migrations_count;

/* Apply the pending migrations of list[0..n). Returns the number applied
 * (>= 0), or -1 with a message in err. Blocks while another process holds
 * the migration lock. */
int migrate_apply(PGconn *conn, const struct migration *list, size_t n,
                  char *err, size_t errlen);

/* 0 when every migration of the list is applied and unchanged, 1 when some
 * are pending, -1 with err on a checksum mismatch or a database error. */
int migrate_check(PGconn *conn, const struct migration *list, size_t n,
                  char *err, size_t errlen);

#endif
