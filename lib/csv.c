/*
 * csv.c - the streaming CSV parser and the table loader; see csv.h for the
 * dialect, the limits and who owns what.
 *
 * How it works: input first goes to a small pre-buffer until the byte order
 * mark is decided and, when sniffing, until opts.sniff_bytes have arrived
 * (or the input ended). From then on every chunk goes straight through
 * parse_chunk, a byte-class state machine: runs of ordinary bytes inside a
 * field are found with a table-driven scan and copied with one memcpy into
 * the record buffer, so the per-byte cost is one table look-up. Only the
 * bytes that matter (delimiter, quote, CR, LF, bytes >= 0x80, control
 * bytes) leave the fast loop. A UTF-8 sequence split across two chunks is
 * carried in u8_need/u8_lo/u8_hi.
 *
 * The record buffer holds the unescaped fields of the current record, each
 * followed by a NUL; it is reset after each callback. Nothing else grows
 * with the input.
 */
#include "lib/csv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* byte classes */
enum { C_ORD = 0, C_DELIM, C_QUOTE, C_LF, C_CR, C_HIGH, C_BAD };

/* parser states */
enum {
    ST_REC_START,   /* at the start of a line, no record begun */
    ST_FIELD_START, /* a record has begun; at the start of a field */
    ST_UNQ,         /* inside an unquoted field */
    ST_QUOTED,      /* inside a quoted field */
    ST_QQ,          /* inside a quoted field, just after a '"' */
    ST_CR,          /* just after a CR that ended a record or an empty line */
};

struct fld {
    size_t off, len;
    int quoted;
};

struct csv_parser {
    struct csv_opts o;
    csv_record_fn fn;
    void *ctx;
    struct csv_error err;

    /* pre-buffer phase */
    int started, finished;
    char *pre;
    size_t pre_len, pre_limit;

    char delim;
    unsigned char cls_unq[256], cls_q[256];

    /* position */
    int state;
    uint64_t abs;          /* stream offset of the current chunk's first byte */
    uint64_t line;         /* current physical line */
    uint64_t line_start;   /* stream offset of the current line's first byte */
    uint64_t rec_line;
    uint64_t rec_index;
    uint64_t quote_line, quote_col;
    uint64_t extra_line, extra_col; /* where field expected+1 began */

    /* a UTF-8 sequence in progress */
    int u8_need;
    unsigned char u8_lo, u8_hi;

    /* the current record */
    char *rec;
    size_t rec_len, rec_cap;
    struct fld *f;
    size_t nf, f_cap;
    size_t field_off;
    int field_quoted;
    size_t expected;       /* field count of the first record; 0 = none yet */
    struct csv_field *out;
    size_t out_cap;
};

const char *csv_strerror(int code)
{
    switch (code) {
    case CSV_OK: return "ok";
    case CSV_ENOMEM: return "out of memory";
    case CSV_EARG: return "invalid argument";
    case CSV_EQUOTE: return "unterminated quoted field";
    case CSV_EAFTERQUOTE: return "unexpected character after closing quote";
    case CSV_ERAGGED: return "inconsistent number of fields";
    case CSV_EUTF8: return "invalid UTF-8";
    case CSV_EBINARY: return "binary data (NUL or control byte)";
    case CSV_EFIELD: return "field too long";
    case CSV_ERECORD: return "record too long";
    case CSV_ECOLUMNS: return "too many columns";
    case CSV_EROWS: return "too many rows";
    case CSV_EIO: return "read error";
    case CSV_ESTOPPED: return "stopped by the record callback";
    case CSV_EEMPTY: return "no records";
    default: return "unknown error";
    }
}

