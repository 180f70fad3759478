/* test_csv.c - the streaming CSV parser (lib/csv): RFC 4180 quoting, line
 * ends, BOM, delimiter sniffing, every error with its line and column, the
 * limits, input split at every byte offset, and the table loader on
 * hand-made input and on the shared data sets. Also prints (never asserts)
 * the parser's throughput on a generated numeric CSV. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "lib/csv.h"

/* --- helpers -------------------------------------------------------------- */

/* Records serialized as "L<line>#<index>:[f1|f2|...]\n", quoted fields
 * marked with a leading '~', so that two parses compare as strings. */
struct sink {
    char *s;
    size_t len, cap;
    size_t records;
    int stop_after;          /* >0: return 1 after this many records */
};

static void sink_put(struct sink *k, const char *s, size_t n)
{
    if (k->len + n + 1 > k->cap) {
        size_t cap = k->cap ? k->cap : 256;
        while (cap < k->len + n + 1) cap *= 2;
        k->s = realloc(k->s, cap);
        assert_non_null(k->s);
        k->cap = cap;
    }
    memcpy(k->s + k->len, s, n);
    k->len += n;
    k->s[k->len] = '\0';
}

static int sink_cb(void *ctx, const struct csv_record *r)
{
    struct sink *k = ctx;
    char head[64];
    snprintf(head, sizeof head, "L%llu#%llu:[", (unsigned long long)r->line,
             (unsigned long long)r->index);
    sink_put(k, head, strlen(head));
    for (size_t i = 0; i < r->n_fields; i++) {
        if (i > 0) sink_put(k, "|", 1);
        if (r->fields[i].quoted) sink_put(k, "~", 1);
        assert_int_equal(r->fields[i].ptr[r->fields[i].len], '\0');
        sink_put(k, r->fields[i].ptr, r->fields[i].len);
    }
    sink_put(k, "]\n", 2);
    k->records++;
    if (k->stop_after > 0 && k->records >= (size_t)k->stop_after) return 1;
    return 0;
}

/* Parse s in chunks of `chunk` bytes (0 = all at once). Returns the status;
 * the sink gets the records, err the error. */
static int parse_opts(const char *s, size_t len, size_t chunk, const struct csv_opts *o,
                      struct sink *k, struct csv_error *err, char *delim)
{
    struct csv_parser *p = csv_parser_new(o, sink_cb, k);
    assert_non_null(p);
    int rc = 0;
    if (chunk == 0) chunk = len ? len : 1;
    for (size_t off = 0; off < len && rc == 0; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        rc = csv_parser_feed(p, s + off, n);
    }
    if (rc == 0) rc = csv_parser_finish(p);
    if (err != NULL) *err = *csv_parser_error(p);
    if (delim != NULL) *delim = csv_parser_delimiter(p);
    if (rc != 0) assert_int_equal(rc, csv_parser_error(p)->code);
    csv_parser_free(p);
    return rc;
}

static int parse(const char *s, struct sink *k, struct csv_error *err)
{
    return parse_opts(s, strlen(s), 0, NULL, k, err, NULL);
}

static void expect_records(const char *in, const char *want)
{
    struct sink k = {0};
    struct csv_error e;
    int rc = parse(in, &k, &e);
    if (rc != 0) fail_msg("parse failed: %s", e.message);
    assert_string_equal(k.s ? k.s : "", want);
    free(k.s);
}

static void expect_error(const char *in, size_t len, const struct csv_opts *o, int code,
                         uint64_t line, uint64_t col)
{
    struct sink k = {0};
    struct csv_error e;
    int rc = parse_opts(in, len, 0, o, &k, &e, NULL);
    if (rc != code)
        fail_msg("want %d (%s), got %d: %s", code, csv_strerror(code), rc, e.message);
    assert_int_equal(e.code, code);
    if (e.line != line || e.column != col)
        fail_msg("want line %llu column %llu, got: %s", (unsigned long long)line,
                 (unsigned long long)col, e.message);
    assert_true(strlen(e.message) > 0);
    /* the same error whatever the split */
    struct sink k1 = {0};
    struct csv_error e1;
    rc = parse_opts(in, len, 1, o, &k1, &e1, NULL);
    assert_int_equal(rc, code);
    assert_int_equal(e1.line, line);
    assert_int_equal(e1.column, col);
    free(k.s);
    free(k1.s);
}

