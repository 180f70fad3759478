/*
 * utf8.h - checking and repairing text before it reaches PostgreSQL, which
 * refuses invalid UTF-8 (SQLSTATE 22021) with an error we would otherwise
 * report as ours: text from clients is checked and refused with a 4xx;
 * text from our own child processes (a trainer's stderr, the strings in
 * its JSON events) is repaired, since a trial must not fail because its
 * log was cut in the middle of a character.
 */
#ifndef PODIUM_LIB_UTF8_H
#define PODIUM_LIB_UTF8_H

#include <stddef.h>

/* The number of code points of the NUL-terminated s, or (size_t)-1 when s
 * is not valid UTF-8 (overlong forms, surrogates and code points past
 * U+10FFFF included). */
size_t utf8_length(const char *s);

/* A malloc'd, NUL-terminated copy of the len bytes at s that is valid
 * UTF-8: each byte that does not begin a valid sequence becomes U+FFFD,
 * and NUL bytes are dropped. With skip_partial, continuation bytes at the
 * very start (the rest of a character whose head was cut off, as in the
 * tail of a log) are dropped instead. NULL when out of memory. */
char *utf8_scrub_dup(const char *s, size_t len, int skip_partial);

#endif
