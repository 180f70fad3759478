/*
 * tensor.c - see tensor.h. Standalone tensors and parameter sets allocate
 * through their backend; values are read and written only through the
 * backend's upload/download (or directly when it is host-visible).
 */
#include "nn/tensor.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NN_PARAMS_MAGIC "NNP1"
#define NN_PARAMS_MAX 100000

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* --- rng ------------------------------------------------------------------ */

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void nn_rng_seed(struct nn_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = splitmix(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t nn_rng_next(struct nn_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double nn_rng_uniform(struct nn_rng *r) { return (double)(nn_rng_next(r) >> 11) * 0x1.0p-53; }

/* --- tensors -------------------------------------------------------------- */

size_t nn_shape_numel(int ndim, const int *shape)
{
    if (ndim < 1 || ndim > NN_MAX_DIMS) return 0;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 1) return 0;
        n *= (size_t)shape[i];
        if (n > ((size_t)1 << 31)) return 0;
    }
    return n;
}

static int tensor_init(struct nn_tensor *t, struct nn_backend *be, int ndim, const int *shape,
                       int with_grad, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    t->numel = nn_shape_numel(ndim, shape);
    if (!t->numel) {
        set_err(err, errlen, "bad tensor shape (ndim %d)", ndim);
        return -1;
    }
    t->ndim = ndim;
    for (int i = 0; i < NN_MAX_DIMS; i++) t->shape[i] = i < ndim ? shape[i] : 1;
    t->be = be;
    t->flags = NN_T_OWNED;
    t->data = be->alloc(be, t->numel);
    if (!t->data) goto fail;
    be->fill(be, t->data, 0.0f, t->numel);
    if (with_grad) {
        t->grad = be->alloc(be, t->numel);
        if (!t->grad) goto fail;
        be->fill(be, t->grad, 0.0f, t->numel);
    }
    return 0;
fail:
    be->free(be, t->data);
    t->data = NULL;
    set_err(err, errlen, "out of memory for a tensor of %zu floats", t->numel);
    return -1;
}

static void tensor_release(struct nn_tensor *t)
{
    if (!(t->flags & NN_T_OWNED)) return;
    t->be->free(t->be, t->data);
    t->be->free(t->be, t->grad);
    t->data = t->grad = NULL;
}

struct nn_tensor *nn_tensor_new(struct nn_backend *be, int ndim, const int *shape, int with_grad,
                                char *err, size_t errlen)
{
    struct nn_tensor *t = malloc(sizeof *t);
    if (!t) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    if (tensor_init(t, be, ndim, shape, with_grad, err, errlen) != 0) {
        free(t);
        return NULL;
    }
    if (with_grad) t->flags |= NN_T_NEEDS_GRAD;
    return t;
}

void nn_tensor_free(struct nn_tensor *t)
{
    if (!t) return;
    tensor_release(t);
    free(t);
}

void nn_tensor_upload(struct nn_tensor *t, const float *host)
{
    t->be->upload(t->be, t->data, host, t->numel);
}

void nn_tensor_download(const struct nn_tensor *t, float *host)
{
    t->be->download(t->be, host, t->data, t->numel);
}

void nn_tensor_download_grad(const struct nn_tensor *t, float *host)
{
    if (t->grad) t->be->download(t->be, host, t->grad, t->numel);
    else memset(host, 0, t->numel * sizeof *host);
}

float *nn_tensor_host_data(struct nn_tensor *t) { return t->be->host_visible ? t->data : NULL; }

float *nn_tensor_host_grad(struct nn_tensor *t) { return t->be->host_visible ? t->grad : NULL; }

/* --- parameter sets --------------------------------------------------------- */

struct nn_params {
    struct nn_backend *be;
    struct nn_tensor **t;
    int n, cap;
};

struct nn_params *nn_params_new(struct nn_backend *be)
{
    struct nn_params *ps = calloc(1, sizeof *ps);
    if (ps) ps->be = be;
    return ps;
}

void nn_params_free(struct nn_params *ps)
{
    if (!ps) return;
    for (int i = 0; i < ps->n; i++) nn_tensor_free(ps->t[i]);
    free(ps->t);
    free(ps);
}

struct nn_tensor *nn_params_find(const struct nn_params *ps, const char *name)
{
    for (int i = 0; i < ps->n; i++)
        if (strcmp(ps->t[i]->name, name) == 0) return ps->t[i];
    return NULL;
}

struct nn_tensor *nn_params_add(struct nn_params *ps, const char *name, int ndim,
                                const int *shape, unsigned kind, char *err, size_t errlen)
{
    if (kind != NN_T_PARAM && kind != NN_T_BUFFER) {
        set_err(err, errlen, "a parameter is NN_T_PARAM or NN_T_BUFFER");
        return NULL;
    }
    size_t nl = strlen(name);
    if (nl == 0 || nl >= NN_MAX_NAME) {
        set_err(err, errlen, "parameter name must be 1..%d bytes", NN_MAX_NAME - 1);
        return NULL;
    }
    if (nn_params_find(ps, name)) {
        set_err(err, errlen, "duplicate parameter name \"%s\"", name);
        return NULL;
    }
    if (ps->n >= NN_PARAMS_MAX) {
        set_err(err, errlen, "too many parameters");
        return NULL;
    }
    if (ps->n == ps->cap) {
        int cap = ps->cap ? 2 * ps->cap : 32;
        struct nn_tensor **nt = realloc(ps->t, (size_t)cap * sizeof *nt);
        if (!nt) {
            set_err(err, errlen, "out of memory");
            return NULL;
        }
        ps->t = nt;
        ps->cap = cap;
    }
    struct nn_tensor *t = nn_tensor_new(ps->be, ndim, shape, kind == NN_T_PARAM, err, errlen);
    if (!t) return NULL;
    t->flags = NN_T_OWNED | kind | (kind == NN_T_PARAM ? NN_T_NEEDS_GRAD : 0);
    memcpy(t->name, name, nl + 1);
    ps->t[ps->n++] = t;
    return t;
}

int nn_params_count(const struct nn_params *ps) { return ps->n; }

struct nn_tensor *nn_params_get(const struct nn_params *ps, int i)
{
    return i >= 0 && i < ps->n ? ps->t[i] : NULL;
}

size_t nn_params_numel(const struct nn_params *ps)
{
    size_t s = 0;
    for (int i = 0; i < ps->n; i++)
        if (ps->t[i]->flags & NN_T_PARAM) s += ps->t[i]->numel;
    return s;
}

void nn_params_zero_grad(struct nn_params *ps)
{
    for (int i = 0; i < ps->n; i++) {
        struct nn_tensor *t = ps->t[i];
        if (t->grad) ps->be->fill(ps->be, t->grad, 0.0f, t->numel);
    }
}

/* --- initialisation ------------------------------------------------------- */

void nn_init_uniform(struct nn_tensor *t, float bound, struct nn_rng *r)
{
    float *h = malloc(t->numel * sizeof *h);
    if (!h) return;
    for (size_t i = 0; i < t->numel; i++) h[i] = (float)((2.0 * nn_rng_uniform(r) - 1.0) * bound);
    nn_tensor_upload(t, h);
    free(h);
}

void nn_init_kaiming_uniform(struct nn_tensor *t, int fan_in, struct nn_rng *r)
{
    nn_init_uniform(t, fan_in > 0 ? (float)(1.0 / sqrt((double)fan_in)) : 0.0f, r);
}

void nn_init_const(struct nn_tensor *t, float v) { t->be->fill(t->be, t->data, v, t->numel); }

/* --- save / load ------------------------------------------------------------ */

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int nn_params_save(const struct nn_params *ps, void **buf, size_t *len, char *err, size_t errlen)
{
    size_t total = 8;
    for (int i = 0; i < ps->n; i++)
        total += 4 + strlen(ps->t[i]->name) + 4 + 4 * NN_MAX_DIMS + 4 * ps->t[i]->numel;
    unsigned char *b = malloc(total), *p = b;
    float *tmp = NULL;
    if (!b) goto oom;
    memcpy(p, NN_PARAMS_MAGIC, 4);
    put_u32(p + 4, (uint32_t)ps->n);
    p += 8;
    for (int i = 0; i < ps->n; i++) {
        const struct nn_tensor *t = ps->t[i];
        uint32_t nl = (uint32_t)strlen(t->name);
        put_u32(p, nl);
        memcpy(p + 4, t->name, nl);
        p += 4 + nl;
        put_u32(p, (uint32_t)t->ndim);
        for (int d = 0; d < NN_MAX_DIMS; d++) put_u32(p + 4 + 4 * d, (uint32_t)t->shape[d]);
        p += 4 + 4 * NN_MAX_DIMS;
        tmp = malloc(t->numel * sizeof *tmp);
        if (!tmp) goto oom;
        nn_tensor_download(t, tmp);
        for (size_t k = 0; k < t->numel; k++) {
            uint32_t u;
            memcpy(&u, &tmp[k], 4);
            put_u32(p + 4 * k, u);
        }
        p += 4 * t->numel;
        free(tmp);
        tmp = NULL;
    }
    *buf = b;
    *len = total;
    return 0;
oom:
    free(b);
    set_err(err, errlen, "out of memory saving parameters");
    return -1;
}

/* Walks the buffer; with apply = 0 only checks it. */
static int params_walk(struct nn_params *ps, const unsigned char *b, size_t len, int apply,
                       char *err, size_t errlen)
{
    if (len < 8 || memcmp(b, NN_PARAMS_MAGIC, 4) != 0) {
        set_err(err, errlen, "not a parameter file (bad magic)");
        return -1;
    }
    uint32_t count = get_u32(b + 4);
    if (count != (uint32_t)ps->n) {
        set_err(err, errlen, "parameter file holds %u tensors, the model has %d", count, ps->n);
        return -1;
    }
    size_t off = 8;
    float *tmp = NULL;
    unsigned char *seen = calloc((size_t)ps->n + 1, 1);
    if (!seen) {
        set_err(err, errlen, "out of memory loading parameters");
        return -1;
    }
    for (uint32_t i = 0; i < count; i++) {
        if (len - off < 4) goto trunc;
        uint32_t nl = get_u32(b + off);
        off += 4;
        if (nl == 0 || nl >= NN_MAX_NAME || len - off < nl) goto trunc;
        char name[NN_MAX_NAME];
        memcpy(name, b + off, nl);
        name[nl] = 0;
        off += nl;
        if (len - off < 4 + 4 * NN_MAX_DIMS) goto trunc;
        uint32_t nd = get_u32(b + off);
        int shape[NN_MAX_DIMS];
        for (int d = 0; d < NN_MAX_DIMS; d++) {
            uint32_t s = get_u32(b + off + 4 + 4 * d);
            shape[d] = s > (1u << 30) ? -1 : (int)s;
        }
        off += 4 + 4 * NN_MAX_DIMS;
        int ti = -1;
        for (int k = 0; k < ps->n && ti < 0; k++)
            if (strcmp(ps->t[k]->name, name) == 0) ti = k;
        if (ti < 0) {
            set_err(err, errlen, "parameter file names \"%s\", which the model lacks", name);
            goto fail;
        }
        if (seen[ti]++) {
            set_err(err, errlen, "parameter file names \"%s\" twice", name);
            goto fail;
        }
        struct nn_tensor *t = ps->t[ti];
        if ((int)nd != t->ndim || memcmp(shape, t->shape, sizeof shape) != 0) {
            set_err(err, errlen, "parameter \"%s\": shape in the file differs from the model's", name);
            goto fail;
        }
        if ((len - off) / 4 < t->numel) goto trunc;
        if (apply) {
            tmp = malloc(t->numel * sizeof *tmp);
            if (!tmp) {
                set_err(err, errlen, "out of memory loading parameters");
                goto fail;
            }
            for (size_t k = 0; k < t->numel; k++) {
                uint32_t u = get_u32(b + off + 4 * k);
                memcpy(&tmp[k], &u, 4);
            }
            nn_tensor_upload(t, tmp);
            free(tmp);
            tmp = NULL;
        }
        off += 4 * t->numel;
    }
    if (off != len) {
        set_err(err, errlen, "parameter file has %zu trailing bytes", len - off);
        goto fail;
    }
    free(seen);
    return 0;
trunc:
    set_err(err, errlen, "parameter file is truncated or corrupt at byte %zu", off);
fail:
    free(seen);
    return -1;
}

int nn_params_load(struct nn_params *ps, const void *buf, size_t len, char *err, size_t errlen)
{
    if (params_walk(ps, buf, len, 0, err, errlen) != 0) return -1;
    return params_walk(ps, buf, len, 1, err, errlen);
}