/* --- parsing -------------------------------------------------------------- */

static void quoting(void **state)
{
    expect_records("a,b,c\n1,\"x,y\",\"say \"\"hi\"\"\"\n",
                   "L1#0:[a|b|c]\nL2#1:[1|~x,y|~say \"hi\"]\n");
    /* empty quoted field, empty unquoted fields, a quote inside an unquoted field */
    expect_records("\"\",,x\n5'11\",\"\",\n",
                   "L1#0:[~||x]\nL2#1:[5'11\"|~|]\n");
    /* newlines inside quotes: line numbers count physical lines */
    expect_records("id,text\n1,\"line one\nline two\r\nline three\"\n2,plain\n",
                   "L1#0:[id|text]\nL2#1:[1|~line one\nline two\r\nline three]\nL5#2:[2|plain]\n");
    /* a delimiter right after a closing quote, quoted last field */
    expect_records("\"a\",\"b\"\n\"1\",\"2\"", "L1#0:[~a|~b]\nL2#1:[~1|~2]\n");
}

static void line_ends(void **state)
{
    expect_records("a,b\r\n1,2\r\n3,4\r\n", "L1#0:[a|b]\nL2#1:[1|2]\nL3#2:[3|4]\n");
    expect_records("a,b\n1,2", "L1#0:[a|b]\nL2#1:[1|2]\n");          /* no final newline */
    expect_records("a,b\r1,2\r", "L1#0:[a|b]\nL2#1:[1|2]\n");         /* old Mac CR */
    expect_records("a,b\n\n1,2\n\r\n\n3,4\n\n", "L1#0:[a|b]\nL3#1:[1|2]\nL6#2:[3|4]\n");
    expect_records("a\n\n", "L1#0:[a]\n");                             /* blank line at end */
    expect_records("", "");
    expect_records("\n\n\r\n", "");
    /* a single empty field in quotes is a record, not an empty line */
    expect_records("x\n\"\"\n", "L1#0:[x]\nL2#1:[~]\n");
    /* a trailing comma is an empty last field */
    expect_records("a,b\n1,\n", "L1#0:[a|b]\nL2#1:[1|]\n");
}

static void bom(void **state)
{
    expect_records("\xEF\xBB\xBF" "a,b\n1,2\n", "L1#0:[a|b]\nL2#1:[1|2]\n");
    expect_records("\xEF\xBB\xBF\"a\";\"b\"\n1;2\n", "L1#0:[~a|~b]\nL2#1:[1|2]\n");
    /* a BOM alone; a BOM split over three feeds (checked by split_everywhere too) */
    expect_records("\xEF\xBB\xBF", "");
    struct sink k = {0};
    struct csv_opts o = {.delimiter = ','};
    assert_int_equal(parse_opts("\xEF\xBB\xBFx,y\n", 7, 1, &o, &k, NULL, NULL), 0);
    assert_string_equal(k.s, "L1#0:[x|y]\n");
    free(k.s);
    /* only at the very start: later it is data (valid UTF-8 U+FEFF) */
    expect_records("a\n\xEF\xBB\xBF" "b\n", "L1#0:[a]\nL2#1:[\xEF\xBB\xBF" "b]\n");
}

static void check_sniff(const char *in, char want, const char *records)
{
    struct sink k = {0};
    struct csv_error e;
    char d = 0;
    int rc = parse_opts(in, strlen(in), 0, NULL, &k, &e, &d);
    if (rc != 0) fail_msg("%s", e.message);
    if (d != want) fail_msg("sniffed '%c', want '%c' for %s", d, want, in);
    if (records != NULL) assert_string_equal(k.s, records);
    free(k.s);
    /* same answer when the sample arrives one byte at a time */
    struct sink k1 = {0};
    d = 0;
    assert_int_equal(parse_opts(in, strlen(in), 1, NULL, &k1, NULL, &d), 0);
    assert_int_equal(d, want);
    free(k1.s);
}

