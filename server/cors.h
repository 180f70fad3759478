/*
 * cors.h - Cross-Origin Resource Sharing for a configured allow-list.
 *
 * The list (--cors-origins, PODIUM_CORS_ORIGINS) names the web origins
 * whose pages may call the API with a key, comma-separated:
 * "https://dash.example.com,http://localhost:5173". An origin is
 * scheme://host[:port] with nothing after it; "*" is refused, since every
 * request carries a team's key. http.c answers a preflight (OPTIONS with
 * Origin and Access-Control-Request-Method) before routing and
 * authentication, and adds Access-Control-Allow-Origin (the caller's own
 * origin, never *) and -Expose-Headers to every answer to a listed origin.
 *
 * Pure functions; no I/O.
 */
#ifndef PODIUM_SERVER_CORS_H
#define PODIUM_SERVER_CORS_H

#include <stddef.h>

#define CORS_ALLOW_METHODS "GET, HEAD, POST, PATCH, DELETE, OPTIONS"
#define CORS_ALLOW_HEADERS "Authorization, Content-Type, If-None-Match, Last-Event-ID, X-Request-Id, Accept"
#define CORS_EXPOSE_HEADERS "ETag, Location, X-Request-Id, Retry-After"
#define CORS_MAX_AGE "600"

/* 0 if list is a valid allow-list (empty is: no CORS), else -1 with the
 * offending entry in err. */
int cors_check_list(const char *list, char *err, size_t errlen);

/* 1 if origin is on list. Scheme and host compare without case; the
 * origin must be exactly an entry otherwise. */
int cors_allowed(const char *list, const char *origin);

#endif
