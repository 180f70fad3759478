/*
 * csv.h - Podium's one CSV reader: a streaming, push-style RFC 4180 parser
 * (csv_parser_*) and an in-memory table loader built on it (csv_table_*).
 *
 * Who uses it: the server feeds upload chunks of any size straight from the
 * network (csv_parser_feed), the trainers load a whole file (csv_table_load_*),
 * and lib/profile consumes the parser's records. A parser is a plain object
 * with no threads and no I/O of its own; use one per stream, on one thread.
 *
 * Memory: the parser holds one record (its unescaped fields) plus, until the
 * delimiter is known, at most opts.sniff_bytes of input. It never holds the
 * whole input, so memory is O(longest record), bounded by the limits below.
 *
 * Dialect (documented behaviour, tested in tests/unit/test_csv.c):
 *  - Fields are separated by one delimiter byte (, ; TAB or |; 0 = sniff).
 *  - A field that starts with '"' is quoted: it ends at the next lone '"';
 *    '""' inside it is one '"'; delimiters, CR and LF inside it are data.
 *    After the closing quote only the delimiter, CR, LF or end of input may
 *    follow. A '"' in the middle of an unquoted field is kept as data.
 *  - Records end at LF, CRLF or a lone CR; the last record may lack one.
 *    Line numbers count physical lines (1-based), including lines inside
 *    quoted fields. Columns are 1-based byte offsets within the line.
 *  - An empty line (no bytes between two line ends) is skipped, so is a
 *    blank line at the end. A UTF-8 byte order mark at the start is dropped.
 *  - Input must be valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
 *    NUL and the C0 control bytes other than TAB, LF and CR are rejected as
 *    binary data.
 *  - Every record must have as many fields as the first one (unless
 *    opts.allow_ragged).
 *
 * Delimiter sniffing (opts.delimiter == 0): the first opts.sniff_bytes of
 * input (or all of it, if shorter) are split, quote-aware, with each of
 * , ; TAB | over at most the first 32 complete records. A candidate is
 * consistent when every one of those records has the same field count and
 * that count is > 1. The consistent candidate with the most fields wins;
 * ties go to the earlier in the order , ; TAB |. With no consistent
 * candidate the comma is used.
 *
 * Errors: every function returns 0 or a negative enum csv_status; the parser
 * remembers the first error (csv_parser_error) and fails every later call
 * with it. Messages say what was wrong and where (line, column).
 */
#ifndef PODIUM_LIB_CSV_H
#define PODIUM_LIB_CSV_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum csv_status {
    CSV_OK = 0,
    CSV_ENOMEM = -1,          /* out of memory */
    CSV_EARG = -2,            /* bad argument (NULL parser, bad option) */
    CSV_EQUOTE = -3,          /* quoted field not closed at end of input */
    CSV_EAFTERQUOTE = -4,     /* a byte other than delimiter/newline after a closing quote */
    CSV_ERAGGED = -5,         /* field count differs from the first record */
    CSV_EUTF8 = -6,           /* invalid UTF-8 */
    CSV_EBINARY = -7,         /* NUL or other control byte */
    CSV_EFIELD = -8,          /* a field longer than max_field_bytes */
    CSV_ERECORD = -9,         /* a record longer than max_record_bytes */
    CSV_ECOLUMNS = -10,       /* more than max_columns fields */
    CSV_EROWS = -11,          /* more than max_rows records (table loader) */
    CSV_EIO = -12,            /* reading a file failed */
    CSV_ESTOPPED = -13,       /* the record callback returned non-zero */
    CSV_EEMPTY = -14,         /* no records at all (table loader) */
};

/* Header handling of the table loader and the profiler. */
enum csv_header {
    CSV_HEADER_AUTO = 0,      /* see csv_row_is_header */
    CSV_HEADER_YES = 1,
    CSV_HEADER_NO = 2,
};

#define CSV_DEFAULT_MAX_FIELD_BYTES   (1u << 20)   /* 1 MiB */
#define CSV_DEFAULT_MAX_RECORD_BYTES  (16u << 20)  /* 16 MiB */
#define CSV_DEFAULT_MAX_COLUMNS       16384u
#define CSV_DEFAULT_SNIFF_BYTES       (64u << 10)  /* 64 KiB */

/* Options. A zero field means "the default", so `struct csv_opts o = {0}`
 * is a valid configuration. */
struct csv_opts {
    char delimiter;           /* 0 = sniff; else any ASCII byte but '"', CR, LF
                                 and control bytes (TAB is allowed) */
    int allow_ragged;         /* 1: records may have any field count */
    int header;               /* enum csv_header (loader and profiler only) */
    size_t max_field_bytes;   /* unescaped bytes of one field */
    size_t max_record_bytes;  /* unescaped bytes of one record, +1 per field */
    size_t max_columns;       /* fields of one record */
    size_t sniff_bytes;       /* input examined to pick the delimiter */
    uint64_t max_rows;        /* table loader only; 0 = no limit */
};