static void set_err(struct csv_error *e, int code, uint64_t line, uint64_t col,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void set_err(struct csv_error *e, int code, uint64_t line, uint64_t col,
                    const char *fmt, ...)
{
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    e->code = code;
    e->line = line;
    e->column = col;
    if (line > 0 && col > 0)
        snprintf(e->message, sizeof e->message, "line %llu, column %llu: %s",
                 (unsigned long long)line, (unsigned long long)col, what);
    else if (line > 0)
        snprintf(e->message, sizeof e->message, "line %llu: %s", (unsigned long long)line, what);
    else
        snprintf(e->message, sizeof e->message, "%s", what);
}

/* Fail the parser at byte i of the current chunk. */
static int fail_at(struct csv_parser *p, size_t i, int code, const char *what)
{
    uint64_t col = p->abs + i - p->line_start + 1;
    set_err(&p->err, code, p->line, col, "%s", what);
    return code;
}

static void build_classes(struct csv_parser *p)
{
    memset(p->cls_unq, C_ORD, sizeof p->cls_unq);
    for (int b = 0; b < 0x20; b++) p->cls_unq[b] = C_BAD;
    for (int b = 0x80; b < 0x100; b++) p->cls_unq[b] = C_HIGH;
    p->cls_unq['\t'] = C_ORD;
    p->cls_unq['\n'] = C_LF;
    p->cls_unq['\r'] = C_CR;
    memcpy(p->cls_q, p->cls_unq, sizeof p->cls_q);
    p->cls_q['\r'] = C_ORD;      /* data inside quotes */
    p->cls_q['"'] = C_QUOTE;
    /* '"' in an unquoted field is data; it only matters at a field start */
    p->cls_unq[(unsigned char)p->delim] = C_DELIM;
}

struct csv_parser *csv_parser_new(const struct csv_opts *opts, csv_record_fn fn, void *ctx)
{
    struct csv_parser *p = calloc(1, sizeof *p);
    if (p == NULL) return NULL;
    if (opts != NULL) p->o = *opts;
    if (p->o.max_field_bytes == 0) p->o.max_field_bytes = CSV_DEFAULT_MAX_FIELD_BYTES;
    if (p->o.max_record_bytes == 0) p->o.max_record_bytes = CSV_DEFAULT_MAX_RECORD_BYTES;
    if (p->o.max_columns == 0) p->o.max_columns = CSV_DEFAULT_MAX_COLUMNS;
    if (p->o.sniff_bytes == 0) p->o.sniff_bytes = CSV_DEFAULT_SNIFF_BYTES;
    unsigned char d = (unsigned char)p->o.delimiter;
    if (d == '"' || d == '\n' || d == '\r' || d >= 0x80 || (d < 0x20 && d != '\t' && d != 0)) {
        free(p);
        return NULL;
    }
    p->fn = fn;
    p->ctx = ctx;
    p->line = 1;
    p->state = ST_REC_START;
    p->pre_limit = d == 0 ? p->o.sniff_bytes : 3;
    return p;
}

void csv_parser_free(struct csv_parser *p)
{
    if (p == NULL) return;
    free(p->pre);
    free(p->rec);
    free(p->f);
    free(p->out);
    free(p);
}

const struct csv_error *csv_parser_error(const struct csv_parser *p) { return &p->err; }
char csv_parser_delimiter(const struct csv_parser *p) { return p->started ? p->delim : 0; }
uint64_t csv_parser_records(const struct csv_parser *p) { return p->rec_index; }

/* --- record assembly ------------------------------------------------------ */

static int grow_rec(struct csv_parser *p, size_t need)
{
    size_t cap = p->rec_cap ? p->rec_cap : 256;
    while (cap < need) cap *= 2;
    char *r = realloc(p->rec, cap);
    if (r == NULL) return CSV_ENOMEM;
    p->rec = r;
    p->rec_cap = cap;
    return 0;
}

/* Append s[0..n) (which starts at chunk offset i) to the current field.
 * A limit error points at the first byte past the limit. */
static int append_slow(struct csv_parser *p, const char *s, size_t n, size_t i)
{
    size_t flen = p->rec_len - p->field_off;
    /* +1 keeps room for the field's NUL */
    if (flen + n > p->o.max_field_bytes || p->rec_len + n + 1 > p->o.max_record_bytes) {
        char m[96];
        size_t fa = p->o.max_field_bytes >= flen ? p->o.max_field_bytes - flen : 0;
        size_t ra = p->o.max_record_bytes >= p->rec_len + 1 ? p->o.max_record_bytes - p->rec_len - 1 : 0;
        if (fa < n && fa <= ra) {
            snprintf(m, sizeof m, "field longer than %zu bytes", p->o.max_field_bytes);
            return fail_at(p, i + fa, CSV_EFIELD, m);
        }
        snprintf(m, sizeof m, "record longer than %zu bytes", p->o.max_record_bytes);
        return fail_at(p, i + ra, CSV_ERECORD, m);
    }
    if (p->rec_len + n + 1 > p->rec_cap && grow_rec(p, p->rec_len + n + 1) < 0)
        return fail_at(p, i, CSV_ENOMEM, "out of memory");
    memcpy(p->rec + p->rec_len, s, n);
    p->rec_len += n;
    return 0;
}

static inline int append(struct csv_parser *p, const char *s, size_t n, size_t i)
{
    size_t end = p->rec_len + n;
    if (end + 1 > p->rec_cap || end + 1 > p->o.max_record_bytes ||
        end - p->field_off > p->o.max_field_bytes)
        return append_slow(p, s, n, i);
    memcpy(p->rec + p->rec_len, s, n);
    p->rec_len = end;
    return 0;
}

static int begin_field_slow(struct csv_parser *p, size_t i)
{
    if (p->nf >= p->o.max_columns) {
        char m[96];
        snprintf(m, sizeof m, "more than %zu fields in a record", p->o.max_columns);
        return fail_at(p, i, CSV_ECOLUMNS, m);
    }
    if (p->expected > 0 && p->nf == p->expected) {
        p->extra_line = p->line;
        p->extra_col = p->abs + i - p->line_start + 1;
    }
    p->field_off = p->rec_len;
    p->field_quoted = 0;
    return 0;
}

static inline int begin_field(struct csv_parser *p, size_t i)
{
    if (p->nf >= p->o.max_columns || (p->expected > 0 && p->nf == p->expected))
        return begin_field_slow(p, i);
    p->field_off = p->rec_len;
    p->field_quoted = 0;
    return 0;
}

static int end_field_slow(struct csv_parser *p, size_t i)
{
    size_t len = p->rec_len - p->field_off;
    if (len > p->o.max_field_bytes) {
        char m[96];
        snprintf(m, sizeof m, "field longer than %zu bytes", p->o.max_field_bytes);
        return fail_at(p, i, CSV_EFIELD, m);
    }
    if (p->rec_len + 1 > p->o.max_record_bytes) {
        char m[96];
        snprintf(m, sizeof m, "record longer than %zu bytes", p->o.max_record_bytes);
        return fail_at(p, i, CSV_ERECORD, m);
    }
    if (p->rec_len + 1 > p->rec_cap && grow_rec(p, p->rec_len + 1) < 0)
        return fail_at(p, i, CSV_ENOMEM, "out of memory");
    p->rec[p->rec_len++] = '\0';
    if (p->nf == p->f_cap) {
        size_t cap = p->f_cap ? p->f_cap * 2 : 16;
        struct fld *f = realloc(p->f, cap * sizeof *f);
        if (f == NULL) return fail_at(p, i, CSV_ENOMEM, "out of memory");
        p->f = f;
        p->f_cap = cap;
    }
    p->f[p->nf].off = p->field_off;
    p->f[p->nf].len = len;
    p->f[p->nf].quoted = p->field_quoted;
    p->nf++;
    return 0;
}

/* The common case inline: room for the NUL and the field entry. (append
 * already keeps field and record within their limits.) */
static inline int end_field(struct csv_parser *p, size_t i)
{
    if (p->rec_len + 1 > p->rec_cap || p->nf == p->f_cap || p->rec_len + 1 > p->o.max_record_bytes)
        return end_field_slow(p, i);
    size_t len = p->rec_len - p->field_off;
    p->rec[p->rec_len++] = '\0';
    struct fld *f = &p->f[p->nf++];
    f->off = p->field_off;
    f->len = len;
    f->quoted = p->field_quoted;
    return 0;
}

/* The record is complete (its last field ended at chunk offset i). */
static int end_record(struct csv_parser *p, size_t i)
{
    if (p->expected == 0) {
        p->expected = p->nf;
    } else if (p->nf != p->expected && !p->o.allow_ragged) {
        if (p->nf > p->expected) {
            set_err(&p->err, CSV_ERAGGED, p->extra_line, p->extra_col,
                    "record %llu has %zu fields, expected %zu as in the first record",
                    (unsigned long long)p->rec_index + 1, p->nf, p->expected);
        } else {
            set_err(&p->err, CSV_ERAGGED, p->line, p->abs + i - p->line_start + 1,
                    "record %llu has %zu fields, expected %zu as in the first record",
                    (unsigned long long)p->rec_index + 1, p->nf, p->expected);
        }
        return CSV_ERAGGED;
    }
    if (p->nf > p->out_cap) {
        size_t cap = p->out_cap ? p->out_cap : 16;
        while (cap < p->nf) cap *= 2;
        struct csv_field *o = realloc(p->out, cap * sizeof *o);
        if (o == NULL) return fail_at(p, i, CSV_ENOMEM, "out of memory");
        p->out = o;
        p->out_cap = cap;
    }
    for (size_t k = 0; k < p->nf; k++) {
        p->out[k].ptr = p->rec + p->f[k].off;
        p->out[k].len = p->f[k].len;
        p->out[k].quoted = p->f[k].quoted;
    }
    struct csv_record r = {p->out, p->nf, p->rec_line, p->rec_index};
    p->rec_index++;
    p->rec_len = 0;
    p->nf = 0;
    if (p->fn != NULL && p->fn(p->ctx, &r) != 0) {
        set_err(&p->err, CSV_ESTOPPED, r.line, 0, "stopped by the record callback");
        return CSV_ESTOPPED;
    }
    return 0;
}

/* --- UTF-8 ---------------------------------------------------------------- */

/* Start a sequence at lead byte b; 0 or an error. */
static int u8_lead(struct csv_parser *p, unsigned char b, size_t i)
{
    if (b >= 0xC2 && b <= 0xDF) { p->u8_need = 1; p->u8_lo = 0x80; p->u8_hi = 0xBF; }
    else if (b == 0xE0) { p->u8_need = 2; p->u8_lo = 0xA0; p->u8_hi = 0xBF; }
    else if (b == 0xED) { p->u8_need = 2; p->u8_lo = 0x80; p->u8_hi = 0x9F; }
    else if (b >= 0xE1 && b <= 0xEF) { p->u8_need = 2; p->u8_lo = 0x80; p->u8_hi = 0xBF; }
    else if (b == 0xF0) { p->u8_need = 3; p->u8_lo = 0x90; p->u8_hi = 0xBF; }
    else if (b >= 0xF1 && b <= 0xF3) { p->u8_need = 3; p->u8_lo = 0x80; p->u8_hi = 0xBF; }
    else if (b == 0xF4) { p->u8_need = 3; p->u8_lo = 0x80; p->u8_hi = 0x8F; }
    else {
        char m[64];
        snprintf(m, sizeof m, "invalid UTF-8 byte 0x%02X", b);
        return fail_at(p, i, CSV_EUTF8, m);
    }
    return 0;
}

/* Consume continuation bytes from s[*i..n); appends them to the field. */
static int u8_cont(struct csv_parser *p, const char *s, size_t n, size_t *i)
{
    size_t j = *i;
    while (p->u8_need > 0 && j < n) {
        unsigned char b = (unsigned char)s[j];
        if (b < p->u8_lo || b > p->u8_hi) {
            char m[80];
            snprintf(m, sizeof m, "invalid UTF-8 sequence (unexpected byte 0x%02X)", b);
            return fail_at(p, j, CSV_EUTF8, m);
        }
        p->u8_lo = 0x80;
        p->u8_hi = 0xBF;
        p->u8_need--;
        j++;
    }
    int rc = append(p, s + *i, j - *i, *i);
    *i = j;
    return rc;
}

static int bad_byte(struct csv_parser *p, unsigned char b, size_t i)
{
    char m[64];
    if (b == 0) snprintf(m, sizeof m, "NUL byte (binary data?)");
    else snprintf(m, sizeof m, "control byte 0x%02X (binary data?)", b);
    return fail_at(p, i, CSV_EBINARY, m);
}

/* --- the state machine ---------------------------------------------------- */

/* The end of the run of ordinary bytes (class 0 in cls) starting at s[i].
 * With SSE2, 16 bytes at a time: a byte is a candidate when it equals `stop`
 * (the delimiter, or '"' inside quotes) or is < 0x20 or >= 0x80 as a signed
 * compare catches both; candidates are confirmed with the table (TAB and
 * CR may be ordinary). */
static inline size_t scan(const unsigned char *cls, const char *s, size_t i, size_t n, char stop)
{
    const unsigned char *u = (const unsigned char *)s;
#if defined(__SSE2__)
    const __m128i vstop = _mm_set1_epi8(stop);
    const __m128i vlow = _mm_set1_epi8(0x20);
    while (i + 16 <= n) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        __m128i m = _mm_or_si128(_mm_cmpeq_epi8(x, vstop), _mm_cmplt_epi8(x, vlow));
        unsigned mask = (unsigned)_mm_movemask_epi8(m);
        while (mask != 0) {
            unsigned k = (unsigned)__builtin_ctz(mask);
            if (cls[u[i + k]]) return i + k;
            mask &= mask - 1;
        }
        i += 16;
    }
#else
    (void)stop;
    while (i + 4 <= n) {
        if (cls[u[i]]) return i;
        if (cls[u[i + 1]]) return i + 1;
        if (cls[u[i + 2]]) return i + 2;
        if (cls[u[i + 3]]) return i + 3;
        i += 4;
    }
#endif
    while (i < n && !cls[u[i]]) i++;
    return i;
}