static void sniffing(void **state)
{
    check_sniff("a,b,c\n1,2,3\n", ',', "L1#0:[a|b|c]\nL2#1:[1|2|3]\n");
    check_sniff("a;b;c\n1,5;2,5;3\n", ';', "L1#0:[a|b|c]\nL2#1:[1,5|2,5|3]\n");
    check_sniff("a\tb\n1\t2\n", '\t', "L1#0:[a|b]\nL2#1:[1|2]\n");
    check_sniff("a|b|c|d\n1|2|3|4", '|', NULL);
    /* delimiters inside quotes do not count */
    check_sniff("\"a;x\",\"b;y\"\n\"1;2\",\"3;4\"\n", ',', NULL);
    check_sniff("\"a,x\";\"b,y\";\"c\"\n\"1,2\";\"3,4\";5\n", ';', NULL);
    /* one column: no consistent count > 1, comma */
    check_sniff("x\n1\n2\n", ',', NULL);
    /* inconsistent comma counts, consistent semicolons */
    check_sniff("name;price\nfoo;1,50\nbar,baz;2\n", ';', NULL);
    /* explicit delimiter disables sniffing */
    struct sink k = {0};
    struct csv_opts o = {.delimiter = ';'};
    char d = 0;
    assert_int_equal(parse_opts("a,b\n1,2\n", 8, 0, &o, &k, NULL, &d), 0);
    assert_int_equal(d, ';');
    assert_string_equal(k.s, "L1#0:[a,b]\nL2#1:[1,2]\n");
    free(k.s);
    /* invalid explicit delimiters */
    struct csv_opts bad = {.delimiter = '"'};
    assert_null(csv_parser_new(&bad, NULL, NULL));
    bad.delimiter = '\n';
    assert_null(csv_parser_new(&bad, NULL, NULL));
}

static void sniff_tie_goes_to_comma(void **state)
{
    /* "a,b;c" → comma: [a | b;c] (2), semicolon: [a,b | c] (2): a tie */
    char d = 0;
    struct sink k = {0};
    assert_int_equal(parse_opts("a,b;c\n1,2;3\n", 12, 0, NULL, &k, NULL, &d), 0);
    assert_int_equal(d, ',');
    free(k.s);
}

static void sniff_window_is_bounded(void **state)
{
    /* a file longer than the sniff window: sniffed on the first bytes only,
     * the rest parsed as a stream */
    struct csv_opts o = {.sniff_bytes = 64};
    struct sink k = {0};
    char buf[4096];
    size_t n = 0;
    n += (size_t)snprintf(buf + n, sizeof buf - n, "a;b\n");
    for (int i = 0; i < 200; i++) n += (size_t)snprintf(buf + n, sizeof buf - n, "%d;%d\n", i, i * 2);
    char d = 0;
    assert_int_equal(parse_opts(buf, n, 7, &o, &k, NULL, &d), 0);
    assert_int_equal(d, ';');
    assert_int_equal(k.records, 201);
    free(k.s);
}

/* The same records whatever the chunking: whole, byte by byte, and split in
 * two at every offset. */
static void split_everywhere(void **state)
{
    static const char *samples[] = {
        "\xEF\xBB\xBF\"na\"\"me\",val,\"x\"\r\n\"multi\r\nline\",2,\xC3\xA9t\xC3\xA9\r\n,,\r\n\n\"\xF0\x9F\x98\x80\",3,\"\"\"\"",
        "a;b;c\n1;\"2;3\";4\n\"\xE2\x82\xAC\";;\n",
        "x\ty\n\"tab\there\"\t1\n",
    };
    for (size_t s = 0; s < sizeof samples / sizeof *samples; s++) {
        const char *in = samples[s];
        size_t len = strlen(in);
        struct sink ref = {0};
        struct csv_error e;
        if (parse_opts(in, len, 0, NULL, &ref, &e, NULL) != 0) fail_msg("%s", e.message);
        assert_true(ref.records >= 2);
        struct sink b = {0};
        assert_int_equal(parse_opts(in, len, 1, NULL, &b, NULL, NULL), 0);
        assert_string_equal(b.s, ref.s);
        free(b.s);
        for (size_t cut = 0; cut <= len; cut++) {
            struct sink k = {0};
            struct csv_parser *p = csv_parser_new(NULL, sink_cb, &k);
            assert_non_null(p);
            assert_int_equal(csv_parser_feed(p, in, cut), 0);
            assert_int_equal(csv_parser_feed(p, in + cut, len - cut), 0);
            assert_int_equal(csv_parser_finish(p), 0);
            assert_string_equal(k.s, ref.s);
            csv_parser_free(p);
            free(k.s);
        }
        /* and with an explicit delimiter (no pre-buffer beyond the BOM) */
        struct csv_opts o = {.delimiter = s == 1 ? ';' : s == 2 ? '\t' : ','};
        for (size_t chunk = 1; chunk <= 5; chunk++) {
            struct sink k = {0};
            assert_int_equal(parse_opts(in, len, chunk, &o, &k, NULL, NULL), 0);
            assert_string_equal(k.s, ref.s);
            free(k.s);
        }
        free(ref.s);
    }
}

