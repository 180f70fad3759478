/*
 * profile.c - the one-pass column profiler; the rules it applies are
 * documented in profile.h.
 *
 * State per column: counters by value kind, Welford moments, an adaptive
 * 64-bin histogram, and a distinct-value table keyed by a 64-bit hash that
 * holds at most `cap` entries (a short copy of each value for display)
 * before it is replaced by a HyperLogLog sketch plus a 64-entry
 * space-saving summary. So memory per column is O(cap), independent of the
 * number of rows. The caps are shared: with many columns each gets less
 * (cap = min(distinct_cap, max(32, 500k / columns))), so the tables
 * take at most ~100 MB (72 bytes a slot, load <= 3/4) whatever the input.
 */
#include "lib/profile.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HBINS 64
#define HIST_OUT_MAX 20   /* bins shown at most */
#define SS_K 64
#define HLL_P 12
#define HLL_M (1u << HLL_P)
#define SHOW_MAX 45
#define TOKEN_MAX 64
#define NUM_MAX 255      /* longer values are never numbers */
#define TOTAL_DISTINCT_BUDGET 500000u

static const char *const default_missing[] = {"", "NA", "N/A", "NaN", "null", "?"};

/* one distinct value (exact table or space-saving counter) */
struct dval {
    uint64_t h;            /* 0 = empty slot */
    uint64_t count;
    uint64_t err;          /* space-saving over-count bound */
    unsigned char len;     /* bytes in s */
    unsigned char trunc;   /* the value was longer */
    char s[SHOW_MAX + 1];
};

struct hist {
    uint64_t c[HBINS];
    double buf[HBINS];
    size_t nbuf;
    int ready;
    double lo, w;          /* bin k is [lo + k*w, lo + (k+1)*w) */
};

struct pcol {
    uint64_t n_missing, n_int, n_int01, n_float, n_bool, n_true, n_date, n_str, n_quoted;
    uint64_t n_nonfinite, len_sum, n_space;
    /* numeric moments */
    uint64_t n_num;
    double mean, m2, min, max;
    int64_t last_int;
    int increasing;        /* integers so far strictly increasing */
    struct hist h;
    /* distinct values */
    struct dval *tab;      /* exact: open addressing, tab_cap slots */
    size_t tab_cap, tab_n;
    int estimated;
    unsigned char *hll;    /* HLL_M registers once estimated */
    struct dval *ss;       /* SS_K counters once estimated (display, err) */
    uint64_t *ss_h;        /* their hashes and counts, apart: scanned per value */
    uint64_t *ss_cnt;
    size_t ss_n, ss_cursor;
    uint64_t ss_min;       /* a lower bound of the smallest count */
};

struct profile {
    struct profile_opts o;
    char (*tokens)[TOKEN_MAX + 1];  /* copies of the missing tokens */
    size_t *tok_len;
    size_t n_tokens;
    size_t cap;
    char delimiter;
    int started, has_header;
    size_t n_cols;
    uint64_t n_rows;
    char **names;
    struct pcol *cols;
    char err[256];
};

/* --- small helpers ----------------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)n;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    /* splitmix64 finalizer: FNV's high bits are weak for HyperLogLog */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h ? h : 1;
}

static int ieq(const char *a, size_t an, const char *b)
{
    size_t bn = strlen(b);
    return an == bn && strncasecmp(a, b, an) == 0;
}

static void trim(const char **s, size_t *n)
{
    const char *p = *s;
    size_t len = *n;
    while (len > 0 && (*p == ' ' || *p == '\t')) { p++; len--; }
    while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
    *s = p;
    *n = len;
}

static int is_missing(const struct profile *pr, const char *s, size_t n)
{
    for (size_t t = 0; t < pr->n_tokens; t++) {
        const char *tok = pr->tokens[t];
        if (pr->tok_len[t] != n) continue;
        if (pr->o.missing_case_sensitive ? memcmp(s, tok, n) == 0 : strncasecmp(s, tok, n) == 0)
            return 1;
    }
    return 0;
}

/* 1 true, 0 false, -1 not a boolean */
static int parse_bool(const char *s, size_t n)
{
    static const char *const t[] = {"true", "yes", "y", "t"};
    static const char *const f[] = {"false", "no", "n", "f"};
    if (n == 0 || n > 5) return -1;
    for (int i = 0; i < 4; i++) {
        if (ieq(s, n, t[i])) return 1;
        if (ieq(s, n, f[i])) return 0;
    }
    return -1;
}

/* An integer of at most 18 digits (so it fits int64). */
static int parse_int(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    if (i == n || n - i > 18) return 0;
    int64_t v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = neg ? -v : v;
    return 1;
}

static int digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

static int num2(const char *s) { return (s[0] - '0') * 10 + (s[1] - '0'); }