static int parse_chunk(struct csv_parser *p, const char *s, size_t n)
{
    size_t i = 0;
    int rc;
    if (p->u8_need > 0 && (rc = u8_cont(p, s, n, &i)) < 0) return rc;
    while (i < n) {
        unsigned char b = (unsigned char)s[i];
        switch (p->state) {
        case ST_CR:
            p->state = ST_REC_START;
            if (b == '\n') {
                p->line_start = p->abs + i + 1;
                i++;
            }
            break;
        case ST_REC_START:
            if (b == '\n') {            /* empty line */
                p->line++;
                p->line_start = p->abs + i + 1;
                i++;
                break;
            }
            if (b == '\r') {
                p->line++;
                p->line_start = p->abs + i + 1;
                p->state = ST_CR;
                i++;
                break;
            }
            p->rec_line = p->line;
            p->state = ST_FIELD_START;
            if ((rc = begin_field(p, i)) < 0) return rc;
            break;
        case ST_FIELD_START:
            if (b == '"') {
                p->field_quoted = 1;
                p->quote_line = p->line;
                p->quote_col = p->abs + i - p->line_start + 1;
                p->state = ST_QUOTED;
                i++;
            } else {
                p->state = ST_UNQ;
            }
            break;
        case ST_UNQ: {
            size_t j = scan(p->cls_unq, s, i, n, p->delim);
            if (j > i && (rc = append(p, s + i, j - i, i)) < 0) return rc;
            i = j;
            if (i == n) break;
            b = (unsigned char)s[i];
            switch (p->cls_unq[b]) {
            case C_DELIM:
                if ((rc = end_field(p, i)) < 0) return rc;
                i++;
                if ((rc = begin_field(p, i)) < 0) return rc;
                /* stay in ST_UNQ unless the next field may be quoted */
                p->state = i < n && s[i] != '"' ? ST_UNQ : ST_FIELD_START;
                break;
            case C_LF:
            case C_CR:
                if ((rc = end_field(p, i)) < 0) return rc;
                if ((rc = end_record(p, i)) < 0) return rc;
                p->line++;
                p->line_start = p->abs + i + 1;
                p->state = b == '\r' ? ST_CR : ST_REC_START;
                i++;
                break;
            case C_HIGH:
                if ((rc = u8_lead(p, b, i)) < 0) return rc;
                if ((rc = append(p, s + i, 1, i)) < 0) return rc;
                i++;
                if ((rc = u8_cont(p, s, n, &i)) < 0) return rc;
                break;
            case C_BAD:
                return bad_byte(p, b, i);
            default: /* a quote inside an unquoted field is data */
                if ((rc = append(p, s + i, 1, i)) < 0) return rc;
                i++;
                break;
            }
            break;
        }
        case ST_QUOTED: {
            size_t j = scan(p->cls_q, s, i, n, '"');
            if (j > i && (rc = append(p, s + i, j - i, i)) < 0) return rc;
            i = j;
            if (i == n) break;
            b = (unsigned char)s[i];
            switch (p->cls_q[b]) {
            case C_QUOTE:
                p->state = ST_QQ;
                i++;
                break;
            case C_LF:
                if ((rc = append(p, s + i, 1, i)) < 0) return rc;
                p->line++;
                p->line_start = p->abs + i + 1;
                i++;
                break;
            case C_HIGH:
                if ((rc = u8_lead(p, b, i)) < 0) return rc;
                if ((rc = append(p, s + i, 1, i)) < 0) return rc;
                i++;
                if ((rc = u8_cont(p, s, n, &i)) < 0) return rc;
                break;
            default:
                return bad_byte(p, b, i);
            }
            break;
        }
        case ST_QQ:
            if (b == '"') {
                if ((rc = append(p, s + i, 1, i)) < 0) return rc;
                p->state = ST_QUOTED;
                i++;
            } else if (b == (unsigned char)p->delim) {
                if ((rc = end_field(p, i)) < 0) return rc;
                i++;
                if ((rc = begin_field(p, i)) < 0) return rc;
                p->state = ST_FIELD_START;
            } else if (b == '\n' || b == '\r') {
                if ((rc = end_field(p, i)) < 0) return rc;
                if ((rc = end_record(p, i)) < 0) return rc;
                p->line++;
                p->line_start = p->abs + i + 1;
                p->state = b == '\r' ? ST_CR : ST_REC_START;
                i++;
            } else {
                char m[96];
                if (b >= 0x20 && b < 0x7F)
                    snprintf(m, sizeof m, "unexpected '%c' after the closing quote of a field", b);
                else
                    snprintf(m, sizeof m, "unexpected byte 0x%02X after the closing quote of a field", b);
                return fail_at(p, i, CSV_EAFTERQUOTE, m);
            }
            break;
        }
    }
    p->abs += n;
    return 0;
}

