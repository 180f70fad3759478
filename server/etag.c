/* etag.c - see etag.h. */
#include "server/etag.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void etag_job(char out[ETAG_MAX], int64_t seq, const char *variant, int weak)
{
    snprintf(out, ETAG_MAX, "%s\"p1-%" PRId64 "-%s\"", weak ? "W/" : "", seq, variant);
}

/* The opaque part of a tag: between the quotes, W/ dropped. */
static void opaque(const char *tag, size_t n, const char **out, size_t *out_len)
{
    if (n >= 2 && tag[0] == 'W' && tag[1] == '/') {
        tag += 2;
        n -= 2;
    }
    *out = tag;
    *out_len = n;
}

int etag_match(const char *inm, const char *etag)
{
    if (inm == NULL || etag == NULL) return 0;
    const char *want;
    size_t want_len;
    opaque(etag, strlen(etag), &want, &want_len);
    const char *p = inm;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        if (*p == '\0') break;
        if (*p == '*') return 1;
        const char *start = p;
        if (p[0] == 'W' && p[1] == '/') p += 2;
        if (*p != '"') {
            /* Not a tag: skip to the next comma. */
            while (*p && *p != ',') p++;
            continue;
        }
        const char *close = strchr(p + 1, '"');
        if (close == NULL) return 0;
        p = close + 1;
        const char *got;
        size_t got_len;
        opaque(start, (size_t)(p - start), &got, &got_len);
        if (got_len == want_len && memcmp(got, want, want_len) == 0) return 1;
    }
    return 0;
}
