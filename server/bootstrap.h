/*
 * bootstrap.h - the first team and admin key of an empty database.
 */
#ifndef PODIUM_SERVER_BOOTSTRAP_H
#define PODIUM_SERVER_BOOTSTRAP_H

#include <stddef.h>

#include <libpq-fe.h>

/* If no team exists, create the operator team "default" with an admin key
 * and write the key to key_file (mode 0600, replaced atomically); with no
 * key_file, the key is logged once. Safe under concurrent starters (an
 * advisory transaction lock). Returns 1 if it bootstrapped, 0 if the
 * database had a team already, -1 with err. */
int bootstrap_run(PGconn *db, const char *key_file, char *err, size_t errlen);

#endif
