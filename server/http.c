/*
 * http.c - see http.h.
 *
 * The order of checks on a new request is deliberate: everything that can
 * be decided from the request line and headers (size limits, route, method,
 * a Content-Length over the limit) is answered before any body is read, so
 * an oversized or misrouted upload costs us nothing. A body is then
 * collected up to cfg.max_body_bytes; past that, the rest is drained and
 * the answer is 413.
 */
#include "server/http.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "lib/crypto.h"
#include "lib/log.h"
#include "server/auth.h"
#include "server/cors.h"
#include "server/server.h"
#include "server/static.h"

#define MAX_URL_BYTES 4096

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A client's X-Request-Id is kept when it is short and plain, so that a
 * caller can follow its own id through our logs; otherwise we make one. */
static void set_request_id(struct http_req *r)
{
    const char *given = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Request-Id");
    if (given != NULL) {
        size_t n = strlen(given), i;
        for (i = 0; i < n; i++) {
            unsigned char c = (unsigned char)given[i];
            if (!isalnum(c) && c != '-' && c != '_' && c != '.') break;
        }
        if (n >= 8 && n < sizeof r->request_id && i == n) {
            memcpy(r->request_id, given, n + 1);
            return;
        }
    }
    unsigned char raw[12];
    if (crypto_random(raw, sizeof raw) < 0) memset(raw, 0, sizeof raw);
    crypto_hex(raw, sizeof raw, r->request_id);
}

/* --- responses ------------------------------------------------------------ */

/* CORS (cors.h): with an allow-list configured, every answer varies by
 * Origin; a listed origin gets itself back and the headers it may read. */
static void add_cors(struct http_req *r, struct MHD_Response *resp)
{
    const char *list = r->srv->cfg.cors_origins;
    if (list == NULL || *list == '\0') return;
    MHD_add_response_header(resp, "Vary", "Origin");
    const char *origin = http_header(r, "Origin");
    if (!cors_allowed(list, origin)) return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
    MHD_add_response_header(resp, "Access-Control-Expose-Headers", CORS_EXPOSE_HEADERS);
}

/* Add the headers every response carries and queue it. */
static int send_response(struct http_req *r, unsigned status, struct MHD_Response *resp,
                         size_t len, const char *content_type, const char *location)
{
    add_cors(r, resp);
    if (content_type) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    if (MHD_get_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL) == NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (location) MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
    if (status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"podium\"");
    if (status == 405 && r->allow[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    if (ret == MHD_YES) {
        r->responded = 1;
        r->status = status;
        r->resp_bytes = len;
    }
    return ret;
}

static int queue(struct http_req *r, unsigned status, const char *content_type,
                 char *body, size_t len, const char *location)
{
    if (r->responded) {
        free(body);
        log_msg(LOG_ERROR, "second response for request %s ignored", r->request_id);
        return MHD_YES;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(body);
        return MHD_NO;
    }
    return send_response(r, status, resp, len, content_type, location);
}

int http_respond_callback(struct http_req *r, unsigned status, uint64_t size,
                          const char *content_type, const char *const *headers,
                          MHD_ContentReaderCallback read, void *ctx,
                          MHD_ContentReaderFreeCallback done)
{
    struct MHD_Response *resp = MHD_create_response_from_callback(size, 256 * 1024, read, ctx, done);
    if (resp == NULL) {
        done(ctx);
        return MHD_NO;
    }
    for (int i = 0; headers && headers[i] && headers[i + 1]; i += 2)
        MHD_add_response_header(resp, headers[i], headers[i + 1]);
    return send_response(r, status, resp, (size_t)size, content_type, NULL);
}

int http_respond_not_modified(struct http_req *r, const char *etag)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    return send_response(r, 304, resp, 0, NULL, NULL);
}

static int respond_json(struct http_req *r, unsigned status, cJSON *body,
                        const char *content_type, const char *location)
{
    char *text = NULL;
    size_t len = 0;
    if (body != NULL) {
        text = cJSON_PrintUnformatted(body);
        cJSON_Delete(body);
        if (text == NULL) return MHD_NO;
        len = strlen(text);
    }
    return queue(r, status, body ? content_type : NULL, text, len, location);
}

int http_respond_json(struct http_req *r, unsigned status, cJSON *body)
{
    return respond_json(r, status, body, "application/json", NULL);
}

int http_respond_created(struct http_req *r, cJSON *body, const char *location)
{
    return respond_json(r, 201, body, "application/json", location);
}

int http_respond_json_at(struct http_req *r, unsigned status, cJSON *body, const char *location)
{
    return respond_json(r, status, body, "application/json", location);
}

int http_respond_bytes(struct http_req *r, unsigned status, const char *content_type, char *body,
                       size_t len, const char *etag)
{
    if (r->responded) {
        free(body);
        return MHD_YES;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(body);
        return MHD_NO;
    }
    if (etag) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
        /* Revalidate each time: cheap with If-None-Match. */
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "private, no-cache");
    }
    return send_response(r, status, resp, len, content_type, NULL);
}

