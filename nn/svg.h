/*
 * svg.h - a tiny writer of standalone SVG 1.1 documents into a growing
 * memory buffer, for the charts the service shows (the LR finder's loss
 * curve first). It only knows the document frame and text escaping; the
 * caller writes elements with svg_printf.
 *
 * Ownership: struct svg is the caller's (on the stack is fine); its buffer
 * is freed by svg_discard or handed over by svg_finish. Errors (out of
 * memory) are sticky: after one, every call does nothing and svg_finish
 * returns NULL. One writer per thread.
 */
#ifndef PODIUM_NN_SVG_H
#define PODIUM_NN_SVG_H

#include <stddef.h>

#define SVG_MAX_BYTES (64u << 20)   /* a document larger than this fails */

struct svg {
    char *buf;
    size_t len, cap;
    int failed;
};

/* Start a document width x height (user units = pixels) with the XML
 * declaration, the SVG namespace, version 1.1, width, height and viewBox. */
void svg_begin(struct svg *s, int width, int height);

/* Append markup as is (the caller escapes any text it interpolates). */
void svg_printf(struct svg *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Append text escaped for XML character data and attribute values: & < >
 * " ' become entities, control characters other than tab and newline are
 * dropped, and when text is not valid UTF-8 every byte >= 0x80 becomes '?'. */
void svg_escape(struct svg *s, const char *text);

/* Close the document. Returns the NUL-terminated text (caller frees) and
 * its length in *len (if not NULL), or NULL after any failure (then the
 * buffer is already freed). */
char *svg_finish(struct svg *s, size_t *len);

/* Drop an unfinished document. */
void svg_discard(struct svg *s);

#endif
