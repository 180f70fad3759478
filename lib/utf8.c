/* utf8.c - see utf8.h. */
#include "lib/utf8.h"

#include <stdlib.h>
#include <string.h>

/* The length of the valid UTF-8 sequence at s (n bytes available): 1 to
 * 4, or 0 when s[0] does not begin one (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF). */
static size_t seq_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t extra;
    unsigned cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) { extra = 1; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { extra = 2; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { extra = 3; cp = c & 0x07; }
    else return 0;
    if (n < extra + 1) return 0;
    for (size_t i = 1; i <= extra; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return extra + 1;
}

size_t utf8_length(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t left = strlen(str), n = 0;
    while (left > 0) {
        size_t k = seq_len(s, left);
        if (k == 0) return (size_t)-1;
        s += k;
        left -= k;
        n++;
    }
    return n;
}

char *utf8_scrub_dup(const char *str, size_t len, int skip_partial)
{
    const unsigned char *s = (const unsigned char *)str;
    if (skip_partial)
        while (len > 0 && (*s & 0xC0) == 0x80) s++, len--;
    /* at most 3 bytes out (U+FFFD) per byte in */
    char *out = malloc(3 * len + 1), *o = out;
    if (out == NULL) return NULL;
    while (len > 0) {
        size_t k = seq_len(s, len);
        if (k == 0) {
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
            k = 1;
        } else if (s[0] != 0) {
            memcpy(o, s, k);
            o += k;
        }
        s += k;
        len -= k;
    }
    *o = '\0';
    return out;
}