int http_respond_empty(struct http_req *r, unsigned status)
{
    return respond_json(r, status, NULL, NULL, NULL);
}

static cJSON *problem_new(struct http_req *r, unsigned status, const char *slug,
                          const char *title, const char *detail)
{
    cJSON *p = cJSON_CreateObject();
    if (p == NULL) return NULL;
    char type[96];
    snprintf(type, sizeof type, "/problems/%s", slug);
    cJSON_AddStringToObject(p, "type", type);
    cJSON_AddStringToObject(p, "title", title);
    cJSON_AddNumberToObject(p, "status", status);
    cJSON_AddStringToObject(p, "detail", detail);
    cJSON_AddStringToObject(p, "instance", r->path ? r->path : "");
    cJSON_AddStringToObject(p, "request_id", r->request_id);
    return p;
}

int http_problem(struct http_req *r, unsigned status, const char *slug,
                 const char *title, const char *field, const char *fmt, ...)
{
    char detail[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    cJSON *p = problem_new(r, status, slug, title, detail);
    if (p == NULL) return MHD_NO;
    if (field) cJSON_AddStringToObject(p, "field", field);
    return respond_json(r, status, p, "application/problem+json", NULL);
}

int http_problem_at(struct http_req *r, unsigned status, const char *slug, const char *title,
                    uint64_t line, uint64_t column, const char *fmt, ...)
{
    char detail[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    cJSON *p = problem_new(r, status, slug, title, detail);
    if (p == NULL) return MHD_NO;
    if (line > 0) cJSON_AddNumberToObject(p, "line", (double)line);
    if (column > 0) cJSON_AddNumberToObject(p, "column", (double)column);
    return respond_json(r, status, p, "application/problem+json", NULL);
}

int http_problem_invalid(struct http_req *r, cJSON *errors)
{
    int n = cJSON_GetArraySize(errors);
    char detail[512];
    cJSON *first = cJSON_GetArrayItem(errors, 0);
    const char *f = first ? cJSON_GetStringValue(cJSON_GetObjectItem(first, "field")) : NULL;
    const char *d = first ? cJSON_GetStringValue(cJSON_GetObjectItem(first, "detail")) : NULL;
    if (n == 1 && f && d)
        snprintf(detail, sizeof detail, "%s: %s", f, d);
    else
        snprintf(detail, sizeof detail, "%d fields are invalid; see errors", n);
    cJSON *p = problem_new(r, 422, "validation", "Invalid request", detail);
    if (p == NULL) {
        cJSON_Delete(errors);
        return MHD_NO;
    }
    cJSON_AddItemToObject(p, "errors", errors);
    return respond_json(r, 422, p, "application/problem+json", NULL);
}

int http_problem_db_unavailable(struct http_req *r, const char *why)
{
    log_msg(LOG_WARN, "request %s: database unavailable: %s", r->request_id, why);
    return http_problem(r, 503, "database-unavailable", "Service unavailable", NULL,
                        "the database is not reachable; try again shortly");
}

int http_problem_db(struct http_req *r, PGresult *res)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s", res ? PQresultErrorMessage(res) : "no result");
    msg[strcspn(msg, "\n")] = '\0';
    if (r->has_db && pool_conn_lost(&r->db)) return http_problem_db_unavailable(r, msg);
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    log_msg(LOG_ERROR, "request %s: database error %s: %s", r->request_id,
            state ? state : "?", msg);
    return http_problem(r, 500, "internal", "Internal error", NULL,
                        "the server failed to complete the request (request id %s)",
                        r->request_id);
}

/* --- reading the request -------------------------------------------------- */

PGconn *http_db(struct http_req *r)
{
    if (r->has_db) return r->db.pg;
    char err[256];
    if (pool_acquire(r->srv->pool, 2000, &r->db, err, sizeof err) < 0) {
        log_msg(LOG_WARN, "request %s: %s", r->request_id, err);
        return NULL;
    }
    r->has_db = 1;
    return r->db.pg;
}

const char *http_header(struct http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *http_query(struct http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_param(struct http_req *r, const char *name)
{
    return route_param(&r->params, name);
}

int http_is_uuid(const char *s)
{
    if (s == NULL || strlen(s) != 36) return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return 0;
        } else if (!isxdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

/* Line and column (1-based) of position pos in text. */
static void line_col(const char *text, size_t pos, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < pos; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static int is_json_type(const char *ct)
{
    if (ct == NULL) return 0;
    size_t n = strcspn(ct, ";");
    while (n > 0 && ct[n - 1] == ' ') n--;
    return (n == 16 && strncasecmp(ct, "application/json", 16) == 0);
}

cJSON *http_json_body(struct http_req *r, int allow_empty, int *result)
{
    if (r->body_len == 0) {
        if (allow_empty) return cJSON_CreateObject();
        *result = http_problem(r, 400, "empty-body", "Empty body", NULL,
                               "this request needs a JSON object as its body");
        return NULL;
    }
    if (!is_json_type(http_header(r, MHD_HTTP_HEADER_CONTENT_TYPE))) {
        const char *ct = http_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
        *result = http_problem(r, 415, "unsupported-media-type", "Unsupported media type",
                               NULL, "the body must be application/json, got %s",
                               ct ? ct : "no Content-Type");
        return NULL;
    }
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(r->body, r->body_len, &end, 0);
    if (doc == NULL || (end && (size_t)(end - r->body) < r->body_len &&
                        strspn(end, " \t\r\n") != r->body_len - (size_t)(end - r->body))) {
        size_t pos = end ? (size_t)(end - r->body) : 0;
        if (pos > r->body_len) pos = r->body_len;
        int line, col;
        line_col(r->body, pos, &line, &col);
        cJSON_Delete(doc);
        *result = http_problem(r, 400, "malformed-json", "Malformed JSON", NULL,
                               "the body is not valid JSON: error at line %d, column %d",
                               line, col);
        return NULL;
    }
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        *result = http_problem(r, 400, "malformed-json", "Malformed JSON", NULL,
                               "the body must be a JSON object");
        return NULL;
    }
    return doc;
}

/* --- the request's life ----------------------------------------------------- */

struct header_sum { size_t bytes; size_t count; };

static enum MHD_Result add_header_size(void *cls, enum MHD_ValueKind kind,
                                       const char *key, const char *value)
{
    struct header_sum *h = cls;
    h->bytes += strlen(key) + (value ? strlen(value) : 0) + 4;
    h->count++;
    return MHD_YES;
}

/* A CORS preflight: it carries no key, so it is answered before routing
 * and authentication. */
static int cors_preflight(struct http_req *r)
{
    const char *origin = http_header(r, "Origin");
    if (!cors_allowed(r->srv->cfg.cors_origins, origin))
        return http_problem(r, 403, "origin-not-allowed", "Origin not allowed", NULL,
                            "pages from %.200s may not call this API (see --cors-origins)",
                            origin);
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) return MHD_NO;
    MHD_add_response_header(resp, "Access-Control-Allow-Methods", CORS_ALLOW_METHODS);
    MHD_add_response_header(resp, "Access-Control-Allow-Headers", CORS_ALLOW_HEADERS);
    MHD_add_response_header(resp, "Access-Control-Max-Age", CORS_MAX_AGE);
    return send_response(r, 204, resp, 0, NULL, NULL);
}

/* Decisions that need only the request line and headers. Returns 1 when a
 * response was queued (into *ret). */
static int early_checks(struct http_req *r, const char *url, enum MHD_Result *ret)
{
    struct server_config *cfg = &r->srv->cfg;
    if (strlen(url) > MAX_URL_BYTES) {
        *ret = http_problem(r, 414, "uri-too-long", "URI too long", NULL,
                            "the request target is longer than %d bytes", MAX_URL_BYTES);
        return 1;
    }
    struct header_sum h = {strlen(url) + strlen(r->method) + 12, 0};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, add_header_size, &h);
    if (h.bytes > cfg->max_header_bytes || h.count > 100) {
        *ret = http_problem(r, 431, "headers-too-large", "Request header fields too large",
                            NULL, "the request line and headers exceed %zu bytes or 100 fields",
                            cfg->max_header_bytes);
        return 1;
    }

    if (strcmp(r->method, "OPTIONS") == 0 && http_header(r, "Origin") &&
        http_header(r, "Access-Control-Request-Method")) {
        *ret = cors_preflight(r);
        return 1;
    }

    const char *method = strcmp(r->method, "HEAD") == 0 ? "GET" : r->method;
    r->match = router_match(server_routes, server_routes_count, method, r->path,
                            &r->route, &r->params, r->allow, sizeof r->allow);
    switch (r->match) {
    case ROUTE_FOUND:
        break;
    case ROUTE_BAD_METHOD:
        *ret = http_problem(r, 405, "method-not-allowed", "Method not allowed", NULL,
                            "%s is not allowed on %s; allowed: %s", r->method, r->path,
                            r->allow);
        return 1;
    case ROUTE_BAD_PARAM:
    case ROUTE_NOT_FOUND:
        /* Not an API route: the dashboard's files (static.h) answer GET and
         * HEAD outside /v1. */
        if (r->match == ROUTE_NOT_FOUND && strcmp(method, "GET") == 0 &&
            strncmp(r->path, "/v1/", 4) != 0 && strcmp(r->path, "/v1") != 0) {
            *ret = static_serve(r);
            return 1;
        }
        *ret = http_problem(r, 404, "not-found", "Not found", NULL,
                            "no resource at %s", r->path);
        return 1;
    }

    uint64_t limit = r->route->stream ? cfg->max_upload_bytes : cfg->max_body_bytes;
    const char *cl = http_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl != NULL) {
        errno = 0;
        char *end;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno == 0 && end != cl && n > limit) {
            *ret = http_problem(r, 413, "body-too-large", "Request body too large", NULL,
                                "the body is %llu bytes; the limit is %llu", n,
                                (unsigned long long)limit);
            return 1;
        }
    }

    /* The key is checked before any body is read: an upload without a
     * valid key costs one header parse. */
    int result;
    if (auth_check(r, &result) < 0) {
        *ret = result;
        return 1;
    }
    if (r->route->stream) {
        r->stream_begun = 1;
        if (r->route->stream->begin(r) < 0) {
            *ret = MHD_YES;
            return 1;
        }
    } else if (r->has_db) {
        /* Do not hold a pooled connection while a slow client sends its
         * body; the handler takes one again when it needs it. */
        pool_release(&r->db);
        r->has_db = 0;
    }
    return 0;
}

