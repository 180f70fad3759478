/*
 * utf8.h - checking text from clients before it reaches PostgreSQL, which
 * refuses invalid UTF-8 with an error we would otherwise report as ours.
 */
#ifndef PODIUM_LIB_UTF8_H
#define PODIUM_LIB_UTF8_H

#include <stddef.h>

/* The number of code points of the NUL-terminated s, or (size_t)-1 when s
 * is not valid UTF-8 (overlong forms, surrogates and code points past
 * U+10FFFF included). */
size_t utf8_length(const char *s);

#endif
