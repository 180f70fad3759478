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
 *
 * Speed: the server profiles uploads as they stream in, so the per-value
 * path is kept short (bench: parse + profile of a numeric CSV). Values of
 * the usual shapes ([+-]digits[.digits], at most 19 digits) are read in one
 * pass, 8 bytes at a time where possible, and their double computed
 * exactly as strtod would (Clinger's fast path; anything else goes to
 * strtod); a record's fields are read in one pass and counted in a second
 * (see add_values); the space-saving summary finds a counter through a
 * filter and byte tags, and its next victim through a bit mask. None of
 * this changes a result: the hash, the order of the floating-point
 * operations and the space-saving choices are those of the plain code.
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
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define HBINS 64
#define HIST_OUT_MAX 20   /* bins shown at most */
#define SS_K 64
#define SS_FILT 1024      /* counters of the space-saving summary's hashes by 10 bits */
#define HLL_P 12
#define HLL_M (1u << HLL_P)
#define SHOW_MAX 45
#define TOKEN_MAX 64
#define NUM_MAX 255      /* longer values are never numbers */
#define TOTAL_DISTINCT_BUDGET 500000u

/* COLD: kept out of the per-value path, so that it stays small; HOT: a
 * small step of that path, inlined so that it costs no call. */
#if defined(__GNUC__)
#define COLD __attribute__((noinline, cold))
#define NOINLINE __attribute__((noinline))
#define HOT static inline __attribute__((always_inline))
#else
#define COLD
#define NOINLINE
#define HOT static inline
#endif

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
    int ready;
    double lo, w;          /* bin k is [lo + k*w, lo + (k+1)*w) */
    size_t nbuf;
    uint64_t c[HBINS];
    double buf[HBINS];
};

struct pcol {
    uint64_t n_missing, n_int, n_int01, n_float, n_bool, n_true, n_date, n_str, n_quoted;
    uint64_t n_nonfinite, len_sum, n_space;
    /* numeric moments */
    uint64_t n_num;
    double mean, m2, min, max;
    int64_t last_int;
    int increasing;        /* integers so far strictly increasing */
    /* distinct values (the fields used per value first, near the moments) */
    int estimated;
    unsigned char *hll;    /* HLL_M registers once estimated */
    unsigned char *ss_filt;      /* SS_FILT: how many counters' hashes have these bits */
    size_t ss_n, ss_cursor;
    uint64_t ss_min;       /* a lower bound of the smallest count */
    uint64_t ss_low;       /* bit i: ss_cnt[i] <= ss_min (the replacement candidates) */
    struct dval *ss;       /* SS_K counters once estimated (display, err) */
    uint64_t *ss_h;        /* their hashes and counts, apart: scanned per value */
    uint64_t *ss_cnt;
    unsigned char ss_tag[SS_K];  /* a byte of each counter's hash, to find it fast */
    struct dval *tab;      /* exact: open addressing, tab_cap slots */
    size_t tab_cap, tab_n;
    struct hist h;
};