static int append_body(struct http_req *r, const char *data, size_t n)
{
    size_t limit = r->srv->cfg.max_body_bytes;
    if (r->body_overflow || n > limit - r->body_len) {
        r->body_overflow = 1;
        return 0;
    }
    if (r->body_len + n + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 4096;
        while (cap < r->body_len + n + 1) cap *= 2;
        char *b = realloc(r->body, cap);
        if (b == NULL) return -1;
        r->body = b;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return 0;
}

static int dispatch(struct http_req *r)
{
    if (r->route->stream) return r->route->stream->end(r);
    if (r->body_overflow)
        return http_problem(r, 413, "body-too-large", "Request body too large", NULL,
                            "the body exceeds the limit of %zu bytes",
                            r->srv->cfg.max_body_bytes);
    return r->route->handler(r);
}

enum MHD_Result http_on_request(void *cls, struct MHD_Connection *conn,
                                const char *url, const char *method,
                                const char *version, const char *upload_data,
                                size_t *upload_data_size, void **con_cls)
{
    struct http_req *r = *con_cls;
    if (r == NULL) {
        r = calloc(1, sizeof *r);
        if (r == NULL) return MHD_NO;
        r->srv = cls;
        r->conn = conn;
        r->method = method;
        r->start_ns = now_ns();
        r->path = strdup(url);
        if (r->path == NULL) {
            free(r);
            return MHD_NO;
        }
        atomic_fetch_add(&r->srv->inflight, 1);
        set_request_id(r);
        *con_cls = r;
        enum MHD_Result ret;
        if (early_checks(r, url, &ret)) return ret;
        return MHD_YES;
    }
    if (r->responded && !r->stream_begun) { /* answered early: drop the rest */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->route->stream)
            return r->route->stream->chunk(r, upload_data, n) < -1 ? MHD_NO : MHD_YES;
        if (append_body(r, upload_data, n) < 0) return MHD_NO;
        return MHD_YES;
    }
    int ret = dispatch(r);
    if (r->has_db && !r->route->stream) {
        pool_release(&r->db);
        r->has_db = 0;
    }
    return ret == MHD_YES ? MHD_YES : MHD_NO;
}