/* --- sniffing and the pre-buffer -------------------------------------------- */

/* Field counts of the first complete records of s[0..n) split on d; returns
 * how many were stored in counts (at most max). at_eof: the last record is
 * complete even without a line end. */
static size_t sniff_counts(const char *s, size_t n, char d, int at_eof, size_t *counts, size_t max)
{
    size_t k = 0, nf = 0;
    int inq = 0, fstart = 1, any = 0;
    for (size_t i = 0; i < n && k < max; i++) {
        char c = s[i];
        if (inq) {
            if (c == '"') {
                if (i + 1 < n && s[i + 1] == '"') i++;
                else inq = 0;
            }
            continue;
        }
        if (c == '"' && fstart) {
            inq = 1;
            fstart = 0;
            any = 1;
        } else if (c == d) {
            nf++;
            fstart = 1;
            any = 1;
        } else if (c == '\n' || c == '\r') {
            if (any) counts[k++] = nf + 1;
            nf = 0;
            fstart = 1;
            any = 0;
        } else {
            fstart = 0;
            any = 1;
        }
    }
    if (at_eof && any && !inq && k < max) counts[k++] = nf + 1;
    return k;
}

static char sniff(const char *s, size_t n, int at_eof)
{
    static const char cand[4] = {',', ';', '\t', '|'};
    size_t counts[32];
    char best = ',';
    size_t best_nf = 1;
    for (int c = 0; c < 4; c++) {
        size_t k = sniff_counts(s, n, cand[c], at_eof, counts, 32);
        if (k == 0 || counts[0] < 2) continue;
        size_t j = 1;
        while (j < k && counts[j] == counts[0]) j++;
        if (j == k && counts[0] > best_nf) {
            best = cand[c];
            best_nf = counts[0];
        }
    }
    return best;
}