/* ISO-8601: YYYY-MM-DD[(T| )HH:MM[:SS[.frac]][Z|(+|-)HH[:]MM]] */
static int is_datetime(const char *s, size_t n)
{
    if (n < 10 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' ||
        !digits(s + 8, 2))
        return 0;
    int mo = num2(s + 5), d = num2(s + 8);
    if (mo < 1 || mo > 12 || d < 1 || d > 31) return 0;
    if (n == 10) return 1;
    if (n < 16 || (s[10] != 'T' && s[10] != ' ') || !digits(s + 11, 2) || s[13] != ':' ||
        !digits(s + 14, 2))
        return 0;
    if (num2(s + 11) > 24 || num2(s + 14) > 59) return 0;
    size_t i = 16;
    if (i < n && s[i] == ':') {
        if (i + 3 > n || !digits(s + i + 1, 2) || num2(s + i + 1) > 60) return 0;
        i += 3;
        if (i < n && (s[i] == '.' || s[i] == ',')) {
            size_t j = ++i;
            while (i < n && s[i] >= '0' && s[i] <= '9') i++;
            if (i == j) return 0;
        }
    }
    if (i < n && s[i] == 'Z') {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        i++;
        if (i + 2 > n || !digits(s + i, 2)) return 0;
        i += 2;
        if (i < n && s[i] == ':') i++;
        if (i < n) {
            if (i + 2 > n || !digits(s + i, 2)) return 0;
            i += 2;
        }
    }
    return i == n;
}

/* A display copy: at most SHOW_MAX bytes, cut at a UTF-8 boundary. */
static void set_show(struct dval *d, const char *s, size_t n)
{
    size_t k = n;
    if (k > SHOW_MAX) {
        k = SHOW_MAX;
        while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
        d->trunc = 1;
    } else {
        d->trunc = 0;
    }
    memcpy(d->s, s, k);
    d->s[k] = '\0';
    d->len = (unsigned char)k;
}

/* --- histogram ----------------------------------------------------------------- */

static void hist_init(struct hist *h)
{
    double mn = h->buf[0], mx = h->buf[0];
    for (size_t i = 1; i < h->nbuf; i++) {
        if (h->buf[i] < mn) mn = h->buf[i];
        if (h->buf[i] > mx) mx = h->buf[i];
    }
    /* the data so far covers the middle half of the bins */
    double w = (mx - mn) / (HBINS / 2);
    if (!(w > 0) || !isfinite(w)) w = fabs(mn) > 0 ? fabs(mn) / 1024 : 1.0 / 1024;
    h->w = w;
    h->lo = mn - (HBINS / 4) * w;
    if (!isfinite(h->lo)) h->lo = mn;
    h->ready = 1;
}

static void hist_put(struct hist *h, double v)
{
    for (int it = 0; it < 4200; it++) {
        double t = (v - h->lo) / h->w;
        if (t >= 0 && t < HBINS) {
            h->c[(int)t]++;
            return;
        }
        if (!isfinite(t) || !isfinite(h->w * 2)) break;
        if (v < h->lo) {
            /* extend to the left: old bins become the upper half */
            for (int j = HBINS - 1; j >= HBINS / 2; j--) {
                int src = 2 * (j - HBINS / 2);
                h->c[j] = h->c[src] + h->c[src + 1];
            }
            memset(h->c, 0, sizeof h->c[0] * (HBINS / 2));
            h->lo -= HBINS * h->w;
        } else {
            for (int j = 0; j < HBINS / 2; j++) h->c[j] = h->c[2 * j] + h->c[2 * j + 1];
            memset(h->c + HBINS / 2, 0, sizeof h->c[0] * (HBINS / 2));
        }
        h->w *= 2;
    }
    /* cannot widen further (range near the limits of double): clamp */
    h->c[v < h->lo ? 0 : HBINS - 1]++;
}

static void hist_add(struct hist *h, double v)
{
    if (!h->ready) {
        h->buf[h->nbuf++] = v;
        if (h->nbuf < HBINS) return;
        hist_init(h);
        for (size_t i = 0; i < h->nbuf; i++) hist_put(h, h->buf[i]);
        h->nbuf = 0;
        return;
    }
    hist_put(h, v);
}

/* --- distinct values ------------------------------------------------------------ */

static void hll_add(unsigned char *reg, uint64_t h)
{
    uint32_t idx = (uint32_t)(h >> (64 - HLL_P));
    uint64_t w = (h << HLL_P) | (1ULL << (HLL_P - 1));
    unsigned char rho = (unsigned char)(__builtin_clzll(w) + 1);
    if (rho > reg[idx]) reg[idx] = rho;
}

static double hll_estimate(const unsigned char *reg)
{
    double m = HLL_M, sum = 0;
    unsigned zeros = 0;
    for (unsigned i = 0; i < HLL_M; i++) {
        sum += ldexp(1.0, -reg[i]);
        if (reg[i] == 0) zeros++;
    }
    double e = 0.7213 / (1 + 1.079 / m) * m * m / sum;
    if (e <= 2.5 * m && zeros > 0) e = m * log(m / zeros);
    return e;
}