static void client_address(struct MHD_Connection *conn, char *out, size_t len)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    out[0] = '\0';
    if (ci == NULL || ci->client_addr == NULL) return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out, (socklen_t)len);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out, (socklen_t)len);
}

void http_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                       enum MHD_RequestTerminationCode toe)
{
    struct http_req *r = *con_cls;
    if (r == NULL) return;
    *con_cls = NULL;
    if (r->stream_begun) r->route->stream->cleanup(r);
    if (r->has_db) pool_release(&r->db);

    char addr[64];
    client_address(conn, addr, sizeof addr);
    cJSON *f = cJSON_CreateObject();
    if (f != NULL) {
        cJSON_AddStringToObject(f, "request_id", r->request_id);
        cJSON_AddStringToObject(f, "method", r->method);
        /* Paths are bounded in the log: a hostile 4 KiB URL is not worth
         * 4 KiB of every log reader's attention. */
        char path[513];
        snprintf(path, sizeof path, "%s", r->path);
        cJSON_AddStringToObject(f, "path", path);
        cJSON_AddNumberToObject(f, "status", r->status);
        cJSON_AddNumberToObject(f, "bytes", (double)r->resp_bytes);
        cJSON_AddNumberToObject(f, "duration_ms", (double)(now_ns() - r->start_ns) / 1e6);
        cJSON_AddStringToObject(f, "client", addr);
        if (r->auth.role != ROLE_NONE) {
            cJSON_AddStringToObject(f, "key", r->auth.prefix);
            cJSON_AddStringToObject(f, "team_id", r->auth.team_id);
        }
        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
            cJSON_AddNumberToObject(f, "terminated", toe);
    }
    log_fields(LOG_INFO, "request", f);

    free(r->body);
    free(r->path);
    atomic_fetch_sub(&r->srv->inflight, 1);
    free(r);
}