/* Leave the pre-buffer phase: drop a BOM, pick the delimiter, parse what
 * was buffered. */
static int start(struct csv_parser *p, int at_eof)
{
    const char *s = p->pre;
    size_t n = p->pre_len;
    if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
        s += 3;
        n -= 3;
    }
    p->delim = p->o.delimiter ? p->o.delimiter : sniff(s, n, at_eof);
    build_classes(p);
    p->started = 1;
    int rc = n > 0 ? parse_chunk(p, s, n) : 0;
    free(p->pre);
    p->pre = NULL;
    p->pre_len = 0;
    return rc;
}

int csv_parser_feed(struct csv_parser *p, const char *buf, size_t len)
{
    if (p == NULL || (buf == NULL && len > 0)) return CSV_EARG;
    if (p->err.code != 0) return p->err.code;
    if (p->finished) {
        set_err(&p->err, CSV_EARG, 0, 0, "csv_parser_feed after csv_parser_finish");
        return CSV_EARG;
    }
    if (!p->started) {
        size_t take = p->pre_limit - p->pre_len;
        if (take > len) take = len;
        if (p->pre == NULL) {
            p->pre = malloc(p->pre_limit);
            if (p->pre == NULL) {
                set_err(&p->err, CSV_ENOMEM, 0, 0, "out of memory");
                return CSV_ENOMEM;
            }
        }
        if (take > 0) memcpy(p->pre + p->pre_len, buf, take);
        p->pre_len += take;
        buf += take;
        len -= take;
        if (p->pre_len < p->pre_limit) return 0;
        int rc = start(p, 0);
        if (rc < 0) return rc;
    }
    return len > 0 ? parse_chunk(p, buf, len) : 0;
}