/* Space-saving: a known value counts up; a new one replaces a counter with
 * the smallest count (found round-robin from a cursor, so a stream of
 * distinct values costs O(1) amortized) and inherits that count as its
 * over-count bound. */
static void ss_add(struct pcol *c, uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < c->ss_n; i++) {
        if (c->ss_h[i] == h) {
            c->ss_cnt[i]++;
            return;
        }
    }
    if (c->ss_n < SS_K) {
        size_t i = c->ss_n++;
        c->ss_h[i] = h;
        c->ss_cnt[i] = 1;
        c->ss[i].err = 0;
        set_show(&c->ss[i], s, n);
        c->ss_min = 1;
        return;
    }
    size_t mi = SS_K;
    for (int pass = 0; pass < 2 && mi == SS_K; pass++) {
        for (size_t j = 0; j < SS_K; j++) {
            size_t i = (c->ss_cursor + j) % SS_K;
            if (c->ss_cnt[i] <= c->ss_min) {
                mi = i;
                break;
            }
        }
        if (mi == SS_K) {
            uint64_t m = c->ss_cnt[0];
            for (size_t i = 1; i < SS_K; i++) m = c->ss_cnt[i] < m ? c->ss_cnt[i] : m;
            c->ss_min = m;
        }
    }
    c->ss_cursor = (mi + 1) % SS_K;
    c->ss[mi].err = c->ss_cnt[mi];
    c->ss_cnt[mi]++;
    c->ss_h[mi] = h;
    set_show(&c->ss[mi], s, n);
}

static int by_count_desc(const void *a, const void *b)
{
    const struct dval *x = a, *y = b;
    if (x->count != y->count) return x->count < y->count ? 1 : -1;
    int c = strcmp(x->s, y->s);
    if (c != 0) return c;
    return x->h < y->h ? -1 : x->h > y->h;
}

/* The exact table is full: switch to HLL + space-saving. */
static int go_estimated(struct pcol *c)
{
    c->hll = calloc(HLL_M, 1);
    c->ss = calloc(SS_K, sizeof *c->ss);
    c->ss_h = calloc(SS_K, sizeof *c->ss_h);
    c->ss_cnt = calloc(SS_K, sizeof *c->ss_cnt);
    if (c->hll == NULL || c->ss == NULL || c->ss_h == NULL || c->ss_cnt == NULL) return -1;
    size_t k = 0;
    for (size_t i = 0; i < c->tab_cap; i++) {
        if (c->tab[i].h == 0) continue;
        hll_add(c->hll, c->tab[i].h);
        c->tab[k++] = c->tab[i];
    }
    qsort(c->tab, k, sizeof *c->tab, by_count_desc);
    c->ss_n = k < SS_K ? k : SS_K;
    memcpy(c->ss, c->tab, c->ss_n * sizeof *c->ss);
    c->ss_min = c->ss_n ? c->tab[c->ss_n - 1].count : 0;
    for (size_t i = 0; i < c->ss_n; i++) {
        c->ss_h[i] = c->ss[i].h;
        c->ss_cnt[i] = c->ss[i].count;
    }
    free(c->tab);
    c->tab = NULL;
    c->tab_cap = c->tab_n = 0;
    c->estimated = 1;
    return 0;
}

static int tab_grow(struct pcol *c)
{
    size_t cap = c->tab_cap ? c->tab_cap * 2 : 64;
    struct dval *t = calloc(cap, sizeof *t);
    if (t == NULL) return -1;
    for (size_t i = 0; i < c->tab_cap; i++) {
        if (c->tab[i].h == 0) continue;
        size_t s = (size_t)c->tab[i].h & (cap - 1);
        while (t[s].h != 0) s = (s + 1) & (cap - 1);
        t[s] = c->tab[i];
    }
    free(c->tab);
    c->tab = t;
    c->tab_cap = cap;
    return 0;
}

static int distinct_add(struct pcol *c, size_t cap, const char *s, size_t n)
{
    uint64_t h = hash_bytes(s, n);
    if (c->estimated) {
        hll_add(c->hll, h);
        ss_add(c, h, s, n);
        return 0;
    }
    if (c->tab_cap > 0) {
        size_t i = (size_t)h & (c->tab_cap - 1);
        while (c->tab[i].h != 0) {
            if (c->tab[i].h == h) {
                c->tab[i].count++;
                return 0;
            }
            i = (i + 1) & (c->tab_cap - 1);
        }
    }
    if (c->tab_n >= cap) {
        if (go_estimated(c) < 0) return -1;
        hll_add(c->hll, h);
        ss_add(c, h, s, n);
        return 0;
    }
    if (4 * (c->tab_n + 1) > 3 * c->tab_cap && tab_grow(c) < 0) return -1;
    size_t i = (size_t)h & (c->tab_cap - 1);
    while (c->tab[i].h != 0) i = (i + 1) & (c->tab_cap - 1);
    c->tab[i].h = h;
    c->tab[i].count = 1;
    c->tab[i].err = 0;
    set_show(&c->tab[i], s, n);
    c->tab_n++;
    return 0;
}

