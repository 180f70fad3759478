/* db.c - see db.h. */
#include "lib/db.h"

#include <stdio.h>
#include <string.h>

void db_error(PGconn *conn, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s", conn ? PQerrorMessage(conn) : "no connection");
    size_t n = strlen(err);
    while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' ')) err[--n] = '\0';
}

int db_command(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    return ok ? 0 : -1;
}

PGconn *db_connect(const char *conninfo, const char *app_name,
                   int connect_timeout_s, char *err, size_t errlen)
{
    char timeout[16];
    snprintf(timeout, sizeof timeout, "%d", connect_timeout_s);
    /* expand_dbname=1: the first dbname may be a full conninfo or URL; the
     * later keywords add to it without overriding what it sets. */
    const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
    const char *vals[] = {conninfo ? conninfo : "", app_name, timeout, NULL};
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    if (conn == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        db_error(conn, err, errlen);
        PQfinish(conn);
        return NULL;
    }
    return conn;
}
