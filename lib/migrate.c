/*
 * migrate.c - see migrate.h.
 *
 * The lock is a session-level advisory lock on a fixed key, held while the
 * list is compared and every pending migration applied: a second process
 * blocks on it and then finds nothing left to do. Each migration runs in its
 * own transaction together with its schema_migrations row, so a failing
 * migration leaves neither its changes nor its record behind.
 */
#include "lib/migrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/crypto.h"

/* "podium" in ASCII: the advisory lock key of the migrator. */
#define MIGRATE_LOCK_KEY "112111100105117109"

static int exec_ok(PGconn *conn, const char *sql, char *err, size_t errlen)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok) snprintf(err, errlen, "%s", PQerrorMessage(conn));
    PQclear(res);
    return ok ? 0 : -1;
}

static void checksum_of(const struct migration *m, char out[65])
{
    unsigned char h[CRYPTO_SHA256_LEN];
    crypto_sha256(m->sql, m->len, h);
    crypto_hex(h, sizeof h, out);
}

static void strip_newline(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = '\0';
}

/* Compare the database's record with the list. Sets *pending to the number
 * not applied yet; fills applied[i] (1 = applied). */
static int compare(PGconn *conn, const struct migration *list, size_t n,
                   unsigned char *applied, size_t *pending, char *err,
                   size_t errlen)
{
    PGresult *res = PQexec(conn,
        "SELECT version, name, checksum FROM schema_migrations ORDER BY version");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "reading schema_migrations: %s", PQerrorMessage(conn));
        strip_newline(err);
        PQclear(res);
        return -1;
    }
    memset(applied, 0, n);
    int rc = 0;
    for (int row = 0; row < PQntuples(res) && rc == 0; row++) {
        int version = atoi(PQgetvalue(res, row, 0));
        const char *sum = PQgetvalue(res, row, 2);
        size_t i = 0;
        while (i < n && list[i].version != version) i++;
        if (i == n) {
            snprintf(err, errlen,
                     "the database has migration %04d_%s, which this build does "
                     "not know: it was migrated by a newer Podium",
                     version, PQgetvalue(res, row, 1));
            rc = -1;
            break;
        }
        char want[65];
        checksum_of(&list[i], want);
        if (strcmp(want, sum) != 0) {
            snprintf(err, errlen,
                     "migration %04d_%s.sql was changed after it was applied "
                     "(database checksum %.12s, file %.12s): restore the "
                     "original file and put the change in a new migration",
                     version, list[i].name, sum, want);
            rc = -1;
            break;
        }
        applied[i] = 1;
    }
    PQclear(res);
    *pending = 0;
    for (size_t i = 0; i < n; i++) *pending += !applied[i];
    return rc;
}

static int apply_one(PGconn *conn, const struct migration *m, char *err,
                     size_t errlen)
{
    char msg[1024];
    if (exec_ok(conn, "BEGIN", msg, sizeof msg) < 0) goto fail;
    if (exec_ok(conn, m->sql, msg, sizeof msg) < 0) goto rollback;

    char sum[65], version[16];
    checksum_of(m, sum);
    snprintf(version, sizeof version, "%d", m->version);
    const char *params[3] = {version, m->name, sum};
    PGresult *res = PQexecParams(conn,
        "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
        3, NULL, params, NULL, NULL, 0);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok) snprintf(msg, sizeof msg, "%s", PQerrorMessage(conn));
    PQclear(res);
    if (!ok) goto rollback;
    if (exec_ok(conn, "COMMIT", msg, sizeof msg) < 0) goto fail;
    return 0;

rollback:
    exec_ok(conn, "ROLLBACK", err, errlen);
fail:
    strip_newline(msg);
    snprintf(err, errlen, "migration %04d_%s failed: %s", m->version, m->name, msg);
    return -1;
}

static int check_order(const struct migration *list, size_t n, char *err,
                       size_t errlen)
{
    for (size_t i = 1; i < n; i++) {
        if (list[i].version <= list[i - 1].version) {
            snprintf(err, errlen, "migration versions must increase: %04d after %04d",
                     list[i].version, list[i - 1].version);
            return -1;
        }
    }
    return 0;
}

int migrate_apply(PGconn *conn, const struct migration *list, size_t n,
                  char *err, size_t errlen)
{
    if (check_order(list, n, err, errlen) < 0) return -1;
    unsigned char *applied = calloc(n ? n : 1, 1);
    if (applied == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int count = -1;
    char msg[1024];
    if (exec_ok(conn, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", msg, sizeof msg) < 0) {
        strip_newline(msg);
        snprintf(err, errlen, "taking the migration lock: %s", msg);
        goto out;
    }
    /* Under the lock, so no one else creates it meanwhile; a DO block
     * rather than IF NOT EXISTS, which prints a NOTICE on every start. */
    if (exec_ok(conn,
                "DO $$ BEGIN IF to_regclass('schema_migrations') IS NULL THEN "
                "CREATE TABLE schema_migrations ("
                " version integer PRIMARY KEY,"
                " name text NOT NULL,"
                " checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now()); "
                "END IF; END $$",
                msg, sizeof msg) < 0) {
        strip_newline(msg);
        snprintf(err, errlen, "creating schema_migrations: %s", msg);
        goto unlock;
    }
    size_t pending;
    if (compare(conn, list, n, applied, &pending, err, errlen) < 0) goto unlock;
    count = 0;
    for (size_t i = 0; i < n; i++) {
        if (applied[i]) continue;
        if (apply_one(conn, &list[i], err, errlen) < 0) {
            count = -1;
            break;
        }
        count++;
    }
unlock:
    exec_ok(conn, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")", msg, sizeof msg);
out:
    free(applied);
    return count;
}

int migrate_check(PGconn *conn, const struct migration *list, size_t n,
                  char *err, size_t errlen)
{
    if (check_order(list, n, err, errlen) < 0) return -1;
    PGresult *res = PQexec(conn, "SELECT to_regclass('schema_migrations') IS NOT NULL");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "%s", PQerrorMessage(conn));
        strip_newline(err);
        PQclear(res);
        return -1;
    }
    int exists = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (!exists) return n > 0 ? 1 : 0;
    unsigned char *applied = calloc(n ? n : 1, 1);
    if (applied == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t pending = 0;
    int rc = compare(conn, list, n, applied, &pending, err, errlen);
    free(applied);
    if (rc < 0) return -1;
    return pending > 0 ? 1 : 0;
}
