/*
 * pgjson.h - PostgreSQL result rows as cJSON objects.
 *
 * Column names become member names; values keep their SQL type: booleans,
 * integers and floating/numeric types become JSON numbers or booleans, json
 * and jsonb are parsed, NULL is null, everything else is a string. Queries
 * shape their output with SQL (aliases, to_char for timestamps) and this
 * turns it into the API's JSON with no per-handler glue.
 */
#ifndef PODIUM_LIB_PGJSON_H
#define PODIUM_LIB_PGJSON_H

#include <cjson/cJSON.h>
#include <libpq-fe.h>

/* A timestamptz column as RFC 3339 UTC text, for use in SELECT lists. */
#define PGJSON_TS(col) \
    "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* Row `row` of res as a new object; NULL on out-of-memory. */
cJSON *pgjson_row(const PGresult *res, int row);

/* Every row of res as a new array. */
cJSON *pgjson_rows(const PGresult *res);

#endif
