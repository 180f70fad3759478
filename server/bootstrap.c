/* bootstrap.c - see bootstrap.h. */
#include "server/bootstrap.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/db.h"
#include "lib/log.h"
#include "server/teams.h"

/* Write data to path through a temporary file and rename(2), so a reader
 * never sees half a key. */
static int write_secret(const char *path, const char *data, char *err, size_t errlen)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        snprintf(err, errlen, "key file path too long");
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot write %s: %m", tmp);
        return -1;
    }
    size_t n = strlen(data);
    int ok = write(fd, data, n) == (ssize_t)n && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    ok = (close(fd) == 0) && ok;
    if (!ok || rename(tmp, path) < 0) {
        snprintf(err, errlen, "cannot write %s: %m", path);
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int exec_cmd(PGconn *db, const char *sql, char *err, size_t errlen)
{
    PGresult *res = PQexec(db, sql);
    ExecStatusType st = PQresultStatus(res);
    PQclear(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return 0;
    db_error(db, err, errlen);
    return -1;
}

int bootstrap_run(PGconn *db, const char *key_file, char *err, size_t errlen)
{
    if (exec_cmd(db, "BEGIN", err, errlen) < 0) return -1;
    /* Serializes concurrent starters; released at COMMIT/ROLLBACK. */
    if (exec_cmd(db, "SELECT pg_advisory_xact_lock(112111100105117110)", err, errlen) < 0)
        goto fail;
    PGresult *res = PQexec(db, "SELECT EXISTS (SELECT 1 FROM teams)");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        PQclear(res);
        db_error(db, err, errlen);
        goto fail;
    }
    int exists = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (exists) {
        exec_cmd(db, "COMMIT", err, errlen);
        return 0;
    }
    res = PQexec(db, "INSERT INTO teams (name, operator) VALUES ('default', true) RETURNING id");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        PQclear(res);
        db_error(db, err, errlen);
        goto fail;
    }
    char team_id[40];
    snprintf(team_id, sizeof team_id, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    PGresult *kres = NULL;
    cJSON *key = teams_insert_key(db, team_id, "bootstrap admin key", "admin", &kres);
    if (key == NULL) {
        snprintf(err, errlen, "creating the admin key: %s",
                 kres ? PQresultErrorMessage(kres) : "out of memory");
        PQclear(kres);
        goto fail;
    }
    const char *secret = cJSON_GetStringValue(cJSON_GetObjectItem(key, "key"));
    /* The file is written before COMMIT: if writing fails, the database
     * stays empty and the next start tries again, rather than holding a
     * key nobody has. */
    if (key_file && *key_file && write_secret(key_file, secret, err, errlen) < 0) {
        cJSON_Delete(key);
        goto fail;
    }
    if (exec_cmd(db, "COMMIT", err, errlen) < 0) {
        cJSON_Delete(key);
        if (key_file && *key_file) unlink(key_file);
        return -1;
    }
    if (key_file && *key_file)
        log_msg(LOG_INFO, "bootstrap: created team 'default' and an admin key, written to %s",
                key_file);
    else
        log_msg(LOG_WARN, "bootstrap: created team 'default' and admin key %s (shown once; "
                "store it now)", secret);
    cJSON_Delete(key);
    return 1;
fail:;
    char ignore[64];
    exec_cmd(db, "ROLLBACK", ignore, sizeof ignore);
    return -1;
}