int csv_parser_finish(struct csv_parser *p)
{
    if (p == NULL) return CSV_EARG;
    if (p->err.code != 0) return p->err.code;
    if (p->finished) return 0;
    int rc;
    if (!p->started && (rc = start(p, 1)) < 0) return rc;
    p->finished = 1;
    if (p->u8_need > 0) return fail_at(p, 0, CSV_EUTF8, "truncated UTF-8 sequence at end of input");
    switch (p->state) {
    case ST_QUOTED:
        set_err(&p->err, CSV_EQUOTE, p->quote_line, p->quote_col,
                "quoted field opened here is never closed");
        return CSV_EQUOTE;
    case ST_FIELD_START:
    case ST_UNQ:
    case ST_QQ:
        if ((rc = end_field(p, 0)) < 0) return rc;
        if ((rc = end_record(p, 0)) < 0) return rc;
        break;
    default:
        break;
    }
    return 0;
}

/* --- helpers shared with the profiler --------------------------------------- */

int csv_is_number(const char *s, size_t len)
{
    size_t i = 0, n = len;
    while (i < n && s[i] == ' ') i++;
    while (n > i && s[n - 1] == ' ') n--;
    if (i < n && (s[i] == '+' || s[i] == '-')) i++;
    size_t digits = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') { i++; digits++; }
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9') { i++; digits++; }
    }
    if (digits == 0) return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        size_t ed = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') { i++; ed++; }
        if (ed == 0) return 0;
    }
    return i == n;
}

int csv_row_is_header(const struct csv_record *first)
{
    if (first == NULL || first->n_fields == 0) return 0;
    for (size_t k = 0; k < first->n_fields; k++)
        if (!csv_is_number(first->fields[k].ptr, first->fields[k].len)) return 1;
    return 0;
}

/* --- the table loader ------------------------------------------------------ */

struct loader {
    struct csv_table *t;
    int header_mode;
    uint64_t max_rows;
    int first_done;
    char **hdr;            /* header fields, malloc'd copies (n_cols) */
    size_t arena_len, arena_cap;
    size_t offs_cap;       /* in cells */
    size_t quoted_cap;     /* in cells */
    int overflow_rows;
    int nomem;
};

static int ensure(void **ptr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need) {
        if (c > ((size_t)-1) / 2 / elem) return -1;
        c *= 2;
    }
    void *q = realloc(*ptr, c * elem);
    if (q == NULL) return -1;
    *ptr = q;
    *cap = c;
    return 0;
}

