/*
 * profile.h - a one-pass, bounded-memory column profiler for CSV records.
 *
 * It is fed the records of lib/csv one at a time (profile_add, or
 * profile_record_cb as the parser's callback), so the server can profile
 * an upload while it streams; profile_to_json then describes the table.
 * Memory is bounded per column (see distinct_cap) and never grows with the
 * row count. One profile is used from one thread.
 *
 * What it decides, and how (every rule is tested on the shared data sets in
 * tests/unit/test_profile.c):
 *
 *  Missing values: a field whose text, with surrounding spaces removed,
 *  equals one of the missing tokens. The default tokens are "", "NA",
 *  "N/A", "NaN", "null" and "?", compared ASCII case-insensitively (so
 *  "na", "NULL", "nan" and "n/a" are missing too) unless
 *  missing_case_sensitive is set.
 *
 *  Types (of the non-missing values; quoted or not makes no difference):
 *   boolean     every value is true/false, yes/no, y/n or t/f (any case),
 *               possibly mixed with 0/1; a column of 0/1 alone is integer
 *   integer     every value is an integer (optional sign, digits)
 *   float       every value is a decimal number, not all integers
 *   datetime    every value is an ISO-8601 date (YYYY-MM-DD), optionally
 *               with a time (T or space, HH:MM[:SS[.frac]], Z or +-HH[:MM])
 *   identifier  integer or string values that name rows, not features:
 *               the column name looks like an id (id, Id, ID, *_id, *Id,
 *               *.id, key, uuid, ...) and >= 90% of the values are
 *               distinct; or (with >= 10 rows) every row has a distinct value
 *               and the values are strictly increasing integers, or are
 *               mostly non-numeric strings of mean length <= 40 (that are
 *               not text, below)
 *   text        strings, more than half of them distinct, with a mean
 *               length > 20 or spaces in more than half of them
 *   categorical any other column of strings
 *   empty       every value is missing
 *  An integer column with few distinct values (<= 20) gets a note, as its
 *  values are probably codes of categories ("quoted in the file" when most
 *  were quoted, as R writes factors).
 *
 *  Constant: at most one distinct non-missing value.
 *
 *  Distinct counts are exact up to distinct_cap values per column (on a
 *  64-bit hash of the value; with many columns the cap shrinks to
 *  max(32, 500000 / columns), so that all the tables stay under ~100 MB);
 *  past that the column switches to a HyperLogLog estimate (4096 registers, ~1.6% error) and says so with
 *  "distinct_estimated": true. Most frequent values (top_k) are exact below
 *  the cap and come from the space-saving algorithm (64 counters, counts
 *  are upper bounds, "top_exact": false) above it. Values are shown
 *  truncated to 45 bytes (at a UTF-8 boundary).
 *
 *  Numeric columns: min, max, mean and standard deviation (Welford, sample
 *  std with n-1) and a histogram. The histogram has 64 equal-width bins
 *  whose range is set from the first 64 values and doubles (merging bins
 *  pairwise) whenever a value falls outside it, so counts are exact, memory
 *  is fixed and the result does not depend on knowing min/max up front; the
 *  output keeps the bins from the first to the last non-empty one, widened
 *  (pairs merged) until there are at most 20. "edges" has one more entry
 *  than "counts"; bin k holds edges[k] <= v < edges[k+1].
 *
 *  Target: the column whose lower-cased name is, by priority, target,
 *  label, class, y, outcome, species, diagnosis, type, response, category,
 *  survived, churn (the last such column if several share a name),
 *  skipping identifiers; else the last column that is neither an
 *  identifier nor constant. Task: classification when the target is
 *  boolean or categorical, or integer with at most 2 distinct values, or at
 *  most 20 with at least 5 rows per value on average; otherwise regression.
 *  For classification the class counts are listed.
 *
 *  Header: csv_row_is_header (lib/csv.h) unless opts.header forces it.
 *
 * The JSON (golden examples in tests/data/profiles/):
 *   {"n_rows", "n_columns", "delimiter", "header": "present"|"generated",
 *    "missing_total", "target": name|null, "task": "classification"|
 *    "regression"|null, "class_counts": {label: n} and "target_missing"
 *    (classification only), "constant_columns": [names],
 *    "identifier_columns": [names],
 *    "columns": [{"name", "index", "type", "missing", "distinct",
 *                 "distinct_estimated", "constant", "identifier", "quoted",
 *                 "numeric": {"min","max","mean","std"[,"out_of_range"]}
 *                 and "histogram": {"edges","counts"} (integer, float),
 *                 "boolean": {"true","false"} (boolean),
 *                 "mean_length" (columns holding strings), "note",
 *                 "top": [{"value","count"[,"truncated"]}] and "top_exact"
 *                 (boolean, categorical, datetime, integer with <= 50
 *                 distinct values)}]}
 */
#ifndef PODIUM_LIB_PROFILE_H
#define PODIUM_LIB_PROFILE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "lib/csv.h"

#define PROFILE_DEFAULT_DISTINCT_CAP 10000u
#define PROFILE_DEFAULT_TOP_K 10u
#define PROFILE_MAX_TOP_K 64u

/* Options; zero means the default, so `struct profile_opts o = {0}` works. */
struct profile_opts {
    const char *const *missing;  /* missing-value tokens (copied, <= 1024 of
                                    <= 64 bytes); NULL = the defaults */
    size_t n_missing;
    int missing_case_sensitive;  /* 1: compare tokens exactly */
    size_t distinct_cap;         /* exact distinct values per column */
    size_t top_k;                /* most frequent values listed (<= 64) */
    int header;                  /* enum csv_header */
};

struct profile;

/* A new profile (opts may be NULL); NULL when out of memory or when the
 * options are invalid (a token longer than 64 bytes, top_k > 64). The
 * caller frees it with profile_free. */
struct profile *profile_new(const struct profile_opts *opts);
void profile_free(struct profile *pr);

/* Add one record. The first record fixes the column count (and is the
 * header unless the header rule says otherwise); a record with another
 * field count fails. 0, or -1 with a message in err. */
int profile_add(struct profile *pr, const struct csv_record *rec, char *err, size_t errlen);

/* A csv_record_fn for csv_parser_new with ctx = the profile; a failure
 * stops the parser (CSV_ESTOPPED) and profile_error says why. */
int profile_record_cb(void *ctx, const struct csv_record *rec);
const char *profile_error(const struct profile *pr);

/* Record which delimiter the file used (shown in the result). */
void profile_set_delimiter(struct profile *pr, char delimiter);

/* The result as a new cJSON object the caller frees with cJSON_Delete;
 * NULL when out of memory or when no record was added. The profile is not
 * changed and may be fed further. */
cJSON *profile_to_json(const struct profile *pr);

/* Parse and profile a whole file or buffer. 0 with *out set (the caller
 * frees it), or a negative enum csv_status with err filled. */
int profile_file(const char *path, const struct csv_opts *copts,
                 const struct profile_opts *popts, cJSON **out, struct csv_error *err);
int profile_buffer(const char *buf, size_t len, const struct csv_opts *copts,
                   const struct profile_opts *popts, cJSON **out, struct csv_error *err);

#endif