/* --- errors ---------------------------------------------------------------- */

static void error_unterminated_quote(void **state)
{
    /* reported where the quoted field opened, not at the end of input */
    const char *in = "a,b\n1,2\n3,\"open\nstill open\nto the end\n";
    expect_error(in, strlen(in), NULL, CSV_EQUOTE, 3, 3);
    expect_error("\"", 1, NULL, CSV_EQUOTE, 1, 1);
}

static void error_after_quote(void **state)
{
    const char *in = "a,b\n1,\"x\"y\n";
    expect_error(in, strlen(in), NULL, CSV_EAFTERQUOTE, 2, 6);
    in = "a,b\n\"x\" ,2\n";
    expect_error(in, strlen(in), NULL, CSV_EAFTERQUOTE, 2, 4);
}

static void error_ragged(void **state)
{
    struct sink k = {0};
    struct csv_error e;
    /* too few: reported where the record ends */
    assert_int_equal(parse("a,b,c\n1,2,3\n4,5\n", &k, &e), CSV_ERAGGED);
    assert_int_equal(e.line, 3);
    assert_int_equal(e.column, 4);
    assert_non_null(strstr(e.message, "2 fields, expected 3"));
    assert_int_equal(k.records, 2);           /* the good records came through */
    free(k.s);
    /* too many: reported where the first extra field starts */
    memset(&k, 0, sizeof k);
    assert_int_equal(parse("a,b\n1,2\n3,4\n5,6,7,8\n", &k, &e), CSV_ERAGGED);
    assert_int_equal(e.line, 4);
    assert_int_equal(e.column, 5);
    assert_non_null(strstr(e.message, "4 fields, expected 2"));
    free(k.s);
    const char *in = "a,b\n1,2\n3,4,5";
    expect_error(in, strlen(in), NULL, CSV_ERAGGED, 3, 5);
    /* allowed on request */
    struct csv_opts o = {.allow_ragged = 1};
    memset(&k, 0, sizeof k);
    assert_int_equal(parse_opts("a,b\n1\n1,2,3\n", 12, 0, &o, &k, NULL, NULL), 0);
    assert_string_equal(k.s, "L1#0:[a|b]\nL2#1:[1]\nL3#2:[1|2|3]\n");
    free(k.s);
}

static void error_utf8(void **state)
{
    /* a lone continuation byte */
    const char *in = "a,b\n1,x\x80y\n";
    expect_error(in, strlen(in), NULL, CSV_EUTF8, 2, 4);
    /* a lead byte followed by ASCII: the bad byte is the second one */
    in = "a,b\n\xC3(,1\n";
    expect_error(in, strlen(in), NULL, CSV_EUTF8, 2, 2);
    /* overlong encoding of '/' */
    in = "a\n\xC0\xAF\n";
    expect_error(in, strlen(in), NULL, CSV_EUTF8, 2, 1);
    /* UTF-16 surrogate U+D800 */
    in = "a\nx\xED\xA0\x80\n";
    expect_error(in, strlen(in), NULL, CSV_EUTF8, 2, 3);
    /* above U+10FFFF */
    in = "a\n\xF4\x90\x80\x80\n";
    expect_error(in, strlen(in), NULL, CSV_EUTF8, 2, 2);
    /* inside quotes, on a later physical line of the field */
    in = "a\n\"ok\nbad\xFF\"\n";
    expect_error(in, strlen(in), NULL, CSV_EUTF8, 3, 4);
    /* truncated at the end of input */
    in = "a\n\xE2\x82";
    expect_error(in, strlen(in), NULL, CSV_EUTF8, 2, 3);
    /* valid 2, 3 and 4 byte sequences pass */
    expect_records("\xC3\xA9,\xE2\x82\xAC,\xF0\x9F\x98\x80\n",
                   "L1#0:[\xC3\xA9|\xE2\x82\xAC|\xF0\x9F\x98\x80]\n");
}

