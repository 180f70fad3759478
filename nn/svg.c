/*
 * svg.c - see svg.h. The buffer doubles as it grows, up to SVG_MAX_BYTES.
 */
#include "nn/svg.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/utf8.h"

static int reserve(struct svg *s, size_t more)
{
    if (s->failed) return -1;
    if (more >= SVG_MAX_BYTES || s->len + more + 1 > SVG_MAX_BYTES) goto fail;
    if (s->len + more + 1 <= s->cap) return 0;
    size_t cap = s->cap ? s->cap : 4096;
    while (cap < s->len + more + 1) cap *= 2;
    char *p = realloc(s->buf, cap);
    if (!p) goto fail;
    s->buf = p;
    s->cap = cap;
    return 0;
fail:
    s->failed = 1;
    return -1;
}

void svg_printf(struct svg *s, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    if (s->failed) return;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        s->failed = 1;
        return;
    }
    if (reserve(s, (size_t)n) != 0) return;
    if ((size_t)n < sizeof small) {
        memcpy(s->buf + s->len, small, (size_t)n + 1);
    } else {
        va_start(ap, fmt);
        vsnprintf(s->buf + s->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    s->len += (size_t)n;
}

void svg_begin(struct svg *s, int width, int height)
{
    memset(s, 0, sizeof *s);
    svg_printf(s,
               "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" "
               "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n",
               width, height, width, height);
}

void svg_escape(struct svg *s, const char *text)
{
    if (!text) return;
    const int utf8_ok = utf8_length(text) != (size_t)-1;
    for (const unsigned char *p = (const unsigned char *)text; *p && !s->failed; p++) {
        switch (*p) {
        case '&': svg_printf(s, "&amp;"); break;
        case '<': svg_printf(s, "&lt;"); break;
        case '>': svg_printf(s, "&gt;"); break;
        case '"': svg_printf(s, "&quot;"); break;
        case '\'': svg_printf(s, "&apos;"); break;
        default:
            if (*p < 0x20 && *p != '\t' && *p != '\n') break;
            if (reserve(s, 1) != 0) return;
            s->buf[s->len++] = (*p >= 0x80 && !utf8_ok) ? '?' : (char)*p;
            s->buf[s->len] = '\0';
        }
    }
}

char *svg_finish(struct svg *s, size_t *len)
{
    svg_printf(s, "</svg>\n");
    if (s->failed) {
        svg_discard(s);
        return NULL;
    }
    char *out = s->buf;
    if (len) *len = s->len;
    memset(s, 0, sizeof *s);
    return out;
}

void svg_discard(struct svg *s)
{
    free(s->buf);
    memset(s, 0, sizeof *s);
}