static int loader_row(void *ctx, const struct csv_record *rec)
{
    struct loader *L = ctx;
    struct csv_table *t = L->t;
    if (!L->first_done) {
        L->first_done = 1;
        t->n_cols = rec->n_fields;
        int hdr = L->header_mode == CSV_HEADER_YES ||
                  (L->header_mode == CSV_HEADER_AUTO && csv_row_is_header(rec));
        if (hdr) {
            t->has_header = 1;
            L->hdr = calloc(rec->n_fields, sizeof *L->hdr);
            if (L->hdr == NULL) { L->nomem = 1; return 1; }
            for (size_t k = 0; k < rec->n_fields; k++) {
                L->hdr[k] = strndup(rec->fields[k].ptr, rec->fields[k].len);
                if (L->hdr[k] == NULL) { L->nomem = 1; return 1; }
            }
            return 0;
        }
    }
    if (L->max_rows > 0 && t->n_rows >= L->max_rows) {
        L->overflow_rows = 1;
        return 1;
    }
    size_t bytes = 0;
    for (size_t k = 0; k < rec->n_fields; k++) bytes += rec->fields[k].len + 1;
    size_t cells = (t->n_rows + 1) * t->n_cols;
    if (ensure((void **)&t->arena, &L->arena_cap, L->arena_len + bytes, 1) < 0 ||
        ensure((void **)&t->offs, &L->offs_cap, cells, sizeof *t->offs) < 0 ||
        ensure((void **)&t->quoted, &L->quoted_cap, cells, 1) < 0) {
        L->nomem = 1;
        return 1;
    }
    size_t base = t->n_rows * t->n_cols;
    for (size_t k = 0; k < rec->n_fields; k++) {
        t->offs[base + k] = L->arena_len;
        t->quoted[base + k] = (unsigned char)rec->fields[k].quoted;
        memcpy(t->arena + L->arena_len, rec->fields[k].ptr, rec->fields[k].len + 1);
        L->arena_len += rec->fields[k].len + 1;
    }
    t->n_rows++;
    return 0;
}

/* FNV-1a, for the name set */
static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

char **csv_unique_names(const char *const *raw, size_t n)
{
    size_t slots = 16;
    while (slots < 2 * n + 2) slots *= 2;
    char **tmp = calloc(n ? n : 1, sizeof *tmp);
    const char **set = calloc(slots, sizeof *set);
    char **names = NULL;
    if (tmp == NULL || set == NULL) goto out;
    for (size_t c = 0; c < n; c++) {
        char gen[32];
        const char *base = raw != NULL && raw[c] != NULL ? raw[c] : "";
        if (base[0] == '\0') {
            snprintf(gen, sizeof gen, "col_%zu", c + 1);
            base = gen;
        }
        size_t blen = strlen(base);
        char *cand = malloc(blen + 24);
        if (cand == NULL) goto out;
        memcpy(cand, base, blen + 1);
        tmp[c] = cand;
        for (unsigned long k = 2;; k++) {
            size_t s = (size_t)(name_hash(cand) & (slots - 1));
            int taken = 0;
            while (set[s] != NULL) {
                if (strcmp(set[s], cand) == 0) { taken = 1; break; }
                s = (s + 1) & (slots - 1);
            }
            if (!taken) {
                set[s] = cand;
                break;
            }
            snprintf(cand + blen, 24, "_%lu", k);
        }
    }
    /* one block: n pointers, then the strings */
    size_t total = (n ? n : 1) * sizeof(char *);
    for (size_t c = 0; c < n; c++) total += strlen(tmp[c]) + 1;
    names = malloc(total);
    if (names == NULL) goto out;
    char *at = (char *)(names + (n ? n : 1));
    for (size_t c = 0; c < n; c++) {
        size_t l = strlen(tmp[c]) + 1;
        memcpy(at, tmp[c], l);
        names[c] = at;
        at += l;
    }
out:
    if (tmp != NULL)
        for (size_t c = 0; c < n; c++) free(tmp[c]);
    free(tmp);
    free(set);
    return names;
}

void csv_table_free(struct csv_table *t)
{
    if (t == NULL) return;
    free(t->names);
    free(t->arena);
    free(t->offs);
    free(t->quoted);
    memset(t, 0, sizeof *t);
}

typedef int (*feed_fn)(struct csv_parser *p, void *src, struct csv_error *err);