struct csv_error {
    int code;                 /* enum csv_status, 0 when none */
    uint64_t line;            /* 1-based physical line, 0 when not applicable */
    uint64_t column;          /* 1-based byte column in that line, 0 when n/a */
    char message[256];        /* human readable, includes line and column */
};

/* One field: ptr[0..len) is the unescaped content; ptr[len] is a NUL
 * (the content itself never holds a NUL). quoted: the field was quoted. */
struct csv_field {
    const char *ptr;
    size_t len;
    int quoted;
};

/* One record, valid only during the callback that receives it. */
struct csv_record {
    const struct csv_field *fields;
    size_t n_fields;
    uint64_t line;            /* physical line where the record starts */
    uint64_t index;           /* 0-based record number (empty lines skipped) */
};

/* Called once per record; a non-zero return stops the parser, which then
 * fails with CSV_ESTOPPED. */
typedef int (*csv_record_fn)(void *ctx, const struct csv_record *rec);

struct csv_parser;

/* A new parser (opts may be NULL for the defaults); NULL when out of memory
 * or when opts are invalid. The caller frees it with csv_parser_free. */
struct csv_parser *csv_parser_new(const struct csv_opts *opts, csv_record_fn fn, void *ctx);
void csv_parser_free(struct csv_parser *p);

/* Push len bytes of input (any split, even one byte at a time). Complete
 * records are delivered to the callback before this returns. */
int csv_parser_feed(struct csv_parser *p, const char *buf, size_t len);
/* End of input: delivers the last record, reports an open quote. */
int csv_parser_finish(struct csv_parser *p);

/* The first error, or one with code 0. Valid until csv_parser_free. */
const struct csv_error *csv_parser_error(const struct csv_parser *p);
/* The delimiter in use; 0 while it is still being sniffed. */
char csv_parser_delimiter(const struct csv_parser *p);
/* Records delivered so far. */
uint64_t csv_parser_records(const struct csv_parser *p);

/* A static name for a status code ("unterminated quoted field", ...). */
const char *csv_strerror(int code);

/* Whether s[0..len) is a plain decimal number (optional sign, digits,
 * optional fraction, optional exponent; surrounding spaces allowed). */
int csv_is_number(const char *s, size_t len);

/* The first-row rule shared by the loader and the profiler (CSV_HEADER_AUTO):
 * the first record is data, not a header, when every one of its fields is a
 * number (csv_is_number; quoted or not). Otherwise it is a header. This rule
 * only looks at the first record so that a streaming consumer can apply it. */
int csv_row_is_header(const struct csv_record *first);

/* Unique, non-empty column names from raw[0..n) (raw or raw[c] may be NULL):
 * an empty name becomes "col_<c+1>", a repeated one gets "_2", "_3", ...
 * appended until it is unique. Returns one malloc'd block (the pointer
 * array followed by the strings) that the caller frees with free(); NULL
 * when out of memory. Used by the loader and the profiler. */
char **csv_unique_names(const char *const *raw, size_t n);

/* --- the in-memory table ---------------------------------------------------
 *
 * All cells live in one arena; cell (r, c) is NUL-terminated. Header names
 * are unique and non-empty: an empty name becomes "col_<c+1>", a repeated one
 * gets "_2", "_3", ... appended. Without a header the names are col_1..col_N.
 */
struct csv_table {
    size_t n_rows, n_cols;    /* data rows (header excluded) and columns */
    char **names;             /* n_cols names (one block from csv_unique_names) */
    int has_header;           /* 1: names come from the first row */
    char delimiter;           /* the delimiter used */
    /* private: */
    char *arena;              /* all cell bytes */
    size_t *offs;             /* n_rows * n_cols offsets into arena */
    unsigned char *quoted;    /* n_rows * n_cols flags */
};

/* Load a whole file or buffer. On failure *t is zeroed (nothing to free)
 * and err (if not NULL) says why. On success the caller frees with
 * csv_table_free. */
int csv_table_load_file(const char *path, const struct csv_opts *opts,
                        struct csv_table *t, struct csv_error *err);
int csv_table_load_buffer(const char *buf, size_t len, const struct csv_opts *opts,
                          struct csv_table *t, struct csv_error *err);
void csv_table_free(struct csv_table *t);

/* Cell (r, c), NUL-terminated; NULL when out of range. */
const char *csv_table_cell(const struct csv_table *t, size_t r, size_t c);
/* Whether cell (r, c) was quoted in the file (0 when out of range). */
int csv_table_cell_quoted(const struct csv_table *t, size_t r, size_t c);
/* Column index of a name, or -1. */
long csv_table_column(const struct csv_table *t, const char *name);

/* Write one CSV field to f, quoted (RFC 4180, quotes doubled) when it
 * holds a comma, a quote, a line break or edge spaces. */
void csv_write_field(FILE *f, const char *s);

#endif