/* Distinct count (exact or estimated). */
static uint64_t distinct_of(const struct pcol *c)
{
    if (!c->estimated) return c->tab_n;
    return (uint64_t)llround(hll_estimate(c->hll));
}

/* The counted values sorted by count (caller frees); *n gets their number. */
static struct dval *sorted_values(const struct pcol *c, size_t *n)
{
    size_t k = 0;
    struct dval *v;
    if (c->estimated) {
        v = malloc((c->ss_n ? c->ss_n : 1) * sizeof *v);
        if (v == NULL) return NULL;
        memcpy(v, c->ss, c->ss_n * sizeof *v);
        for (size_t i = 0; i < c->ss_n; i++) {
            v[i].h = c->ss_h[i];
            v[i].count = c->ss_cnt[i];
        }
        k = c->ss_n;
    } else {
        v = malloc((c->tab_n ? c->tab_n : 1) * sizeof *v);
        if (v == NULL) return NULL;
        for (size_t i = 0; i < c->tab_cap; i++)
            if (c->tab[i].h != 0) v[k++] = c->tab[i];
    }
    qsort(v, k, sizeof *v, by_count_desc);
    *n = k;
    return v;
}

/* --- lifecycle ------------------------------------------------------------------- */

struct profile *profile_new(const struct profile_opts *opts)
{
    struct profile *pr = calloc(1, sizeof *pr);
    if (pr == NULL) return NULL;
    if (opts != NULL) pr->o = *opts;
    if (pr->o.distinct_cap == 0) pr->o.distinct_cap = PROFILE_DEFAULT_DISTINCT_CAP;
    if (pr->o.top_k == 0) pr->o.top_k = PROFILE_DEFAULT_TOP_K;
    if (pr->o.top_k > PROFILE_MAX_TOP_K) goto bad;
    const char *const *tok = pr->o.missing ? pr->o.missing : default_missing;
    size_t nt = pr->o.missing ? pr->o.n_missing : sizeof default_missing / sizeof *default_missing;
    if (nt > 1024 || (nt > 0 && tok == NULL)) goto bad;
    pr->tokens = calloc(nt ? nt : 1, sizeof *pr->tokens);
    pr->tok_len = calloc(nt ? nt : 1, sizeof *pr->tok_len);
    if (pr->tokens == NULL || pr->tok_len == NULL) goto bad;
    for (size_t t = 0; t < nt; t++) {
        if (tok[t] == NULL) goto bad;
        size_t l = strlen(tok[t]);
        if (l > TOKEN_MAX) goto bad;
        memcpy(pr->tokens[t], tok[t], l + 1);
        pr->tok_len[t] = l;
    }
    pr->n_tokens = nt;
    pr->o.missing = NULL;   /* copied; the caller's array need not outlive this call */
    return pr;
bad:
    free(pr->tokens);
    free(pr->tok_len);
    free(pr);
    return NULL;
}

void profile_free(struct profile *pr)
{
    if (pr == NULL) return;
    for (size_t c = 0; c < pr->n_cols && pr->cols != NULL; c++) {
        free(pr->cols[c].tab);
        free(pr->cols[c].hll);
        free(pr->cols[c].ss);
        free(pr->cols[c].ss_h);
        free(pr->cols[c].ss_cnt);
    }
    free(pr->cols);
    free(pr->names);
    free(pr->tokens);
    free(pr->tok_len);
    free(pr);
}

void profile_set_delimiter(struct profile *pr, char delimiter)
{
    if (pr != NULL) pr->delimiter = delimiter;
}

const char *profile_error(const struct profile *pr) { return pr->err; }

static int start(struct profile *pr, const struct csv_record *rec, char *err, size_t errlen)
{
    size_t n = rec->n_fields;
    pr->n_cols = n;
    pr->cols = calloc(n ? n : 1, sizeof *pr->cols);
    if (pr->cols == NULL) goto nomem;
    for (size_t c = 0; c < n; c++) pr->cols[c].increasing = 1;
    size_t per = TOTAL_DISTINCT_BUDGET / (n ? n : 1);
    if (per < 32) per = 32;
    pr->cap = pr->o.distinct_cap < per ? pr->o.distinct_cap : per;
    pr->has_header = pr->o.header == CSV_HEADER_YES ||
                     (pr->o.header == CSV_HEADER_AUTO && csv_row_is_header(rec));
    char **raw = NULL;
    if (pr->has_header) {
        raw = calloc(n ? n : 1, sizeof *raw);
        if (raw == NULL) goto nomem;
        for (size_t c = 0; c < n; c++)
            if ((raw[c] = strndup(rec->fields[c].ptr, rec->fields[c].len)) == NULL) break;
    }
    pr->names = csv_unique_names((const char *const *)raw, n);
    for (size_t c = 0; raw != NULL && c < n; c++) free(raw[c]);
    free(raw);
    if (pr->names == NULL) goto nomem;
    pr->started = 1;
    return 0;
nomem:
    snprintf(err, errlen, "out of memory");
    return -1;
}

