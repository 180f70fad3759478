/* utf8.c - see utf8.h. */
#include "lib/utf8.h"

size_t utf8_length(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t n = 0;
    while (*s) {
        unsigned c = *s;
        int extra;
        unsigned cp;
        if (c < 0x80) { s++; n++; continue; }
        else if (c >= 0xC2 && c <= 0xDF) { extra = 1; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { extra = 2; cp = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { extra = 3; cp = c & 0x07; }
        else return (size_t)-1;
        s++;
        for (int i = 0; i < extra; i++, s++) {
            if ((*s & 0xC0) != 0x80) return (size_t)-1;
            cp = (cp << 6) | (*s & 0x3F);
        }
        if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return (size_t)-1;
        n++;
    }
    return n;
}