static void error_binary(void **state)
{
    const char in[] = "a,b\n1,2\n3,\0\n";
    expect_error(in, sizeof in - 1, NULL, CSV_EBINARY, 3, 3);
    const char q[] = "a\n\"x\0\"\n";
    expect_error(q, sizeof q - 1, NULL, CSV_EBINARY, 2, 3);
    const char ctl[] = "a,b\n\x01\x02\x03,4\n";
    expect_error(ctl, sizeof ctl - 1, NULL, CSV_EBINARY, 2, 1);
    /* a PNG header */
    const char png[] = "\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    struct sink k = {0};
    struct csv_error e;
    assert_true(parse_opts(png, sizeof png - 1, 0, NULL, &k, &e, NULL) < 0);
    free(k.s);
    /* TAB is data when it is not the delimiter */
    struct csv_opts o = {.delimiter = ','};
    memset(&k, 0, sizeof k);
    assert_int_equal(parse_opts("a\tb,c\n", 6, 0, &o, &k, NULL, NULL), 0);
    assert_string_equal(k.s, "L1#0:[a\tb|c]\n");
    free(k.s);
}

static void error_limits(void **state)
{
    struct csv_opts o = {.max_field_bytes = 8};
    const char *in = "a,b\n12345678,x\n123456789,y\n";
    expect_error(in, strlen(in), &o, CSV_EFIELD, 3, 9);
    in = "a,b\n\"12345678\",x\n\"123456789\",y\n";
    expect_error(in, strlen(in), &o, CSV_EFIELD, 3, 10);

    struct csv_opts r = {.max_record_bytes = 16};
    in = "a,b\n123,456\n12345678,12345678\n";
    expect_error(in, strlen(in), &r, CSV_ERECORD, 3, 16);

    struct csv_opts c = {.max_columns = 3, .allow_ragged = 1};
    in = "a,b,c\n1,2,3,4\n";
    expect_error(in, strlen(in), &c, CSV_ECOLUMNS, 2, 7);

    /* a huge line without a newline cannot grow memory past the limit */
    struct csv_opts big = {.max_record_bytes = 1 << 16, .max_field_bytes = 1 << 20};
    size_t n = 1 << 18;
    char *s = malloc(n);
    assert_non_null(s);
    memset(s, 'x', n);
    struct sink k = {0};
    struct csv_error e;
    assert_int_equal(parse_opts(s, n, 4096, &big, &k, &e, NULL), CSV_ERECORD);
    assert_int_equal(e.line, 1);
    free(s);
    free(k.s);
}

static void callback_stop_and_sticky_errors(void **state)
{
    struct sink k = {.stop_after = 2};
    struct csv_parser *p = csv_parser_new(NULL, sink_cb, &k);
    assert_non_null(p);
    const char *in = "a\n1\n2\n3\n";
    /* still sniffing: nothing delivered until the window fills or the input ends */
    assert_int_equal(csv_parser_feed(p, in, strlen(in)), 0);
    assert_int_equal(k.records, 0);
    assert_int_equal(csv_parser_finish(p), CSV_ESTOPPED);
    assert_int_equal(k.records, 2);
    csv_parser_free(p);
    free(k.s);

    memset(&k, 0, sizeof k);
    k.stop_after = 2;
    struct csv_opts o = {.delimiter = ','};
    p = csv_parser_new(&o, sink_cb, &k);
    assert_int_equal(csv_parser_feed(p, in, strlen(in)), CSV_ESTOPPED);
    assert_int_equal(k.records, 2);
    assert_int_equal(csv_parser_error(p)->code, CSV_ESTOPPED);
    /* every later call fails the same way */
    assert_int_equal(csv_parser_feed(p, "4\n", 2), CSV_ESTOPPED);
    assert_int_equal(csv_parser_finish(p), CSV_ESTOPPED);
    assert_int_equal(k.records, 2);
    csv_parser_free(p);
    free(k.s);

    /* feed after finish is refused; NULL is a no-op for free */
    p = csv_parser_new(NULL, NULL, NULL);
    assert_int_equal(csv_parser_feed(p, "a\n", 2), 0);
    assert_int_equal(csv_parser_finish(p), 0);
    assert_int_equal(csv_parser_records(p), 1);
    assert_int_equal(csv_parser_feed(p, "b\n", 2), CSV_EARG);
    csv_parser_free(p);
    csv_parser_free(NULL);
    assert_int_equal(csv_parser_feed(NULL, "x", 1), CSV_EARG);
    assert_string_equal(csv_strerror(CSV_EQUOTE), "unterminated quoted field");
}

