/*
 * test_static.c - the dashboard's files served by a real podium-server
 * (server/static.c): content types, ETag and 304, HEAD, the headers every
 * file carries (Cache-Control, Content-Security-Policy), problem+json 404s,
 * and every way out of the folder we could think of: "..", percent-encoded
 * and double-encoded dots and slashes, backslashes, hidden files, symlinks
 * to a file and to a folder outside.
 *
 * Requests go over a raw socket, byte for byte as written here: an HTTP
 * library would tidy "/../" away before it left the process.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <cmocka.h>

#include "tests/support/harness.h"

#define SECRET "top-secret-outside-the-web-folder"
#define INDEX "<!doctype html><title>podium test</title><script type=\"module\" src=\"app.js\"></script>\n"
#define APP_JS "console.log('app');\n"

static struct th_db db;
static struct th_server srv;
static char base[512];

struct raw_resp {
    int status;
    char headers[8192];
    char *body;
    size_t body_len;
};

static void raw_free(struct raw_resp *r)
{
    free(r->body);
    r->body = NULL;
}

/* Send request (the whole text, CRLFs included) and read the answer until
 * the server closes the connection. */
static void raw_http(int port, const char *request, struct raw_resp *out)
{
    memset(out, 0, sizeof *out);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    size_t len = strlen(request);
    assert_int_equal(write(fd, request, len), (ssize_t)len);
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap + 1);
    assert_non_null(buf);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            assert_non_null(buf);
        }
        ssize_t got = read(fd, buf + n, cap - n);
        if (got <= 0) break;
        n += (size_t)got;
    }
    close(fd);
    buf[n] = '\0';
    char *end = strstr(buf, "\r\n\r\n");
    assert_non_null(end);
    size_t hlen = (size_t)(end - buf);
    assert_true(hlen < sizeof out->headers);
    memcpy(out->headers, buf, hlen);
    out->headers[hlen] = '\0';
    assert_int_equal(sscanf(buf, "HTTP/1.1 %d", &out->status), 1);
    out->body_len = n - hlen - 4;
    out->body = malloc(out->body_len + 1);
    assert_non_null(out->body);
    memcpy(out->body, end + 4, out->body_len);
    out->body[out->body_len] = '\0';
    free(buf);
}

/* The value of a header (case-insensitive name), or NULL; static copy. */
static const char *header(const struct raw_resp *r, const char *name)
{
    static char value[1024];
    size_t n = strlen(name);
    for (const char *line = strstr(r->headers, "\r\n"); line; line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ') v++;
            size_t len = strcspn(v, "\r");
            if (len >= sizeof value) len = sizeof value - 1;
            memcpy(value, v, len);
            value[len] = '\0';
            return value;
        }
    }
    return NULL;
}

static void get(const char *method, const char *path, const char *extra, struct raw_resp *out)
{
    char req[4096];
    snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s\r\n",
             method, path, extra ? extra : "");
    raw_http(srv.port, req, out);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    th_write_file(path, text);
}

static int setup(void **state)
{
    snprintf(base, sizeof base, "%s/static-%ld", getenv("PODIUM_TEST_TMP") ? getenv("PODIUM_TEST_TMP") : "/tmp",
             (long)getpid());
    char web[600], sub[700], outside[600], link[800], target[800];
    snprintf(web, sizeof web, "%s/web", base);
    snprintf(sub, sizeof sub, "%s/sub", web);
    snprintf(outside, sizeof outside, "%s/outside", base);
    if (mkdir(base, 0755) < 0 || mkdir(web, 0755) < 0 || mkdir(sub, 0755) < 0 ||
        mkdir(outside, 0755) < 0)
        return -1;
    char subdir[800];
    snprintf(subdir, sizeof subdir, "%s/dir", sub);
    if (mkdir(subdir, 0755) < 0) return -1;
    write_file(web, "index.html", INDEX);
    write_file(web, "app.js", APP_JS);
    write_file(web, "style.css", "body { color: black; }\n");
    write_file(web, ".hidden", SECRET);
    write_file(subdir, "note.txt", "a note\n");
    write_file(base, "secret.txt", SECRET);
    write_file(outside, "secret.txt", SECRET);
    /* A symlink to a file outside, one to a folder outside, one inside. */
    snprintf(link, sizeof link, "%s/escape.txt", web);
    snprintf(target, sizeof target, "%s/secret.txt", base);
    if (symlink(target, link) < 0) return -1;
    snprintf(link, sizeof link, "%s/outdir", web);
    if (symlink(outside, link) < 0) return -1;
    snprintf(link, sizeof link, "%s/alias.js", web);
    if (symlink("app.js", link) < 0) return -1;

    char flag[700];
    snprintf(flag, sizeof flag, "--web-dir=%s", web);
    const char *extra[] = {flag, NULL};
    if (th_db_create(&db) < 0 || th_server_start(&srv, &db, extra) < 0) return -1;
    return 0;
}

