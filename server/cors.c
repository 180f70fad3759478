/* cors.c - see cors.h. */
#include "server/cors.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* One entry (not NUL-terminated, n bytes): http(s)://host[:port]. */
static int valid_origin(const char *s, size_t n)
{
    size_t skip;
    if (n > 8 && strncasecmp(s, "https://", 8) == 0) skip = 8;
    else if (n > 7 && strncasecmp(s, "http://", 7) == 0) skip = 7;
    else return 0;
    if (n - skip > 253) return 0;
    int colon = 0;
    for (size_t i = skip; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ':') {
            if (colon++ || i == skip || i + 1 == n) return 0;
        } else if (colon) {
            if (!isdigit(c)) return 0;
        } else if (!isalnum(c) && c != '-' && c != '.' && c != '[' && c != ']') {
            return 0;
        }
    }
    return 1;
}

/* Calls each entry of the list with its bounds; stops early when f
 * returns non-zero and returns that. */
static int each(const char *list, int (*f)(const char *s, size_t n, void *ctx), void *ctx)
{
    const char *p = list;
    while (p && *p) {
        while (*p == ' ' || *p == ',') p++;
        if (*p == '\0') break;
        size_t n = strcspn(p, ",");
        size_t m = n;
        while (m > 0 && p[m - 1] == ' ') m--;
        int rc = f(p, m, ctx);
        if (rc) return rc;
        p += n;
    }
    return 0;
}

struct check_ctx { char *err; size_t errlen; };

static int check_one(const char *s, size_t n, void *ctx)
{
    struct check_ctx *c = ctx;
    if (valid_origin(s, n)) return 0;
    snprintf(c->err, c->errlen, "'%.*s' is not an origin (scheme://host[:port], no path, no *)",
             (int)(n > 200 ? 200 : n), s);
    return -1;
}

int cors_check_list(const char *list, char *err, size_t errlen)
{
    struct check_ctx c = {err, errlen};
    return each(list, check_one, &c) ? -1 : 0;
}

static int match_one(const char *s, size_t n, void *ctx)
{
    const char *origin = ctx;
    return strlen(origin) == n && strncasecmp(origin, s, n) == 0;
}

int cors_allowed(const char *list, const char *origin)
{
    if (list == NULL || *list == '\0' || origin == NULL) return 0;
    size_t n = strlen(origin);
    if (n == 0 || n > 300 || !valid_origin(origin, n)) return 0;
    return each(list, match_one, (void *)origin) == 1;
}