static int add_value(struct profile *pr, struct pcol *c, const struct csv_field *f)
{
    const char *s = f->ptr;
    size_t n = f->len;
    trim(&s, &n);
    if (n <= TOKEN_MAX && is_missing(pr, s, n)) {
        c->n_missing++;
        return 0;
    }
    if (f->quoted) c->n_quoted++;
    int64_t iv;
    int b;
    char nbuf[NUM_MAX + 1];
    if (n > NUM_MAX) goto other;   /* no sensible number is this long */
    if (parse_int(s, n, &iv)) {
        c->n_int++;
        if (iv == 0 || iv == 1) c->n_int01++;
        if (c->n_int > 1 && iv <= c->last_int) c->increasing = 0;
        c->last_int = iv;
        goto numeric;
    }
    if (csv_is_number(s, n)) {
        c->n_float++;
        c->increasing = 0;
        goto numeric;
    }
other:
    c->increasing = 0;
    if ((b = parse_bool(s, n)) >= 0) {
        c->n_bool++;
        c->n_true += (uint64_t)b;
    } else if (is_datetime(s, n)) {
        c->n_date++;
    } else {
        c->n_str++;
        c->len_sum += n;
        if (memchr(s, ' ', n) != NULL) c->n_space++;
    }
    return distinct_add(c, pr->cap, s, n);
numeric: {
        /* a NUL-terminated copy: hand-made records need not be terminated */
        memcpy(nbuf, s, n);
        nbuf[n] = '\0';
        double v = strtod(nbuf, NULL);
        if (!isfinite(v)) {
            c->n_nonfinite++;
        } else {
            c->n_num++;
            if (c->n_num == 1) {
                c->min = c->max = v;
            } else {
                if (v < c->min) c->min = v;
                if (v > c->max) c->max = v;
            }
            double d = v - c->mean;
            c->mean += d / (double)c->n_num;
            c->m2 += d * (v - c->mean);
            hist_add(&c->h, v);
        }
        return distinct_add(c, pr->cap, s, n);
    }
}

