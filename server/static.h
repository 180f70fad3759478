/*
 * static.h - the dashboard's files (index.html, its scripts, styles and the
 * charting library), served from one folder (cfg.web_dir, --web-dir).
 *
 * These are not API routes: they are not in routes.c nor in
 * api/openapi.yaml. http.c calls static_serve for a GET or HEAD whose path
 * matches no route and is outside /v1; "/" is index.html.
 *
 * What is served: regular files inside the folder, by a path whose segments
 * are plain names (no "..", ".", empty or hidden segments, no backslash,
 * no '%' left after libmicrohttpd's decoding, so double-encoded tricks are
 * refused too), resolved with realpath so a symlink leading out of the
 * folder is a 404 like a missing file. Each answer carries the file's
 * Content-Type, an ETag (size, mtime, inode) honoured by If-None-Match with
 * a 304, Cache-Control: no-cache (revalidate every time: the names carry no
 * hash), and a Content-Security-Policy that allows this origin only.
 *
 * One path is not a file: /features.json says which optional parts of the
 * API this server has ({"events": true} when GET /v1/jobs/{id}/events is
 * routed), read from the route table, so the dashboard picks the event
 * stream or polling without probing a route that may answer 404.
 *
 * Threads: called on a libmicrohttpd worker; keeps no state between calls
 * (the folder may be rebuilt while the server runs).
 */
#ifndef PODIUM_SERVER_STATIC_H
#define PODIUM_SERVER_STATIC_H

#include <stddef.h>

struct http_req;

/* The Content-Security-Policy sent with every file: this origin only. */
extern const char static_csp[];

/* Answer r (GET or HEAD) with the file its path names under the web
 * folder, a 304, or a problem+json 404. Returns the MHD result. */
int static_serve(struct http_req *r);

/* Map a request path to a path relative to the web folder ("/" gives
 * "index.html"). 0, or -1 when the path is not one we serve (traversal,
 * hidden or odd segments, too long). Pure: tested without a socket. */
int static_rel_path(const char *url_path, char *out, size_t outlen);

/* The Content-Type for a file name, by its extension. */
const char *static_content_type(const char *name);

/* 1 if an If-None-Match header value matches etag (weak comparison, lists
 * and "*" included). */
int static_etag_matches(const char *if_none_match, const char *etag);

#endif