static int load(feed_fn feed, void *src, const struct csv_opts *opts,
                struct csv_table *t, struct csv_error *err)
{
    struct csv_error local;
    if (err == NULL) err = &local;
    memset(err, 0, sizeof *err);
    if (t == NULL) return CSV_EARG;
    memset(t, 0, sizeof *t);
    struct csv_opts o = {0};
    if (opts != NULL) o = *opts;
    o.allow_ragged = 0;
    struct loader L = {.t = t, .header_mode = o.header, .max_rows = o.max_rows};
    struct csv_parser *p = csv_parser_new(&o, loader_row, &L);
    int rc;
    if (p == NULL) {
        rc = opts != NULL && opts->delimiter ? CSV_EARG : CSV_ENOMEM;
        set_err(err, rc, 0, 0, "%s", rc == CSV_EARG ? "invalid delimiter" : "out of memory");
        goto fail;
    }
    rc = feed(p, src, err);
    if (rc == 0) rc = csv_parser_finish(p);
    if (rc < 0) {
        if (rc == CSV_ESTOPPED && L.nomem) {
            rc = CSV_ENOMEM;
            set_err(err, rc, 0, 0, "out of memory");
        } else if (rc == CSV_ESTOPPED && L.overflow_rows) {
            rc = CSV_EROWS;
            set_err(err, rc, csv_parser_error(p)->line, 0, "more than %llu data rows",
                    (unsigned long long)L.max_rows);
        } else if (rc != CSV_EIO) {
            *err = *csv_parser_error(p);
        }
        goto fail;
    }
    if (!L.first_done) {
        rc = CSV_EEMPTY;
        set_err(err, rc, 0, 0, "the input holds no records");
        goto fail;
    }
    t->delimiter = csv_parser_delimiter(p);
    t->names = csv_unique_names((const char *const *)L.hdr, t->n_cols);
    if (t->names == NULL) {
        rc = CSV_ENOMEM;
        set_err(err, rc, 0, 0, "out of memory");
        goto fail;
    }
    csv_parser_free(p);
    if (L.hdr != NULL)
        for (size_t c = 0; c < t->n_cols; c++) free(L.hdr[c]);
    free(L.hdr);
    return 0;
fail:
    csv_parser_free(p);
    if (L.hdr != NULL)
        for (size_t c = 0; c < t->n_cols; c++) free(L.hdr[c]);
    free(L.hdr);
    csv_table_free(t);
    return rc;
}

struct membuf {
    const char *buf;
    size_t len;
};

static int feed_mem(struct csv_parser *p, void *src, struct csv_error *err)
{
    struct membuf *m = src;
    (void)err;
    return csv_parser_feed(p, m->buf, m->len);
}

static int feed_file(struct csv_parser *p, void *src, struct csv_error *err)
{
    const char *path = src;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        set_err(err, CSV_EIO, 0, 0, "cannot open %s: %s", path, strerror(errno));
        return CSV_EIO;
    }
    char *buf = malloc(1 << 16);
    if (buf == NULL) {
        fclose(f);
        set_err(err, CSV_ENOMEM, 0, 0, "out of memory");
        return CSV_ENOMEM;
    }
    int rc = 0;
    size_t n;
    while ((n = fread(buf, 1, 1 << 16, f)) > 0)
        if ((rc = csv_parser_feed(p, buf, n)) < 0) break;
    if (rc == 0 && ferror(f)) {
        set_err(err, CSV_EIO, 0, 0, "cannot read %s", path);
        rc = CSV_EIO;
    }
    free(buf);
    fclose(f);
    return rc;
}

int csv_table_load_file(const char *path, const struct csv_opts *opts,
                        struct csv_table *t, struct csv_error *err)
{
    if (path == NULL) return CSV_EARG;
    return load(feed_file, (void *)path, opts, t, err);
}

int csv_table_load_buffer(const char *buf, size_t len, const struct csv_opts *opts,
                          struct csv_table *t, struct csv_error *err)
{
    if (buf == NULL && len > 0) return CSV_EARG;
    struct membuf m = {buf, len};
    return load(feed_mem, &m, opts, t, err);
}

const char *csv_table_cell(const struct csv_table *t, size_t r, size_t c)
{
    if (t == NULL || r >= t->n_rows || c >= t->n_cols) return NULL;
    return t->arena + t->offs[r * t->n_cols + c];
}

int csv_table_cell_quoted(const struct csv_table *t, size_t r, size_t c)
{
    if (t == NULL || r >= t->n_rows || c >= t->n_cols) return 0;
    return t->quoted[r * t->n_cols + c];
}

long csv_table_column(const struct csv_table *t, const char *name)
{
    if (t == NULL || name == NULL) return -1;
    for (size_t c = 0; c < t->n_cols; c++)
        if (strcmp(t->names[c], name) == 0) return (long)c;
    return -1;
}

void csv_write_field(FILE *f, const char *s)
{
    int quote = strpbrk(s, ",\"\r\n") != NULL || s[0] == ' ' || (s[0] && s[strlen(s) - 1] == ' ');
    if (!quote) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}