static void numbers_and_header_rule(void **state)
{
    assert_true(csv_is_number("1", 1));
    assert_true(csv_is_number("-1.5e-3", 7));
    assert_true(csv_is_number(" .5 ", 4));
    assert_true(csv_is_number("5.", 2));
    assert_false(csv_is_number("", 0));
    assert_false(csv_is_number(".", 1));
    assert_false(csv_is_number("1e", 2));
    assert_false(csv_is_number("1,5", 3));
    assert_false(csv_is_number("NaN", 3));
    assert_false(csv_is_number("0x10", 4));
    assert_false(csv_is_number("12a", 2 + 1));
    assert_true(csv_is_number("12a", 2));     /* only len bytes are read */
}

/* --- the table loader -------------------------------------------------------- */

static void table_from_buffer(void **state)
{
    struct csv_table t;
    struct csv_error e;
    const char *in = "name,x,x,,name\n\"a\",1,2,3,4\nb,\"5\",6,7,8\n";
    assert_int_equal(csv_table_load_buffer(in, strlen(in), NULL, &t, &e), 0);
    assert_int_equal(t.n_rows, 2);
    assert_int_equal(t.n_cols, 5);
    assert_true(t.has_header);
    assert_int_equal(t.delimiter, ',');
    assert_string_equal(t.names[0], "name");
    assert_string_equal(t.names[1], "x");
    assert_string_equal(t.names[2], "x_2");
    assert_string_equal(t.names[3], "col_4");
    assert_string_equal(t.names[4], "name_2");
    assert_string_equal(csv_table_cell(&t, 0, 0), "a");
    assert_true(csv_table_cell_quoted(&t, 0, 0));
    assert_false(csv_table_cell_quoted(&t, 1, 0));
    assert_string_equal(csv_table_cell(&t, 1, 1), "5");
    assert_true(csv_table_cell_quoted(&t, 1, 1));
    assert_string_equal(csv_table_cell(&t, 1, 4), "8");
    assert_null(csv_table_cell(&t, 2, 0));
    assert_null(csv_table_cell(&t, 0, 5));
    assert_int_equal(csv_table_column(&t, "x_2"), 2);
    assert_int_equal(csv_table_column(&t, "nope"), -1);
    csv_table_free(&t);
    csv_table_free(&t);  /* zeroed: a second free is harmless */

    /* a numeric first row is data */
    in = "1,2.5,-3\n4,5,6\n";
    assert_int_equal(csv_table_load_buffer(in, strlen(in), NULL, &t, &e), 0);
    assert_false(t.has_header);
    assert_int_equal(t.n_rows, 2);
    assert_string_equal(t.names[0], "col_1");
    assert_string_equal(t.names[2], "col_3");
    assert_string_equal(csv_table_cell(&t, 0, 1), "2.5");
    csv_table_free(&t);

    /* forced modes; generated names never collide with real ones */
    struct csv_opts o = {.header = CSV_HEADER_YES};
    in = "1,2\n3,4\n";
    assert_int_equal(csv_table_load_buffer(in, strlen(in), &o, &t, &e), 0);
    assert_int_equal(t.n_rows, 1);
    assert_string_equal(t.names[0], "1");
    csv_table_free(&t);
    in = "col_2,,x\n1,2,3\n";
    assert_int_equal(csv_table_load_buffer(in, strlen(in), NULL, &t, &e), 0);
    assert_string_equal(t.names[0], "col_2");
    assert_string_equal(t.names[1], "col_2_2");
    csv_table_free(&t);
    o.header = CSV_HEADER_NO;
    in = "a,b\n3,4\n";
    assert_int_equal(csv_table_load_buffer(in, strlen(in), &o, &t, &e), 0);
    assert_int_equal(t.n_rows, 2);
    assert_string_equal(csv_table_cell(&t, 0, 1), "b");
    assert_string_equal(t.names[1], "col_2");
    csv_table_free(&t);

    /* header only: zero rows */
    assert_int_equal(csv_table_load_buffer("a;b\n", 4, NULL, &t, &e), 0);
    assert_int_equal(t.n_rows, 0);
    assert_int_equal(t.n_cols, 2);
    assert_int_equal(t.delimiter, ';');
    csv_table_free(&t);
}

