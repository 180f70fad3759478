/*
 * buf.c - see buf.h. Little-endian only: the build refuses big-endian hosts
 * rather than byte-swapping, since every machine we deploy on is x86-64 or
 * arm64 little-endian.
 */
#include "trainers/buf.h"

#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "model files are little-endian; add byte swapping for this host"
#endif

void pd_buf_init(struct pd_buf *b) { memset(b, 0, sizeof *b); }

void pd_buf_free(struct pd_buf *b)
{
    if (b == NULL) return;
    free(b->data);
    memset(b, 0, sizeof *b);
}

int pd_buf_put(struct pd_buf *b, const void *p, size_t n)
{
    if (b->failed) return -1;
    if (n > SIZE_MAX - b->len) { b->failed = 1; return -1; }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) {
            if (cap > SIZE_MAX / 2) { b->failed = 1; return -1; }
            cap *= 2;
        }
        unsigned char *d = realloc(b->data, cap);
        if (d == NULL) { b->failed = 1; return -1; }
        b->data = d;
        b->cap = cap;
    }
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int pd_buf_put_u32(struct pd_buf *b, uint32_t v) { return pd_buf_put(b, &v, 4); }
int pd_buf_put_u64(struct pd_buf *b, uint64_t v) { return pd_buf_put(b, &v, 8); }
int pd_buf_put_f32(struct pd_buf *b, float v) { return pd_buf_put(b, &v, 4); }
int pd_buf_put_f64(struct pd_buf *b, double v) { return pd_buf_put(b, &v, 8); }

int pd_buf_put_f32s(struct pd_buf *b, const float *v, size_t n)
{
    if (n > SIZE_MAX / sizeof *v) { b->failed = 1; return -1; }
    return pd_buf_put(b, v, n * sizeof *v);
}

int pd_buf_put_f64s(struct pd_buf *b, const double *v, size_t n)
{
    if (n > SIZE_MAX / sizeof *v) { b->failed = 1; return -1; }
    return pd_buf_put(b, v, n * sizeof *v);
}

int pd_buf_put_str(struct pd_buf *b, const char *s)
{
    size_t n = strlen(s);
    if (n > UINT32_MAX) { b->failed = 1; return -1; }
    if (pd_buf_put_u32(b, (uint32_t)n) < 0) return -1;
    return pd_buf_put(b, s, n);
}

void pd_reader_init(struct pd_reader *r, const void *data, size_t len)
{
    r->p = data;
    r->left = len;
    r->failed = 0;
}

int pd_reader_get(struct pd_reader *r, void *out, size_t n)
{
    if (r->failed || n > r->left) { r->failed = 1; return -1; }
    if (n) memcpy(out, r->p, n);
    r->p += n;
    r->left -= n;
    return 0;
}

int pd_reader_get_u32(struct pd_reader *r, uint32_t *v) { return pd_reader_get(r, v, 4); }
int pd_reader_get_u64(struct pd_reader *r, uint64_t *v) { return pd_reader_get(r, v, 8); }
int pd_reader_get_f32(struct pd_reader *r, float *v) { return pd_reader_get(r, v, 4); }
int pd_reader_get_f64(struct pd_reader *r, double *v) { return pd_reader_get(r, v, 8); }

int pd_reader_get_f32s(struct pd_reader *r, float *v, size_t n)
{
    if (n > r->left / sizeof *v) { r->failed = 1; return -1; }
    return pd_reader_get(r, v, n * sizeof *v);
}

int pd_reader_get_f64s(struct pd_reader *r, double *v, size_t n)
{
    if (n > r->left / sizeof *v) { r->failed = 1; return -1; }
    return pd_reader_get(r, v, n * sizeof *v);
}

int pd_reader_get_count(struct pd_reader *r, uint32_t max, uint32_t *v)
{
    if (pd_reader_get_u32(r, v) < 0) return -1;
    if (*v > max) { r->failed = 1; return -1; }
    return 0;
}

int pd_reader_get_str(struct pd_reader *r, size_t max, char **out)
{
    uint32_t n;
    *out = NULL;
    if (pd_reader_get_u32(r, &n) < 0) return -1;
    if (n > max || n > r->left) { r->failed = 1; return -1; }
    char *s = malloc((size_t)n + 1);
    if (s == NULL) { r->failed = 1; return -1; }
    memcpy(s, r->p, n);
    s[n] = '\0';
    r->p += n;
    r->left -= n;
    *out = s;
    return 0;
}