struct profile {
    struct profile_opts o;
    char (*tokens)[TOKEN_MAX + 1];  /* copies of the missing tokens */
    size_t *tok_len;
    size_t n_tokens;
    uint64_t tok_lens;              /* bit l: some token has length l (l < 64) */
    unsigned char tok_first[256];   /* 1: some token starts with a byte that is
                                       this one with bit 5 set (any case) */
    int tok_len64;                  /* some token has length 64 */
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

/* The value hash: FNV-1a seeded with the length, then a splitmix64
 * finalizer (FNV's high bits are weak for HyperLogLog). The HyperLogLog
 * estimates shown depend on it: changing it changes the output. */
#define FNV_BASIS 1469598103934665603ULL
#define FNV_PRIME 1099511628211ULL

HOT uint64_t hash_finish(uint64_t h)
{
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h ? h : 1;
}

HOT uint64_t hash_bytes(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    uint64_t h = FNV_BASIS ^ (uint64_t)n;
    if (n >= 8 && n <= 16) {
        /* Numbers are mostly 8 or 9 bytes long, 9 when they have a sign,
         * which is often random: the first of r = n - 8 leading bytes is
         * hashed without a branch on r (XOR 0 and multiply by 1 when r is
         * 0), then the others, then the last 8 bytes. */
        size_t r = n - 8;
        uint64_t on = 0 - (uint64_t)(r != 0);
        h = (h ^ (u[0] & on)) * (1 + ((FNV_PRIME - 1) & on));
        for (size_t i = 1; i < r; i++) h = (h ^ u[i]) * FNV_PRIME;
        u += r;
        h = (h ^ u[0]) * FNV_PRIME;
        h = (h ^ u[1]) * FNV_PRIME;
        h = (h ^ u[2]) * FNV_PRIME;
        h = (h ^ u[3]) * FNV_PRIME;
        h = (h ^ u[4]) * FNV_PRIME;
        h = (h ^ u[5]) * FNV_PRIME;
        h = (h ^ u[6]) * FNV_PRIME;
        h = (h ^ u[7]) * FNV_PRIME;
        return hash_finish(h);
    }
    for (size_t i = 0; i < n; i++) h = (h ^ u[i]) * FNV_PRIME;
    return hash_finish(h);
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
    /* the usual case, in two tests: ' ' and TAB are both <= ' ' */
    if (len > 0 && (unsigned char)p[0] > ' ' && (unsigned char)p[len - 1] > ' ') return;
    while (len > 0 && (*p == ' ' || *p == '\t')) { p++; len--; }
    while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
    *s = p;
    *n = len;
}

static int is_missing(const struct profile *pr, const char *s, size_t n)
{
    /* most values have a length no token has, or a first byte no token
     * has (bytes equal but for ASCII case are equal with bit 5 set): a
     * test or two, no loop */
    if (n < 64 ? !(pr->tok_lens >> n & 1) : !(n == 64 && pr->tok_len64)) return 0;
    if (n > 0 && !pr->tok_first[(unsigned char)s[0] | 0x20]) return 0;
    for (size_t t = 0; t < pr->n_tokens; t++) {
        const char *tok = pr->tokens[t];
        if (pr->tok_len[t] != n) continue;
        /* bytes equal but for ASCII case are equal with bit 5 set */
        if (n > 0 && ((unsigned char)s[0] | 0x20) != ((unsigned char)tok[0] | 0x20)) continue;
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
static void set_show_any(struct dval *d, const char *s, size_t n)
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

HOT void set_show(struct dval *d, const char *s, size_t n)
{
    if (n >= 8 && n <= 16) {
        /* the common short value: two overlapping fixed-size copies */
        memcpy(d->s, s, 8);
        memcpy(d->s + n - 8, s + n - 8, 8);
        d->s[n] = '\0';
        d->len = (unsigned char)n;
        d->trunc = 0;
    } else {
        set_show_any(d, s, n);
    }
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

COLD static void hist_add_slow(struct hist *h, double v)
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

HOT void hist_add(struct hist *h, double v)
{
    if (h->ready) {
        /* hist_put's first step, which is almost always its last */
        double t = (v - h->lo) / h->w;
        if (t >= 0 && t < HBINS) {
            h->c[(int)t]++;
            return;
        }
    }
    hist_add_slow(h, v);
}

/* --- distinct values ------------------------------------------------------------ */

HOT void hll_add(unsigned char *reg, uint64_t h)
{
    uint32_t idx = (uint32_t)(h >> (64 - HLL_P));
    uint64_t w = (h << HLL_P) | (1ULL << (HLL_P - 1));
    unsigned char rho = (unsigned char)(__builtin_clzll(w) + 1);
    unsigned char old = reg[idx];
    reg[idx] = rho > old ? rho : old;   /* no branch: early on, it goes either way */
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
 * the smallest count (the first at or after a round-robin cursor whose count
 * is <= ss_min, a lower bound kept with a bit mask of those counters, so a
 * stream of distinct values costs O(1)) and inherits that count as its
 * over-count bound. */
static unsigned char ss_tag_of(uint64_t h) { return (unsigned char)(h >> 40); }
static size_t ss_filt_of(uint64_t h) { return (size_t)(h >> 20) & (SS_FILT - 1); }

/* The counter holding hash h, or SS_K. Hashes in the summary are unique, so
 * any match is the match. A byte of every counter's hash (its tag) is
 * compared first, 16 at a time with SSE2, else 8 at a time in a word (it
 * has a zero byte after the XOR exactly when one of its tags matches); only
 * counters whose tag matches have their hash compared. Unused counters have
 * hash 0, which no value has. */
static size_t ss_find(const struct pcol *c, uint64_t h)
{
#if defined(__SSE2__)
    const __m128i t = _mm_set1_epi8((char)ss_tag_of(h));
    const __m128i *g = (const __m128i *)c->ss_tag;
    uint64_t hit = (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(g), t)) |
                   (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(g + 1), t)) << 16 |
                   (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(g + 2), t)) << 32 |
                   (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(g + 3), t)) << 48;
    for (; hit != 0; hit &= hit - 1) {
        size_t i = (size_t)__builtin_ctzll(hit);
        if (c->ss_h[i] == h) return i;
    }
    return SS_K;
#else
    const uint64_t ones = 0x0101010101010101ULL;
    uint64_t pat = ones * ss_tag_of(h);
    for (size_t w = 0; w < SS_K; w += 8) {
        uint64_t x;
        memcpy(&x, c->ss_tag + w, 8);
        x ^= pat;
        if (((x - ones) & ~x & (ones << 7)) == 0) continue;
        for (size_t i = w; i < w + 8; i++)
            if (c->ss_h[i] == h) return i;
    }
    return SS_K;
#endif
}

_Static_assert(SS_K == 64, "ss_low has one bit per counter");

/* Set the lower bound of the counts and the candidates it implies. */
static void ss_set_min(struct pcol *c, uint64_t m)
{
    uint64_t low = 0;
    const uint64_t *cnt = c->ss_cnt;
    for (size_t i = 0, k = c->ss_n; i < k; i++) low |= (uint64_t)(cnt[i] <= m) << i;
    c->ss_min = m;
    c->ss_low = low;
}

/* ss_set_min(c, ss_min + 1) when every count is > ss_min: then a count is
 * <= ss_min + 1 exactly when it equals it, which SSE2 tests two at a time
 * (a 64-bit lane is equal when both its 32-bit halves are). */
static void ss_set_min_next(struct pcol *c)
{
#if defined(__SSE2__)
    if (c->ss_n == SS_K) {
        uint64_t m = c->ss_min + 1, low = 0;
        const __m128i t = _mm_set1_epi64x((long long)m);
        for (size_t i = 0; i < SS_K; i += 2) {
            __m128i x = _mm_cmpeq_epi32(_mm_loadu_si128((const __m128i *)(c->ss_cnt + i)), t);
            x = _mm_and_si128(x, _mm_shuffle_epi32(x, _MM_SHUFFLE(2, 3, 0, 1)));
            low |= (uint64_t)(unsigned)_mm_movemask_pd(_mm_castsi128_pd(x)) << i;
        }
        c->ss_min = m;
        c->ss_low = low;
        return;
    }
#endif
    ss_set_min(c, c->ss_min + 1);
}

HOT void ss_count(struct pcol *c, size_t i)
{
    if (++c->ss_cnt[i] > c->ss_min) c->ss_low &= ~(1ULL << i);
}

/* Replace the counter that the cursor finds next among those with a count
 * <= ss_min (there is one: ss_low != 0). */
HOT void ss_replace(struct pcol *c, uint64_t h, const char *s, size_t n)
{
    size_t cur = c->ss_cursor;
    uint64_t low = c->ss_low;
    uint64_t r = low >> cur | low << ((SS_K - cur) & (SS_K - 1));   /* rotate right */
    size_t mi = (cur + (size_t)__builtin_ctzll(r)) & (SS_K - 1);
    c->ss_cursor = (mi + 1) & (SS_K - 1);
    uint64_t cnt = c->ss_cnt[mi];
    c->ss_cnt[mi] = cnt + 1;
    if (cnt + 1 > c->ss_min) low &= ~(1ULL << mi);
    c->ss_low = low;
    c->ss_filt[ss_filt_of(c->ss_h[mi])]--;
    c->ss_filt[ss_filt_of(h)]++;
    c->ss_h[mi] = h;
    c->ss_tag[mi] = ss_tag_of(h);
    c->ss[mi].err = cnt;
    set_show(&c->ss[mi], s, n);
}

/* A value not in the summary, when a counter is free or no count is
 * <= ss_min any more. */
COLD static void ss_new_slow(struct pcol *c, uint64_t h, const char *s, size_t n)
{
    if (c->ss_n < SS_K) {
        size_t i = c->ss_n++;
        c->ss_h[i] = h;
        c->ss_tag[i] = ss_tag_of(h);
        c->ss_filt[ss_filt_of(h)]++;
        c->ss_cnt[i] = 1;
        c->ss[i].err = 0;
        set_show(&c->ss[i], s, n);
        ss_set_min(c, 1);
        return;
    }
    /* ss_min becomes the smallest count: all counts are > ss_min now, so
     * it is ss_min + 1 if any count is that */
    ss_set_min_next(c);
    if (c->ss_low == 0) {
        uint64_t m = c->ss_cnt[0];
        for (size_t i = 1; i < SS_K; i++) m = c->ss_cnt[i] < m ? c->ss_cnt[i] : m;
        ss_set_min(c, m);
    }
    ss_replace(c, h, s, n);
}

HOT void ss_add(struct pcol *c, uint64_t h, const char *s, size_t n)
{
    /* most values of a column past the cap are new: most often the filter
     * says so without a search */
    if (c->ss_filt[ss_filt_of(h)]) {
        size_t f = ss_find(c, h);
        if (f < SS_K) {
            ss_count(c, f);
            return;
        }
    }
    if (c->ss_n < SS_K || c->ss_low == 0)
        ss_new_slow(c, h, s, n);
    else
        ss_replace(c, h, s, n);
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
COLD static int go_estimated(struct pcol *c)
{
    c->hll = calloc(HLL_M, 1);
    c->ss = calloc(SS_K, sizeof *c->ss);
    c->ss_h = calloc(SS_K, sizeof *c->ss_h);
    c->ss_cnt = calloc(SS_K, sizeof *c->ss_cnt);
    c->ss_filt = calloc(SS_FILT, 1);
    if (c->hll == NULL || c->ss == NULL || c->ss_h == NULL || c->ss_cnt == NULL ||
        c->ss_filt == NULL)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < c->tab_cap; i++) {
        if (c->tab[i].h == 0) continue;
        hll_add(c->hll, c->tab[i].h);
        c->tab[k++] = c->tab[i];
    }
    qsort(c->tab, k, sizeof *c->tab, by_count_desc);
    c->ss_n = k < SS_K ? k : SS_K;
    memcpy(c->ss, c->tab, c->ss_n * sizeof *c->ss);
    for (size_t i = 0; i < c->ss_n; i++) {
        c->ss_h[i] = c->ss[i].h;
        c->ss_tag[i] = ss_tag_of(c->ss[i].h);
        c->ss_filt[ss_filt_of(c->ss[i].h)]++;
        c->ss_cnt[i] = c->ss[i].count;
    }
    ss_set_min(c, c->ss_n ? c->tab[c->ss_n - 1].count : 0);
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

/* The exact table (not yet estimated). */
NOINLINE static int exact_add(struct pcol *c, size_t cap, uint64_t h, const char *s, size_t n)
{
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

HOT int distinct_add(struct pcol *c, size_t cap, uint64_t h, const char *s, size_t n)
{
    if (c->estimated) {
        hll_add(c->hll, h);
        ss_add(c, h, s, n);
        return 0;
    }
    return exact_add(c, cap, h, s, n);
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
        if (l < 64)
            pr->tok_lens |= 1ULL << l;
        else
            pr->tok_len64 = 1;
        if (l > 0) pr->tok_first[(unsigned char)tok[t][0] | 0x20] = 1;
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
        free(pr->cols[c].ss_filt);
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

/* --- adding values ------------------------------------------------------------- */

/* Powers of ten that a double holds exactly. */
static const double pow10_exact[23] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static const uint64_t pow10_u64[9] = {1, 10, 100, 1000, 10000, 100000, 1000000,
                                      10000000, 100000000};

enum { NUM_NONE, NUM_INT, NUM_FLOAT };

/* -x if neg, for x >= 0: setting the sign bit negates it (-0.0 for "-0",
 * as strtod gives), and there is no branch on a sign that is often random. */
HOT double signed_value(double x, int neg)
{
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    bits |= (uint64_t)neg << 63;
    memcpy(&x, &bits, sizeof bits);
    return x;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SWAR_DIGITS 1
/* Eight ASCII digits in a word (the first in the lowest byte)? Exact: the
 * lowest byte that is not a digit sets its top bit in one of the two terms
 * (carries only come from bytes below it, which are digits). */
static int eight_digits(uint64_t w)
{
    return (((w + 0x4646464646464646ULL) | (w - 0x3030303030303030ULL)) &
            0x8080808080808080ULL) == 0;
}

/* Their value, the first digit the most significant. */
static uint64_t parse_eight(uint64_t w)
{
    w -= 0x3030303030303030ULL;
    w = w * 10 + (w >> 8);
    w = ((w & 0x000000FF000000FFULL) * (100 + (1000000ULL << 32)) +
         ((w >> 16) & 0x000000FF000000FFULL) * (1 + (10000ULL << 32))) >> 32;
    return w;
}
#endif

/* The common numeric shape, [+-]digits[.digits] (no spaces, no exponent),
 * classified as parse_int and csv_is_number would classify it, with the
 * value strtod would return where it can be computed exactly: m <= 2^53
 * and 10^k with k <= 22 are exact doubles, so m / 10^k is one correctly
 * rounded IEEE division, as strtod rounds correctly (Clinger's fast
 * path). NUM_NONE for any other text (the general path then decides);
 * *exact = 0 when the value must come from strtod. */
HOT int fast_number(const char *s, size_t n, int64_t *iv, double *v, int *exact)
{
    const char *p = s, *e = s + n;
    if (n == 0) return NUM_NONE;
    int neg = *p == '-';
    p += neg | (*p == '+');
    uint64_t m = 0;   /* wraps past 19 digits; then unused */
    size_t nint, nfrac = 0;
    int dot;
#ifdef SWAR_DIGITS
    if (n >= 8 && e - p <= 8) {
        /* The whole number in the 8 bytes that end it, without a loop or a
         * branch on where the point is: the bytes before the digits (a
         * sign, or nothing) become '0', the first '.' becomes '0' and moves
         * to the front, and the word must then be eight digits. */
        size_t len = (size_t)(e - p);   /* 7 (after a sign) or 8 */
        uint64_t w, first = (uint64_t)(8 - len) * 0xFF;   /* the sign's byte, if any */
        memcpy(&w, e - 8, 8);
        w = (w & ~first) | (0x30 & first);
        uint64_t x = w ^ 0x2E2E2E2E2E2E2E2EULL;
        uint64_t z = (x - 0x0101010101010101ULL) & ~x & 0x8080808080808080ULL;
        if (z != 0) {
            /* the lowest flagged byte is a '.' (flags above it may be false) */
            size_t pos = (size_t)__builtin_ctzll(z) >> 3;
            uint64_t below = (1ULL << (8 * pos)) - 1, at = 0xFFULL << (8 * pos);
            w ^= 0x1EULL << (8 * pos);   /* '.' ^ 0x1E == '0' */
            w = (w & ~(below | at)) | (w & below) << 8 | 0x30;
            if (!eight_digits(w)) return NUM_NONE;
            nfrac = 7 - pos;
            /* at most 8 digits (so exact), and at least one as len >= 7 */
            *exact = 1;
            *v = signed_value((double)parse_eight(w) / pow10_exact[nfrac], neg);
            return NUM_FLOAT;
        }
        if (!eight_digits(w)) return NUM_NONE;
        m = parse_eight(w);
        *exact = 1;
        *v = signed_value((double)m, neg);
        *iv = neg ? -(int64_t)m : (int64_t)m;
        return NUM_INT;
    }
#endif
    const char *d0 = p;
    while (p < e && (unsigned)(*p - '0') < 10) m = m * 10 + (uint64_t)(*p++ - '0');
    nint = (size_t)(p - d0);
    dot = p < e && *p == '.';
    if (dot) {
        p++;
        nfrac = (size_t)(e - p);   /* all of them must be digits */
        size_t k = nfrac;
#ifdef SWAR_DIGITS
        uint64_t w;
        for (; k > 8; k -= 8, p += 8) {
            memcpy(&w, p, 8);
            if (!eight_digits(w)) return NUM_NONE;
            m = m * 100000000u + parse_eight(w);
        }
        if (k > 0 && n >= 8) {
            /* the last k digits: the 8 bytes that end the value, with the
             * 8 - k before them turned into leading zeros */
            memcpy(&w, e - 8, 8);
            uint64_t keep = ~0ULL << (8 * (8 - k));
            w = (w & keep) | (0x3030303030303030ULL & ~keep);
            if (!eight_digits(w)) return NUM_NONE;
            m = m * pow10_u64[k] + parse_eight(w);
            p = e;
        }
#endif
        for (; p < e; p++) {
            unsigned d = (unsigned)(*p - '0');
            if (d >= 10) return NUM_NONE;
            m = m * 10 + d;
        }
    }
    if (p != e || nint + nfrac == 0) return NUM_NONE;
    *exact = nint + nfrac <= 19 && m <= (1ULL << 53) && nfrac <= 22;
    if (*exact) *v = signed_value((double)m / pow10_exact[nfrac], neg);
    if (dot || nint > 18) return NUM_FLOAT;
    *iv = neg ? -(int64_t)m : (int64_t)m;
    return NUM_INT;
}

static void count_int(struct pcol *c, int64_t iv)
{
    c->n_int++;
    if (iv == 0 || iv == 1) c->n_int01++;
    if (c->n_int > 1 && iv <= c->last_int) c->increasing = 0;
    c->last_int = iv;
}

/* A number's moments and histogram (v as strtod read it). */
HOT void add_finite(struct pcol *c, double v)
{
    c->n_num++;
    if (c->n_num == 1) {
        c->min = c->max = v;
    } else {
        c->min = v < c->min ? v : c->min;
        c->max = v > c->max ? v : c->max;
    }
    double d = v - c->mean;
    c->mean += d / (double)(int64_t)c->n_num;   /* the same value: n_num < 2^63 */
    c->m2 += d * (v - c->mean);
    hist_add(&c->h, v);
}

static void add_number(struct pcol *c, double v)
{
    if (isfinite(v))
        add_finite(c, v);
    else
        c->n_nonfinite++;
}

/* What add_value does not do inline: numbers that need strtod (kind is
 * fast_number's answer), and everything that is not a plain number. */
COLD static int add_other(struct profile *pr, struct pcol *c, uint64_t h, const char *s, size_t n,
                          int kind, int64_t iv)
{
    if (kind == NUM_NONE && n <= NUM_MAX) {   /* no sensible number is longer */
        if (parse_int(s, n, &iv))
            kind = NUM_INT;
        else if (csv_is_number(s, n))
            kind = NUM_FLOAT;
    }
    if (kind == NUM_INT) {
        count_int(c, iv);
    } else if (kind == NUM_FLOAT) {
        c->n_float++;
        c->increasing = 0;
    }
    if (kind != NUM_NONE) {
        /* a NUL-terminated copy: hand-made records need not be terminated */
        char nbuf[NUM_MAX + 1];
        memcpy(nbuf, s, n);
        nbuf[n] = '\0';
        add_number(c, strtod(nbuf, NULL));
        return distinct_add(c, pr->cap, h, s, n);
    }
    c->increasing = 0;
    int b = parse_bool(s, n);
    if (b >= 0) {
        c->n_bool++;
        c->n_true += (uint64_t)b;
    } else if (is_datetime(s, n)) {
        c->n_date++;
    } else {
        c->n_str++;
        c->len_sum += n;
        if (memchr(s, ' ', n) != NULL) c->n_space++;
    }
    return distinct_add(c, pr->cap, h, s, n);
}

/* A field read but not yet counted: add_values works in two passes over a
 * batch of fields, reading (trim, missing, hash, number) and then counting
 * (moments, histogram, distinct values). Each pass's work on one field is
 * a long chain of dependent steps, independent of the other fields', so
 * the CPU overlaps the fields' chains; one pass per field would leave it
 * waiting on each chain in turn. */
#define BATCH 16
#define NUM_MISSING (-1)

struct pending {
    const char *s;
    size_t n;
    uint64_t h;
    int64_t iv;
    double v;
    int kind;   /* NUM_*, or NUM_MISSING */
    unsigned char exact, quoted;
};

/* Reading changes nothing: should counting fail (out of memory) at some
 * column, the columns after it are as they were, as with one pass. */
HOT void read_field(const struct profile *pr, const struct csv_field *f, struct pending *q)
{
    const char *s = f->ptr;
    size_t n = f->len;
    trim(&s, &n);
    q->s = s;
    q->n = n;
    if (n <= TOKEN_MAX && is_missing(pr, s, n)) {
        q->kind = NUM_MISSING;
        return;
    }
    q->quoted = f->quoted != 0;
    q->h = hash_bytes(s, n);
    int64_t iv = 0;
    double v = 0;
    int exact = 0;
    q->kind = n <= NUM_MAX ? fast_number(s, n, &iv, &v, &exact) : NUM_NONE;
    q->iv = iv;
    q->v = v;
    q->exact = (unsigned char)exact;
}

HOT int count_field(struct profile *pr, struct pcol *c, const struct pending *q)
{
    if (q->kind == NUM_MISSING) {
        c->n_missing++;
        return 0;
    }
    c->n_quoted += (uint64_t)q->quoted;
    if (q->kind == NUM_NONE || !q->exact)
        return add_other(pr, c, q->h, q->s, q->n, q->kind, q->iv);
    if (q->kind == NUM_INT) {
        count_int(c, q->iv);
    } else {
        c->n_float++;
        c->increasing = 0;
    }
    add_finite(c, q->v);   /* an exact fast_number value is finite */
    return distinct_add(c, pr->cap, q->h, q->s, q->n);
}

/* Add fields[0..n) to cols[0..n); -1 when out of memory. */
static int add_values(struct profile *pr, struct pcol *cols, const struct csv_field *fields, size_t n)
{
    struct pending q[BATCH];
    for (size_t c0 = 0; c0 < n; c0 += BATCH) {
        size_t k = n - c0 < BATCH ? n - c0 : BATCH;
        for (size_t i = 0; i < k; i++) read_field(pr, &fields[c0 + i], &q[i]);
        for (size_t i = 0; i < k; i++)
            if (count_field(pr, &cols[c0 + i], &q[i]) < 0) return -1;
    }
    return 0;
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
    if (add_values(pr, pr->cols, rec->fields, pr->n_cols) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
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