static void table_errors(void **state)
{
    struct csv_table t;
    struct csv_error e;
    const char *in = "a,b\n1,2\n3\n";
    assert_int_equal(csv_table_load_buffer(in, strlen(in), NULL, &t, &e), CSV_ERAGGED);
    assert_int_equal(e.line, 3);
    assert_null(t.arena);
    assert_int_equal(t.n_rows, 0);
    assert_int_equal(csv_table_load_buffer("", 0, NULL, &t, &e), CSV_EEMPTY);
    assert_int_equal(csv_table_load_buffer("\n\n", 2, NULL, &t, &e), CSV_EEMPTY);
    struct csv_opts o = {.max_rows = 2};
    in = "a\n1\n2\n3\n";
    assert_int_equal(csv_table_load_buffer(in, strlen(in), &o, &t, &e), CSV_EROWS);
    assert_non_null(strstr(e.message, "more than 2"));
    in = "a\n1\n2\n";
    assert_int_equal(csv_table_load_buffer(in, strlen(in), &o, &t, &e), 0);
    assert_int_equal(t.n_rows, 2);
    csv_table_free(&t);
    assert_int_equal(csv_table_load_file("/nonexistent/x.csv", NULL, &t, &e), CSV_EIO);
    assert_non_null(strstr(e.message, "/nonexistent/x.csv"));
    /* errors carry through from the parser */
    in = "a\n\"x\n";
    assert_int_equal(csv_table_load_buffer(in, strlen(in), NULL, &t, &e), CSV_EQUOTE);
    assert_int_equal(e.line, 2);
    assert_int_equal(e.column, 1);
}

/* Path of a shared data file: tests/data/tabular/<name> under the current
 * directory, $PODIUM_SOURCE_DIR or $PODIUM_SRC_DIR. */
static const char *data_path(const char *name, char *buf, size_t len)
{
    static const char *envs[] = {NULL, "PODIUM_SOURCE_DIR", "PODIUM_SRC_DIR"};
    for (size_t i = 0; i < 3; i++) {
        const char *root = envs[i] ? getenv(envs[i]) : ".";
        if (root == NULL) continue;
        snprintf(buf, len, "%s/tests/data/tabular/%s", root, name);
        FILE *f = fopen(buf, "rb");
        if (f != NULL) {
            fclose(f);
            return buf;
        }
    }
    fail_msg("data file %s not found (run from the repository root or set PODIUM_SOURCE_DIR)", name);
    return NULL;
}

