/*
 * router.h - the server's route table and how a request finds its route.
 *
 * Routes are data (STYLE.md): each names a method, a path pattern whose
 * segments are literals or {params}, the role it needs and its handler. The
 * table itself lives in routes.c; tests hold it against api/openapi.yaml.
 * Matching is pure (no I/O), so it is tested without a socket.
 */
#ifndef PODIUM_SERVER_ROUTER_H
#define PODIUM_SERVER_ROUTER_H

#include <stddef.h>

#define ROUTER_MAX_PARAMS 4
#define ROUTER_MAX_PARAM_LEN 128

struct http_req;

enum route_auth {
    ROUTE_PUBLIC = 0,   /* no key needed (health checks) */
    ROUTE_MEMBER = 1,   /* any valid key */
    ROUTE_ADMIN = 2,    /* a key with the admin role */
};

/* A handler queues exactly one response on r and returns its MHD result. */
typedef int (*route_handler)(struct http_req *r);

/* A route that consumes its body as it arrives instead of collecting it
 * (uploads). The request's key is checked before begin; the body limit is
 * the server's upload limit, not the JSON one. */
struct route_stream {
    /* Before the first body byte. 0 to go on; -1 after queueing an answer. */
    int (*begin)(struct http_req *r);
    /* One chunk of the body. 0 to go on; -1 when refused (the rest of the
     * body is dropped and end still answers); -2 to hang up at once. */
    int (*chunk)(struct http_req *r, const char *data, size_t len);
    /* The body is complete: queue the answer. */
    int (*end)(struct http_req *r);
    /* The request is over, answered or not (the client may have gone):
     * release what begin set up. Always called once begin was. */
    void (*cleanup)(struct http_req *r);
};

struct route {
    const char *method;
    const char *pattern;   /* "/v1/teams/{team_id}/keys" */
    enum route_auth auth;
    route_handler handler; /* NULL for stream routes */
    const char *summary;   /* one line, for --routes */
    const struct route_stream *stream; /* NULL: the body is collected */
};

struct route_params {
    size_t n;
    const char *name[ROUTER_MAX_PARAMS];    /* points into the pattern */
    size_t name_len[ROUTER_MAX_PARAMS];
    char value[ROUTER_MAX_PARAMS][ROUTER_MAX_PARAM_LEN + 1];
};

enum route_match_result {
    ROUTE_FOUND = 0,
    ROUTE_NOT_FOUND = 1,        /* no pattern matches the path */
    ROUTE_BAD_METHOD = 2,       /* the path matches, the method does not */
    ROUTE_BAD_PARAM = 3,        /* a {param} segment is too long or empty */
};

/* Find the route for method and path (no query string). On ROUTE_FOUND,
 * *out and params are set. On ROUTE_BAD_METHOD, allow gets the methods that
 * would match, comma-separated (allow may be NULL). */
enum route_match_result router_match(const struct route *table, size_t n,
                                     const char *method, const char *path,
                                     const struct route **out,
                                     struct route_params *params,
                                     char *allow, size_t allow_len);

/* The value of the named parameter, or NULL. */
const char *route_param(const struct route_params *p, const char *name);

/* The server's table (routes.c). */
extern const struct route server_routes[];
extern const size_t server_routes_count;

#endif
