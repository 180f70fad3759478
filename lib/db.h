/*
 * db.h - small helpers over libpq shared by the server and the scheduler.
 */
#ifndef PODIUM_LIB_DB_H
#define PODIUM_LIB_DB_H

#include <stddef.h>

#include <libpq-fe.h>

/* Connect with a bounded connect timeout and an application_name, keeping
 * the caller's conninfo (a URL or key=value string; "" = libpq's PG*
 * environment defaults). Returns a connection in CONNECTION_OK, or NULL
 * with the reason in err. */
PGconn *db_connect(const char *conninfo, const char *app_name,
                   int connect_timeout_s, char *err, size_t errlen);

/* The connection's last error on one line (libpq ends it with '\n'). */
void db_error(PGconn *conn, char *err, size_t errlen);

/* Run sql, a statement that returns no rows (BEGIN, COMMIT, ROLLBACK):
 * 0 when it succeeded, -1 otherwise. */
int db_command(PGconn *conn, const char *sql);

#endif
