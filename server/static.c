/*
 * static.c - see static.h.
 *
 * The request path is checked twice: first as text (a whitelist of
 * characters and plain segments, so "..", "%2e%2e" after decoding, "%252e"
 * and backslashes never reach the file system), then as a file (realpath
 * of the folder and of the file, and the file must lie inside the
 * folder's real path, so a symlink that leads out of it is refused). The
 * body is read from the open file as the client takes it, never whole
 * into memory.
 */
#include "server/static.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "server/http.h"
#include "server/server.h"

#define STATIC_MAX_PATH 512

const char static_csp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'";

static int plain_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-' || c == '_';
}

int static_rel_path(const char *url_path, char *out, size_t outlen)
{
    if (url_path == NULL || url_path[0] != '/' || outlen == 0) return -1;
    if (strcmp(url_path, "/") == 0) url_path = "/index.html";
    size_t n = strlen(url_path);
    if (n > STATIC_MAX_PATH || n >= outlen) return -1;
    /* Segment by segment: each non-empty, not hidden (so neither "." nor
     * ".."), made of plain characters only. */
    const char *seg = url_path + 1;
    for (;;) {
        size_t len = 0;
        while (seg[len] != '\0' && seg[len] != '/') {
            if (!plain_char(seg[len])) return -1;
            len++;
        }
        if (len == 0 || seg[0] == '.') return -1;
        if (seg[len] == '\0') break;
        seg += len + 1;
    }
    memcpy(out, url_path + 1, n);   /* n - 1 characters and the NUL */
    return 0;
}

const char *static_content_type(const char *name)
{
    static const struct { const char *ext, *type; } types[] = {
        {"html", "text/html; charset=utf-8"},
        {"js", "text/javascript; charset=utf-8"},
        {"mjs", "text/javascript; charset=utf-8"},
        {"css", "text/css; charset=utf-8"},
        {"json", "application/json"},
        {"map", "application/json"},
        {"svg", "image/svg+xml"},
        {"png", "image/png"},
        {"ico", "image/vnd.microsoft.icon"},
        {"txt", "text/plain; charset=utf-8"},
        {"woff2", "font/woff2"},
        {"webmanifest", "application/manifest+json"},
    };
    const char *dot = strrchr(name, '.');
    const char *slash = strrchr(name, '/');
    if (dot != NULL && (slash == NULL || dot > slash)) {
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcasecmp(dot + 1, types[i].ext) == 0) return types[i].type;
    }
    return "application/octet-stream";
}

/* The opaque part of an entity tag: without W/ and the quotes' outside. */
static void etag_core(const char *s, size_t n, const char **core, size_t *core_len)
{
    if (n >= 2 && s[0] == 'W' && s[1] == '/') {
        s += 2;
        n -= 2;
    }
    *core = s;
    *core_len = n;
}

int static_etag_matches(const char *if_none_match, const char *etag)
{
    if (if_none_match == NULL || etag == NULL) return 0;
    const char *want;
    size_t want_len;
    etag_core(etag, strlen(etag), &want, &want_len);
    const char *p = if_none_match;
    while (*p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        if (*p == '\0') break;
        size_t n = strcspn(p, ",");
        size_t trimmed = n;
        while (trimmed > 0 && (p[trimmed - 1] == ' ' || p[trimmed - 1] == '\t')) trimmed--;
        if (trimmed == 1 && p[0] == '*') return 1;
        const char *have;
        size_t have_len;
        etag_core(p, trimmed, &have, &have_len);
        if (have_len == want_len && memcmp(have, want, want_len) == 0) return 1;
        p += n;
    }
    return 0;
}

/* --- the body, read from the file as the client takes it ------------------ */

struct file_body {
    int fd;
};

static ssize_t file_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct file_body *fb = cls;
    ssize_t got;
    do {
        got = pread(fb->fd, buf, max, (off_t)pos);
    } while (got < 0 && errno == EINTR);
    if (got <= 0) return MHD_CONTENT_READER_END_WITH_ERROR;  /* shrank or failed */
    return got;
}

static void file_done(void *cls)
{
    struct file_body *fb = cls;
    if (fb == NULL) return;
    if (fb->fd >= 0) close(fb->fd);
    free(fb);
}

static int not_found(struct http_req *r)
{
    return http_problem(r, 404, "not-found", "Not found", NULL, "no resource at %s", r->path);
}

/* features.json: what this server's API offers that the dashboard adapts
 * to, read from the route table, so that the dashboard never has to probe
 * a route that may not exist (each 404 is an error in a browser's console). */
static int serve_features(struct http_req *r)
{
    const struct route *route;
    struct route_params params;
    int events = router_match(server_routes, server_routes_count, "GET",
                              "/v1/jobs/00000000-0000-0000-0000-000000000000/events", &route,
                              &params, NULL, 0) == ROUTE_FOUND;
    cJSON *body = cJSON_CreateObject();
    if (body == NULL || cJSON_AddBoolToObject(body, "events", events) == NULL) {
        cJSON_Delete(body);
        return http_problem(r, 500, "internal", "Internal error", NULL, "out of memory");
    }
    return http_respond_json(r, 200, body);
}

int static_serve(struct http_req *r)
{
    char rel[STATIC_MAX_PATH + 1], root[PATH_MAX], full[PATH_MAX * 2], real[PATH_MAX];
    struct file_body *fb = NULL;
    int fd = -1;

    if (static_rel_path(r->path, rel, sizeof rel) < 0) return not_found(r);
    if (strcmp(rel, "features.json") == 0) return serve_features(r);
    const char *dir = r->srv->cfg.web_dir;
    if (dir == NULL || realpath(dir, root) == NULL) {
        log_msg(LOG_WARN, "request %s: the dashboard's folder '%s' is missing (make web builds it)",
                r->request_id, dir ? dir : "");
        return not_found(r);
    }
    size_t root_len = strlen(root);
    snprintf(full, sizeof full, "%s/%s", root, rel);
    /* realpath resolves every symlink: what it gives must still be inside. */
    if (realpath(full, real) == NULL) return not_found(r);
    if (strncmp(real, root, root_len) != 0 || (root_len > 1 && real[root_len] != '/'))
        return not_found(r);

    fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return not_found(r);
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) goto missing;

    char etag[96];
    snprintf(etag, sizeof etag, "\"%llx-%llx-%llx\"", (unsigned long long)st.st_size,
             (unsigned long long)st.st_mtim.tv_sec * 1000000000ULL +
                 (unsigned long long)st.st_mtim.tv_nsec,
             (unsigned long long)st.st_ino);
    int fresh = static_etag_matches(http_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH), etag);

    fb = malloc(sizeof *fb);
    if (fb == NULL) goto missing;
    fb->fd = fd;
    fd = -1;
    const char *headers[] = {
        MHD_HTTP_HEADER_ETAG, etag,
        MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache",
        "Content-Security-Policy", static_csp,
        "X-Content-Type-Options", "nosniff",
        "Referrer-Policy", "no-referrer",
        NULL,
    };
    if (fresh)  /* 304: no body, the reader is never called */
        return http_respond_callback(r, 304, 0, NULL, headers, file_read, fb, file_done);
    return http_respond_callback(r, 200, (uint64_t)st.st_size, static_content_type(real),
                                 headers, file_read, fb, file_done);

missing:
    if (fd >= 0) close(fd);
    return not_found(r);
}
