/*
 * buf.h - a growable byte buffer and a bounds-checked reader, used to write
 * and read the weights section of model files.
 *
 * Values are written little-endian in their natural width. A reader never
 * reads past its end: every get returns -1 once the data runs out and stays
 * failed, so a truncated model file is reported, not read out of bounds.
 * The buffer owns its bytes; pd_buf_free releases them (NULL-safe).
 */
#ifndef PODIUM_TRAINERS_BUF_H
#define PODIUM_TRAINERS_BUF_H

#include <stddef.h>
#include <stdint.h>

struct pd_buf {
    unsigned char *data;
    size_t len;
    size_t cap;
    int failed;        /* an allocation failed: further puts are no-ops */
};

void pd_buf_init(struct pd_buf *b);
void pd_buf_free(struct pd_buf *b);
int pd_buf_put(struct pd_buf *b, const void *p, size_t n);
int pd_buf_put_u32(struct pd_buf *b, uint32_t v);
int pd_buf_put_u64(struct pd_buf *b, uint64_t v);
int pd_buf_put_f32(struct pd_buf *b, float v);
int pd_buf_put_f64(struct pd_buf *b, double v);
int pd_buf_put_f32s(struct pd_buf *b, const float *v, size_t n);
int pd_buf_put_f64s(struct pd_buf *b, const double *v, size_t n);
int pd_buf_put_str(struct pd_buf *b, const char *s); /* u32 length + bytes */

struct pd_reader {
    const unsigned char *p;
    size_t left;
    int failed;
};

void pd_reader_init(struct pd_reader *r, const void *data, size_t len);
int pd_reader_get(struct pd_reader *r, void *out, size_t n);
int pd_reader_get_u32(struct pd_reader *r, uint32_t *v);
int pd_reader_get_u64(struct pd_reader *r, uint64_t *v);
int pd_reader_get_f32(struct pd_reader *r, float *v);
int pd_reader_get_f64(struct pd_reader *r, double *v);
int pd_reader_get_f32s(struct pd_reader *r, float *v, size_t n);
int pd_reader_get_f64s(struct pd_reader *r, double *v, size_t n);
/* A u32 count that must be <= max (guards allocations sized from a file). */
int pd_reader_get_count(struct pd_reader *r, uint32_t max, uint32_t *v);
/* A string of at most max bytes, returned NUL-terminated in a new
 * allocation the caller frees. */
int pd_reader_get_str(struct pd_reader *r, size_t max, char **out);

#endif
