/*
 * http.h - one HTTP request's life in the server, on top of libmicrohttpd.
 *
 * libmicrohttpd calls http_on_request several times per request (headers,
 * body chunks, end); this module turns that into: match the route, check the
 * API key, collect a bounded body (or hand each chunk to a streaming route
 * as it arrives), call the route's handler once with a complete struct
 * http_req, write one JSON access-log line when the response has gone out. Handlers answer through the http_respond_* and http_problem*
 * functions below; each queues exactly one response.
 *
 * Every response carries X-Request-Id; every error is
 * application/problem+json (RFC 9457) with type, title, status, detail,
 * instance and request_id, plus the offending field where there is one.
 *
 * Threads: each request is handled on one of libmicrohttpd's worker
 * threads; nothing here is shared between requests except the server.
 */
#ifndef PODIUM_SERVER_HTTP_H
#define PODIUM_SERVER_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>

#include "server/pool.h"
#include "server/router.h"

struct server;

enum auth_role { ROLE_NONE = 0, ROLE_MEMBER = 1, ROLE_ADMIN = 2 };

struct http_auth {
    enum auth_role role;
    char key_id[37];
    char team_id[37];
    char prefix[16];
    int operator_team;     /* the key's team may create teams */
};

struct http_req {
    struct server *srv;
    struct MHD_Connection *conn;
    const char *method;
    char *path;
    char request_id[40];
    int64_t start_ns;

    enum route_match_result match;
    const struct route *route;
    struct route_params params;
    char allow[64];

    char *body;
    size_t body_len;
    size_t body_cap;
    int body_overflow;

    struct http_auth auth;
    struct pool_conn db;
    int has_db;

    void *stream_ctx;       /* owned by the route's stream callbacks */
    int stream_begun;

    unsigned status;
    size_t resp_bytes;
    int responded;
};

/* The libmicrohttpd callbacks; cls is the struct server. */
enum MHD_Result http_on_request(void *cls, struct MHD_Connection *conn,
                                const char *url, const char *method,
                                const char *version, const char *upload_data,
                                size_t *upload_data_size, void **con_cls);
void http_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                       enum MHD_RequestTerminationCode toe);

/* --- answering ---------------------------------------------------------- */

/* Queue a JSON response; takes ownership of body (NULL = no body). */
int http_respond_json(struct http_req *r, unsigned status, cJSON *body);
/* The same with a Location header. */
int http_respond_created(struct http_req *r, cJSON *body, const char *location);
int http_respond_empty(struct http_req *r, unsigned status);
/* JSON with any status and a Location header (202 for accepted work). */
int http_respond_json_at(struct http_req *r, unsigned status, cJSON *body, const char *location);
/* A ready body (malloc'd; taken over) with its type and an optional ETag. */
int http_respond_bytes(struct http_req *r, unsigned status, const char *content_type, char *body,
                       size_t len, const char *etag);
/* A body produced by read (libmicrohttpd's content reader) as the client
 * takes it; done(ctx) is called exactly once, when the response is over or
 * could not be queued. headers: name, value pairs, NULL-terminated. */
int http_respond_callback(struct http_req *r, unsigned status, uint64_t size,
                          const char *content_type, const char *const *headers,
                          MHD_ContentReaderCallback read, void *ctx,
                          MHD_ContentReaderFreeCallback done);
/* 304 with the ETag. */
int http_respond_not_modified(struct http_req *r, const char *etag);

/* A problem+json response. slug names the problem type (/problems/<slug>);
 * field (may be NULL) is the request member or parameter at fault. */
int http_problem(struct http_req *r, unsigned status, const char *slug,
                 const char *title, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* A problem located in the body: "line" and "column" members (omitted
 * when 0), for content such as CSV. */
int http_problem_at(struct http_req *r, unsigned status, const char *slug, const char *title,
                    uint64_t line, uint64_t column, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* A 422 listing every invalid field: errors is an array of
 * {"field": ..., "detail": ...} objects, taken over. */
int http_problem_invalid(struct http_req *r, cJSON *errors);

/* 503 because the database cannot be reached. */
int http_problem_db_unavailable(struct http_req *r, const char *why);
/* The right answer to a failed statement: 503 if the connection was lost,
 * else 500 (the details go to the log, not to the client). */
int http_problem_db(struct http_req *r, PGresult *res);

/* --- reading the request -------------------------------------------------- */

/* The request's database connection, acquired on first use; NULL when the
 * database is unavailable (answer with http_problem_db_unavailable). */
PGconn *http_db(struct http_req *r);

/* Parse the body as a JSON object. On failure, queues the 4xx (415 for a
 * wrong Content-Type, 400 with line and column for bad JSON, 400 for a
 * non-object) and returns NULL with *result set to return from the handler.
 * An empty body is an empty object when allow_empty. */
cJSON *http_json_body(struct http_req *r, int allow_empty, int *result);

const char *http_header(struct http_req *r, const char *name);
const char *http_query(struct http_req *r, const char *name);
const char *http_param(struct http_req *r, const char *name);

/* 1 if s is a canonical lower- or upper-case UUID. */
int http_is_uuid(const char *s);

#endif