static void table_shared_files(void **state)
{
    static const struct {
        const char *file;
        size_t rows, cols;
        const char *first, *last;
    } want[] = {
        {"iris.csv", 150, 5, "sepal_length_(cm)", "species"},
        {"wine.csv", 178, 14, "alcohol", "cultivar"},
        {"breast_cancer.csv", 569, 31, "mean_radius", "diagnosis"},
        {"diabetes.csv", 442, 11, "age", "progression"},
        {"BostonHousing.csv", 506, 14, "crim", "medv"},
        {"Glass.csv", 214, 10, "RI", "Type"},
        {"Ionosphere.csv", 351, 35, "V1", "Class"},
        {"Sonar.csv", 208, 61, "V1", "Class"},
        {"PimaIndiansDiabetes2.csv", 768, 9, "pregnant", "diabetes"},
        {"HouseVotes84.csv", 435, 17, "Class", "V16"},
        {"Soybean.csv", 683, 36, "Class", "roots"},
        {"BreastCancer.csv", 699, 11, "Id", "Class"},
        {"Zoo.csv", 101, 17, "hair", "type"},
        {"Servo.csv", 167, 5, "Motor", "Class"},
    };
    char path[4096];
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        struct csv_table t;
        struct csv_error e;
        int rc = csv_table_load_file(data_path(want[i].file, path, sizeof path), NULL, &t, &e);
        if (rc != 0) fail_msg("%s: %s", want[i].file, e.message);
        assert_int_equal(t.n_rows, want[i].rows);
        assert_int_equal(t.n_cols, want[i].cols);
        assert_true(t.has_header);
        assert_int_equal(t.delimiter, ',');
        assert_string_equal(t.names[0], want[i].first);
        assert_string_equal(t.names[t.n_cols - 1], want[i].last);
        csv_table_free(&t);
    }
    /* a few cells */
    struct csv_table t;
    assert_int_equal(csv_table_load_file(data_path("HouseVotes84.csv", path, sizeof path), NULL, &t, NULL), 0);
    assert_string_equal(csv_table_cell(&t, 0, 0), "republican");
    assert_string_equal(csv_table_cell(&t, 0, 11), "");        /* ,, */
    assert_false(csv_table_cell_quoted(&t, 0, 11));
    assert_string_equal(csv_table_cell(&t, 0, 12), "y");
    assert_true(csv_table_cell_quoted(&t, 0, 12));
    csv_table_free(&t);
    assert_int_equal(csv_table_load_file(data_path("Ionosphere.csv", path, sizeof path), NULL, &t, NULL), 0);
    assert_string_equal(csv_table_cell(&t, 0, 2), "0.99539");
    assert_string_equal(csv_table_cell(&t, 350, 34), "good");
    csv_table_free(&t);
}

/* --- throughput (printed, never asserted) ------------------------------------ */

static int count_cb(void *ctx, const struct csv_record *r)
{
    *(size_t *)ctx += r->n_fields;
    return 0;
}

static void throughput_print(void **state)
{
    /* ~16 MB of numeric CSV, fed in 64 KiB chunks */
    size_t cap = 16u << 20, n = 0;
    char *buf = malloc(cap + 256);
    assert_non_null(buf);
    uint64_t x = 88172645463325252ULL;
    n += (size_t)snprintf(buf, cap, "a,b,c,d,e,f,g,h\n");
    while (n < cap) {
        for (int j = 0; j < 8; j++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            char sep = j == 7 ? '\n' : ',';
            if (j % 2)
                n += (size_t)snprintf(buf + n, 32, "%llu.%03llu%c", (unsigned long long)(x % 100000),
                                      (unsigned long long)((x >> 20) % 1000), sep);
            else
                n += (size_t)snprintf(buf + n, 32, "%llu%c", (unsigned long long)(x % 100000), sep);
        }
    }
    size_t fields = 0;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    struct csv_parser *p = csv_parser_new(NULL, count_cb, &fields);
    assert_non_null(p);
    for (size_t off = 0; off < n; off += 65536) {
        size_t l = n - off < 65536 ? n - off : 65536;
        assert_int_equal(csv_parser_feed(p, buf + off, l), 0);
    }
    assert_int_equal(csv_parser_finish(p), 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    printf("[ INFO     ] csv parser: %.1f MB, %zu fields in %.3f s = %.0f MB/s (not asserted)\n",
           (double)n / 1e6, fields, s, s > 0 ? (double)n / 1e6 / s : 0.0);
    assert_int_equal(fields % 8, 0);
    csv_parser_free(p);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(quoting),
        cmocka_unit_test(line_ends),
        cmocka_unit_test(bom),
        cmocka_unit_test(sniffing),
        cmocka_unit_test(sniff_tie_goes_to_comma),
        cmocka_unit_test(sniff_window_is_bounded),
        cmocka_unit_test(split_everywhere),
        cmocka_unit_test(error_unterminated_quote),
        cmocka_unit_test(error_after_quote),
        cmocka_unit_test(error_ragged),
        cmocka_unit_test(error_utf8),
        cmocka_unit_test(error_binary),
        cmocka_unit_test(error_limits),
        cmocka_unit_test(callback_stop_and_sticky_errors),
        cmocka_unit_test(numbers_and_header_rule),
        cmocka_unit_test(table_from_buffer),
        cmocka_unit_test(table_errors),
        cmocka_unit_test(table_shared_files),
        cmocka_unit_test(throughput_print),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
