/*
 * resource.h - the shapes every resource handler shares: read one row of
 * the caller's team by the id in the path (404 when it is not there, or
 * belongs to another team), answer it as JSON, read a bounded integer from
 * the query string.
 */
#ifndef PODIUM_SERVER_RESOURCE_H
#define PODIUM_SERVER_RESOURCE_H

#include "server/http.h"

/* sql takes $1 = the path parameter `param` (a UUID) and $2 = the caller's
 * team id and selects at most one row. Returns that row's result (the
 * caller PQclears), or NULL after answering 404 (`what` names the kind of
 * resource), 503 or 500, with *ret the handler's return value. */
PGresult *resource_fetch(struct http_req *r, const char *param, const char *what,
                         const char *sql, int *ret);

/* resource_fetch, answered as a JSON object (pgjson_row). */
int resource_get(struct http_req *r, const char *param, const char *what, const char *sql);

/* The query parameter `name` as an integer in [lo, hi], dflt when absent.
 * 0, or -1 after answering 400 naming it (*ret set). */
int resource_query_int(struct http_req *r, const char *name, long lo, long hi, long dflt,
                       long *out, int *ret);

/* 404 for the request's path. */
int resource_not_found(struct http_req *r, const char *what);

#endif