static int teardown(void **state)
{
    int rc = th_server_stop(&srv);
    th_db_drop(&db);
    return rc == 0 ? 0 : -1;
}

static void test_index_and_headers(void **state)
{
    struct raw_resp r;
    get("GET", "/", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, INDEX);
    assert_string_equal(header(&r, "Content-Type"), "text/html; charset=utf-8");
    assert_string_equal(header(&r, "Cache-Control"), "no-cache");
    assert_string_equal(header(&r, "X-Content-Type-Options"), "nosniff");
    const char *csp = header(&r, "Content-Security-Policy");
    assert_non_null(csp);
    assert_non_null(strstr(csp, "default-src 'none'"));
    assert_non_null(strstr(csp, "script-src 'self';"));
    assert_non_null(strstr(csp, "connect-src 'self';"));
    assert_null(strstr(csp, "http"));   /* no remote origin anywhere */
    assert_null(strstr(csp, "*"));
    assert_null(strstr(csp, "unsafe"));
    assert_non_null(header(&r, "ETag"));
    assert_non_null(header(&r, "X-Request-Id"));
    raw_free(&r);

    get("GET", "/index.html", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, INDEX);
    raw_free(&r);
}

static void test_content_types(void **state)
{
    static const char *const cases[][2] = {
        {"/app.js", "text/javascript; charset=utf-8"},
        {"/style.css", "text/css; charset=utf-8"},
        {"/sub/dir/note.txt", "text/plain; charset=utf-8"},
        {"/alias.js", "text/javascript; charset=utf-8"},   /* a symlink inside is fine */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct raw_resp r;
        get("GET", cases[i][0], NULL, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(header(&r, "Content-Type"), cases[i][1]);
        raw_free(&r);
    }
}

static void test_head(void **state)
{
    struct raw_resp r;
    get("HEAD", "/app.js", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    char want[32];
    snprintf(want, sizeof want, "%zu", strlen(APP_JS));
    assert_string_equal(header(&r, "Content-Length"), want);
    assert_non_null(header(&r, "ETag"));
    raw_free(&r);
}

static void test_etag_304(void **state)
{
    struct raw_resp r;
    get("GET", "/app.js", NULL, &r);
    assert_int_equal(r.status, 200);
    char etag[256];
    snprintf(etag, sizeof etag, "%s", header(&r, "ETag"));
    assert_true(etag[0] == '"');
    raw_free(&r);

    char h[600];
    /* The same tag, weak, in a list, and any tag at all. */
    const char *before[] = {"", "W/", "\"other\", ", NULL};
    for (size_t i = 0; i < 4; i++) {
        if (before[i]) snprintf(h, sizeof h, "If-None-Match: %s%s\r\n", before[i], etag);
        else snprintf(h, sizeof h, "If-None-Match: *\r\n");
        get("GET", "/app.js", h, &r);
        assert_int_equal(r.status, 304);
        assert_int_equal(r.body_len, 0);
        assert_string_equal(header(&r, "ETag"), etag);
        raw_free(&r);
    }
    get("GET", "/app.js", "If-None-Match: \"stale\"\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, APP_JS);
    raw_free(&r);

    /* A changed file has a new ETag. */
    char path[700];
    snprintf(path, sizeof path, "%s/web/app.js", base);
    th_write_file(path, "console.log('changed');\n");
    snprintf(h, sizeof h, "If-None-Match: %s\r\n", etag);
    get("GET", "/app.js", h, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "console.log('changed');\n");
    assert_string_not_equal(header(&r, "ETag"), etag);
    raw_free(&r);
    th_write_file(path, APP_JS);
}

static void assert_refused(const char *path)
{
    struct raw_resp r;
    get("GET", path, NULL, &r);
    if (r.status != 404 && r.status != 400)
        fail_msg("GET %s answered %d", path, r.status);
    if (strstr(r.body, SECRET) != NULL) fail_msg("GET %s leaked the file outside", path);
    if (r.status == 404) {
        const char *ct = header(&r, "Content-Type");
        if (ct == NULL || strcmp(ct, "application/problem+json") != 0)
            fail_msg("GET %s: 404 without problem+json (%s)", path, ct ? ct : "none");
    }
    raw_free(&r);
}

static void test_traversal(void **state)
{
    static const char *const paths[] = {
        "/../secret.txt",
        "/sub/../../secret.txt",
        "/sub/dir/../../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/%2e%2e%2fsecret.txt",
        "/..%2fsecret.txt",
        "/sub%2f..%2f..%2fsecret.txt",
        "/%252e%252e/secret.txt",
        "/%252e%252e%252fsecret.txt",
        "/..%5csecret.txt",
        "/sub\\..\\..\\secret.txt",
        "/.%2e/secret.txt",
        "/./index.html",
        "//secret.txt",
        "/.hidden",
        "/%2ehidden",
        "/escape.txt",
        "/outdir/secret.txt",
        "/outdir",
        "/sub",
        "/sub/",
        "/sub/dir",
        "/missing.js",
        "/sub/missing/../../index.html",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) assert_refused(paths[i]);

    /* libmicrohttpd decodes %00 into the end of the path, so this is
     * /index.html: inside the folder, and typed by the name we saw. */
    struct raw_resp r;
    get("GET", "/index.html%00.txt", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(header(&r, "Content-Type"), "text/html; charset=utf-8");
    assert_string_equal(r.body, INDEX);
    raw_free(&r);
    get("GET", "/escape.txt%00", NULL, &r);
    assert_int_equal(r.status, 404);
    assert_null(strstr(r.body, SECRET));
    raw_free(&r);
}

static void test_not_static(void **state)
{
    struct raw_resp r;
    /* Only GET and HEAD read files. */
    get("POST", "/index.html", "Content-Length: 0\r\n", &r);
    assert_int_equal(r.status, 404);
    assert_null(strstr(r.body, "<!doctype"));
    raw_free(&r);
    /* /v1 stays the API's: no file is looked for there. */
    get("GET", "/v1/index.html", NULL, &r);
    assert_int_equal(r.status, 404);
    assert_string_equal(header(&r, "Content-Type"), "application/problem+json");
    raw_free(&r);
    get("GET", "/v1", NULL, &r);
    assert_int_equal(r.status, 404);
    raw_free(&r);
    /* API routes are untouched. */
    get("GET", "/healthz", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(header(&r, "Content-Type"), "application/json");
    assert_null(header(&r, "Content-Security-Policy"));
    raw_free(&r);
}

static void test_features(void **state)
{
    struct raw_resp r;
    get("GET", "/features.json", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(header(&r, "Content-Type"), "application/json");
    cJSON *j = cJSON_Parse(r.body);
    assert_non_null(j);
    assert_true(cJSON_IsBool(cJSON_GetObjectItem(j, "events")));
    cJSON_Delete(j);
    raw_free(&r);
}

/* A server whose folder does not exist still serves the API and answers
 * 404 for files. */
static void test_missing_folder(void **state)
{
    struct th_server other;
    const char *extra[] = {"--web-dir=/nonexistent/podium-web", NULL};
    assert_int_equal(th_server_start(&other, &db, extra), 0);
    struct th_resp r;
    assert_int_equal(th_http(&other, "GET", "/", NULL, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.content_type, "application/problem+json");
    th_resp_free(&r);
    assert_int_equal(th_http(&other, "GET", "/healthz", NULL, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    th_resp_free(&r);
    assert_int_equal(th_server_stop(&other), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_and_headers),
        cmocka_unit_test(test_content_types),
        cmocka_unit_test(test_head),
        cmocka_unit_test(test_etag_304),
        cmocka_unit_test(test_traversal),
        cmocka_unit_test(test_not_static),
        cmocka_unit_test(test_features),
        cmocka_unit_test(test_missing_folder),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