int profile_add(struct profile *pr, const struct csv_record *rec, char *err, size_t errlen)
{
    if (pr == NULL || rec == NULL) {
        snprintf(err, errlen, "invalid argument");
        return -1;
    }
    if (!pr->started) {
        if (start(pr, rec, err, errlen) < 0) return -1;
        if (pr->has_header) return 0;
    }
    if (rec->n_fields != pr->n_cols) {
        snprintf(err, errlen, "line %llu: %zu fields, expected %zu",
                 (unsigned long long)rec->line, rec->n_fields, pr->n_cols);
        return -1;
    }
    for (size_t c = 0; c < pr->n_cols; c++) {
        if (add_value(pr, &pr->cols[c], &rec->fields[c]) < 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    pr->n_rows++;
    return 0;
}

int profile_record_cb(void *ctx, const struct csv_record *rec)
{
    struct profile *pr = ctx;
    return profile_add(pr, rec, pr->err, sizeof pr->err) < 0 ? 1 : 0;
}

/* --- decisions -------------------------------------------------------------------- */

enum ptype { T_EMPTY, T_BOOLEAN, T_INTEGER, T_FLOAT, T_DATETIME, T_IDENTIFIER, T_TEXT, T_CATEGORICAL };
static const char *const type_names[] = {"empty", "boolean", "integer", "float",
                                         "datetime", "identifier", "text", "categorical"};

static int name_is_id(const char *name)
{
    static const char *const exact[] = {"id", "key", "uuid", "guid", "index", "rowid", "row_id",
                                        "row", "rownames", "row.names", "record_id"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof exact / sizeof *exact; i++)
        if (strcasecmp(name, exact[i]) == 0) return 1;
    if (n > 3) {
        const char *t = name + n - 3;
        if ((t[0] == '_' || t[0] == '.' || t[0] == '-' || t[0] == ' ') && strcasecmp(t + 1, "id") == 0)
            return 1;
    }
    /* camelCase: customerId, userID */
    if (n > 2 && (strcmp(name + n - 2, "Id") == 0 || strcmp(name + n - 2, "ID") == 0) &&
        islower((unsigned char)name[n - 3]))
        return 1;
    return 0;
}

static enum ptype col_type(const struct profile *pr, size_t ci)
{
    const struct pcol *c = &pr->cols[ci];
    uint64_t nm = pr->n_rows - c->n_missing;
    if (nm == 0) return T_EMPTY;
    uint64_t distinct = distinct_of(c);
    uint64_t nnum = c->n_int + c->n_float;
    int all_unique = distinct >= nm && nm == pr->n_rows && pr->n_rows >= 2;
    if (c->estimated) all_unique = (double)distinct >= 0.97 * (double)nm && nm == pr->n_rows;
    int idname = name_is_id(pr->names[ci]) && (double)distinct >= 0.9 * (double)nm;
    if (c->n_bool > 0 && c->n_bool + c->n_int01 == nm && c->n_int == c->n_int01) return T_BOOLEAN;
    if (c->n_int == nm) {
        if (idname || (all_unique && c->increasing && pr->n_rows >= 10)) return T_IDENTIFIER;
        return T_INTEGER;
    }
    if (nnum == nm) return T_FLOAT;   /* n_float includes out-of-range values */
    if (c->n_date == nm) return T_DATETIME;
    double mean_len = c->n_str ? (double)c->len_sum / (double)c->n_str : 0;
    if ((double)distinct > 0.5 * (double)nm && (mean_len > 20 || c->n_space * 2 > c->n_str))
        return T_TEXT;
    if (idname || (all_unique && mean_len <= 40 && c->n_str * 2 > nm && pr->n_rows >= 10))
        return T_IDENTIFIER;
    return T_CATEGORICAL;
}

static int is_constant(const struct profile *pr, size_t ci)
{
    return distinct_of(&pr->cols[ci]) <= 1;
}

static int target_index(const struct profile *pr, const enum ptype *types)
{
    static const char *const names[] = {"target", "label", "class", "y", "outcome", "species",
                                        "diagnosis", "type", "response", "category",
                                        "survived", "churn"};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++)
        for (size_t c = pr->n_cols; c-- > 0;)
            if (types[c] != T_IDENTIFIER && strcasecmp(pr->names[c], names[k]) == 0) return (int)c;
    for (size_t c = pr->n_cols; c-- > 0;)
        if (types[c] != T_IDENTIFIER && !is_constant(pr, c)) return (int)c;
    return -1;
}

static int is_classification(const struct profile *pr, size_t ci, enum ptype t)
{
    const struct pcol *c = &pr->cols[ci];
    uint64_t nm = pr->n_rows - c->n_missing;
    uint64_t d = distinct_of(c);
    if (t == T_BOOLEAN || t == T_CATEGORICAL) return 1;
    if (t == T_INTEGER && !c->estimated) return d <= 2 || (d <= 20 && d * 5 <= nm);
    return 0;
}

/* --- output ----------------------------------------------------------------------- */

static cJSON *values_json(const struct dval *v, size_t n, size_t limit)
{
    cJSON *a = cJSON_CreateArray();
    if (a == NULL) return NULL;
    for (size_t i = 0; i < n && i < limit; i++) {
        cJSON *o = cJSON_CreateObject();
        if (o == NULL) goto fail;
        cJSON_AddItemToArray(a, o);
        if (cJSON_AddStringToObject(o, "value", v[i].s) == NULL ||
            cJSON_AddNumberToObject(o, "count", (double)v[i].count) == NULL)
            goto fail;
        if (v[i].trunc && cJSON_AddBoolToObject(o, "truncated", 1) == NULL) goto fail;
    }
    return a;
fail:
    cJSON_Delete(a);
    return NULL;
}

static cJSON *hist_json(const struct hist *h0)
{
    struct hist h = *h0;
    if (!h.ready) {
        if (h.nbuf == 0) return NULL;
        size_t nb = h.nbuf;
        hist_init(&h);
        for (size_t i = 0; i < nb; i++) hist_put(&h, h.buf[i]);
    }
    int first, last;
    for (;;) {
        first = 0;
        last = HBINS - 1;
        while (first < HBINS && h.c[first] == 0) first++;
        while (last > first && h.c[last] == 0) last--;
        if (first == HBINS) return NULL;
        if (last - first + 1 <= HIST_OUT_MAX) break;
        /* too fine to read: double the bin width (grid stays aligned at lo) */
        for (int j = 0; j < HBINS / 2; j++) h.c[j] = h.c[2 * j] + h.c[2 * j + 1];
        memset(h.c + HBINS / 2, 0, sizeof h.c[0] * (HBINS / 2));
        h.w *= 2;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *edges = cJSON_AddArrayToObject(o, "edges");
    cJSON *counts = cJSON_AddArrayToObject(o, "counts");
    if (o == NULL || edges == NULL || counts == NULL) goto fail;
    for (int k = first; k <= last + 1; k++) {
        cJSON *e = cJSON_CreateNumber(h.lo + k * h.w);
        if (e == NULL) goto fail;
        cJSON_AddItemToArray(edges, e);
    }
    for (int k = first; k <= last; k++) {
        cJSON *e = cJSON_CreateNumber((double)h.c[k]);
        if (e == NULL) goto fail;
        cJSON_AddItemToArray(counts, e);
    }
    return o;
fail:
    cJSON_Delete(o);
    return NULL;
}

static cJSON *column_json(const struct profile *pr, size_t ci, enum ptype t)
{
    const struct pcol *c = &pr->cols[ci];
    uint64_t nm = pr->n_rows - c->n_missing;
    uint64_t d = distinct_of(c);
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) return NULL;
    int ok = cJSON_AddStringToObject(o, "name", pr->names[ci]) &&
             cJSON_AddNumberToObject(o, "index", (double)ci) &&
             cJSON_AddStringToObject(o, "type", type_names[t]) &&
             cJSON_AddNumberToObject(o, "missing", (double)c->n_missing) &&
             cJSON_AddNumberToObject(o, "distinct", (double)d) &&
             cJSON_AddBoolToObject(o, "distinct_estimated", c->estimated) &&
             cJSON_AddBoolToObject(o, "constant", is_constant(pr, ci)) &&
             cJSON_AddBoolToObject(o, "identifier", t == T_IDENTIFIER) &&
             cJSON_AddNumberToObject(o, "quoted", (double)c->n_quoted);
    if (!ok) goto fail;
    if (t == T_INTEGER || t == T_FLOAT) {
        double sd = c->n_num > 1 ? sqrt(c->m2 / (double)(c->n_num - 1)) : 0;
        cJSON *num = cJSON_AddObjectToObject(o, "numeric");
        if (num == NULL || !cJSON_AddNumberToObject(num, "min", c->min) ||
            !cJSON_AddNumberToObject(num, "max", c->max) ||
            !cJSON_AddNumberToObject(num, "mean", c->mean) ||
            !cJSON_AddNumberToObject(num, "std", sd))
            goto fail;
        if (c->n_nonfinite > 0 && !cJSON_AddNumberToObject(num, "out_of_range", (double)c->n_nonfinite))
            goto fail;
        cJSON *h = hist_json(&c->h);
        if (h != NULL) cJSON_AddItemToObject(o, "histogram", h);
    }
    if (t == T_BOOLEAN) {
        cJSON *b = cJSON_AddObjectToObject(o, "boolean");
        if (b == NULL || !cJSON_AddNumberToObject(b, "true", (double)c->n_true) ||
            !cJSON_AddNumberToObject(b, "false", (double)(nm - c->n_true)))
            goto fail;
    }
    if (t == T_TEXT || (t != T_IDENTIFIER && c->n_str > 0)) {
        if (!cJSON_AddNumberToObject(o, "mean_length",
                                     c->n_str ? (double)c->len_sum / (double)c->n_str : 0))
            goto fail;
    }
    if (t == T_INTEGER && d >= 2 && d <= 20) {
        char note[160];
        if (c->n_quoted * 2 > nm)
            snprintf(note, sizeof note, "%llu distinct integer codes, quoted in the file: "
                     "probably categories (or ordered levels)", (unsigned long long)d);
        else
            snprintf(note, sizeof note, "%llu distinct integer values: possibly codes of categories",
                     (unsigned long long)d);
        if (!cJSON_AddStringToObject(o, "note", note)) goto fail;
    }
    if (t == T_BOOLEAN || t == T_CATEGORICAL || t == T_DATETIME || (t == T_INTEGER && d <= 50)) {
        size_t n = 0;
        struct dval *v = sorted_values(c, &n);
        if (v == NULL) goto fail;
        cJSON *top = values_json(v, n, pr->o.top_k);
        free(v);
        if (top == NULL) goto fail;
        cJSON_AddItemToObject(o, "top", top);
        if (!cJSON_AddBoolToObject(o, "top_exact", !c->estimated)) goto fail;
    }
    return o;
fail:
    cJSON_Delete(o);
    return NULL;
}

cJSON *profile_to_json(const struct profile *pr)
{
    if (pr == NULL || !pr->started) return NULL;
    enum ptype *types = calloc(pr->n_cols ? pr->n_cols : 1, sizeof *types);
    cJSON *o = cJSON_CreateObject();
    if (types == NULL || o == NULL) goto fail;
    uint64_t missing = 0;
    for (size_t c = 0; c < pr->n_cols; c++) {
        types[c] = col_type(pr, c);
        missing += pr->cols[c].n_missing;
    }
    char delim[2] = {pr->delimiter, 0};
    if (!cJSON_AddNumberToObject(o, "n_rows", (double)pr->n_rows) ||
        !cJSON_AddNumberToObject(o, "n_columns", (double)pr->n_cols) ||
        !cJSON_AddStringToObject(o, "delimiter", delim) ||
        !cJSON_AddStringToObject(o, "header", pr->has_header ? "present" : "generated") ||
        !cJSON_AddNumberToObject(o, "missing_total", (double)missing))
        goto fail;
    int ti = target_index(pr, types);
    if (ti >= 0) {
        int cls = is_classification(pr, (size_t)ti, types[ti]);
        if (!cJSON_AddStringToObject(o, "target", pr->names[ti]) ||
            !cJSON_AddStringToObject(o, "task", cls ? "classification" : "regression"))
            goto fail;
        if (cls) {
            size_t n = 0;
            struct dval *v = sorted_values(&pr->cols[ti], &n);
            if (v == NULL) goto fail;
            cJSON *cc = cJSON_AddObjectToObject(o, "class_counts");
            for (size_t i = 0; cc != NULL && i < n && i < 1000; i++)
                if (!cJSON_AddNumberToObject(cc, v[i].s, (double)v[i].count)) cc = NULL;
            free(v);
            if (cc == NULL) goto fail;
            if (!cJSON_AddNumberToObject(o, "target_missing", (double)pr->cols[ti].n_missing))
                goto fail;
        }
    } else if (!cJSON_AddNullToObject(o, "target") || !cJSON_AddNullToObject(o, "task")) {
        goto fail;
    }
    cJSON *consts = cJSON_AddArrayToObject(o, "constant_columns");
    cJSON *ids = cJSON_AddArrayToObject(o, "identifier_columns");
    cJSON *cols = cJSON_AddArrayToObject(o, "columns");
    if (consts == NULL || ids == NULL || cols == NULL) goto fail;
    for (size_t c = 0; c < pr->n_cols; c++) {
        if (is_constant(pr, c)) {
            cJSON *s = cJSON_CreateString(pr->names[c]);
            if (s == NULL) goto fail;
            cJSON_AddItemToArray(consts, s);
        }
        if (types[c] == T_IDENTIFIER) {
            cJSON *s = cJSON_CreateString(pr->names[c]);
            if (s == NULL) goto fail;
            cJSON_AddItemToArray(ids, s);
        }
        cJSON *col = column_json(pr, c, types[c]);
        if (col == NULL) goto fail;
        cJSON_AddItemToArray(cols, col);
    }
    free(types);
    return o;
fail:
    free(types);
    cJSON_Delete(o);
    return NULL;
}

/* --- whole inputs ------------------------------------------------------------------ */

static int run(const char *path, const char *buf, size_t len, const struct csv_opts *copts,
               const struct profile_opts *popts, cJSON **out, struct csv_error *err)
{
    struct csv_error local;
    if (err == NULL) err = &local;
    memset(err, 0, sizeof *err);
    if (out == NULL) return CSV_EARG;
    *out = NULL;
    struct profile_opts po = {0};
    if (popts != NULL) po = *popts;
    if (copts != NULL && copts->header != CSV_HEADER_AUTO && po.header == CSV_HEADER_AUTO)
        po.header = copts->header;
    struct profile *pr = profile_new(&po);
    struct csv_parser *p = pr ? csv_parser_new(copts, profile_record_cb, pr) : NULL;
    int rc = 0;
    FILE *f = NULL;
    char *chunk = NULL;
    if (pr == NULL || p == NULL) {
        rc = CSV_EARG;
        snprintf(err->message, sizeof err->message, "invalid options or out of memory");
        goto done;
    }
    if (path != NULL) {
        f = fopen(path, "rb");
        chunk = malloc(1 << 16);
        if (f == NULL || chunk == NULL) {
            rc = CSV_EIO;
            snprintf(err->message, sizeof err->message, "cannot open %s: %s", path, strerror(errno));
            goto done;
        }
        size_t n;
        while (rc == 0 && (n = fread(chunk, 1, 1 << 16, f)) > 0) rc = csv_parser_feed(p, chunk, n);
        if (rc == 0 && ferror(f)) {
            rc = CSV_EIO;
            snprintf(err->message, sizeof err->message, "cannot read %s", path);
            goto done;
        }
    } else {
        rc = csv_parser_feed(p, buf, len);
    }
    if (rc == 0) rc = csv_parser_finish(p);
    if (rc < 0) {
        *err = *csv_parser_error(p);
        if (rc == CSV_ESTOPPED)
            snprintf(err->message, sizeof err->message, "%s", profile_error(pr));
        goto done;
    }
    profile_set_delimiter(pr, csv_parser_delimiter(p));
    *out = profile_to_json(pr);
    if (*out == NULL) {
        rc = pr->started ? CSV_ENOMEM : CSV_EEMPTY;
        snprintf(err->message, sizeof err->message, "%s", csv_strerror(rc));
    }
done:
    if (rc < 0) err->code = rc;
    if (f != NULL) fclose(f);
    free(chunk);
    csv_parser_free(p);
    profile_free(pr);
    return rc;
}

int profile_file(const char *path, const struct csv_opts *copts,
                 const struct profile_opts *popts, cJSON **out, struct csv_error *err)
{
    if (path == NULL) return CSV_EARG;
    return run(path, NULL, 0, copts, popts, out, err);
}

int profile_buffer(const char *buf, size_t len, const struct csv_opts *copts,
                   const struct profile_opts *popts, cJSON **out, struct csv_error *err)
{
    if (buf == NULL && len > 0) return CSV_EARG;
    return run(NULL, buf ? buf : "", len, copts, popts, out, err);
}
