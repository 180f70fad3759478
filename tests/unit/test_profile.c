/* test_profile.c - the streaming column profiler (lib/profile): type
 * inference, missing tokens, identifiers, constants, distinct counts past
 * the exact cap (HyperLogLog, space-saving), the adaptive histogram and the
 * moments, the same result whatever the chunking, and the profiles of the
 * 14 shared data sets: the facts the data README states, the target and
 * task of tests/data/tabular.json, and golden JSON files under
 * tests/data/profiles/ compared with a numeric tolerance.
 *
 * PODIUM_UPDATE_GOLDEN=1 rewrites the golden files instead of comparing
 * (review the diff before committing it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "lib/csv.h"
#include "lib/profile.h"

/* --- helpers ----------------------------------------------------------------- */

/* A file under the repository root: the current directory, then
 * $PODIUM_SOURCE_DIR, then $PODIUM_SRC_DIR. must: fail when absent. */
static const char *repo_path(const char *rel, char *buf, size_t len, int must)
{
    static const char *envs[] = {NULL, "PODIUM_SOURCE_DIR", "PODIUM_SRC_DIR"};
    for (size_t i = 0; i < 3; i++) {
        const char *root = envs[i] ? getenv(envs[i]) : ".";
        if (root == NULL) continue;
        snprintf(buf, len, "%s/%s", root, rel);
        FILE *f = fopen(buf, "rb");
        if (f != NULL) {
            fclose(f);
            return buf;
        }
    }
    if (must) fail_msg("%s not found (run from the repository root or set PODIUM_SOURCE_DIR)", rel);
    snprintf(buf, len, "./%s", rel);
    return buf;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    size_t r;
    while ((r = fread(s + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n - 1 == 0) {
            cap *= 2;
            s = realloc(s, cap);
            assert_non_null(s);
        }
    }
    fclose(f);
    s[n] = '\0';
    if (len) *len = n;
    return s;
}

static cJSON *profile_of(const char *csv, const struct profile_opts *po)
{
    cJSON *j = NULL;
    struct csv_error e;
    int rc = profile_buffer(csv, strlen(csv), NULL, po, &j, &e);
    if (rc != 0) fail_msg("profile failed: %s", e.message);
    assert_non_null(j);
    return j;
}

static cJSON *col(const cJSON *prof, const char *name)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(prof, "columns")) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(c, "name");
        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0) return (cJSON *)c;
    }
    fail_msg("no column %s", name);
    return NULL;
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v)) fail_msg("%s is not a string", key);
    return v->valuestring;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) fail_msg("%s is not a number", key);
    return v->valuedouble;
}

static int flag(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsBool(v)) fail_msg("%s is not a boolean", key);
    return cJSON_IsTrue(v);
}

static const char *type_of(const cJSON *prof, const char *name) { return str(col(prof, name), "type"); }

/* The names in a JSON array of strings, joined with ',' into buf. */
static const char *joined(const cJSON *arr, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    const cJSON *v;
    cJSON_ArrayForEach(v, arr) n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? "," : "", v->valuestring);
    return buf;
}

/* --- synthetic inputs ------------------------------------------------------------ */

static void missing_tokens(void **state)
{
    const char *csv = "a,b\n"
                      "1,x\n"
                      "NA,na\n"
                      "N/A,n/a\n"
                      "NaN,nan\n"
                      "null,NULL\n"
                      "?, ? \n"
                      ",\"\"\n"
                      "2,y\n"
                      "None,none\n";
    cJSON *j = profile_of(csv, NULL);
    /* None is not a default token: a is then not numeric */
    assert_int_equal((int)num(col(j, "a"), "missing"), 6);
    assert_int_equal((int)num(col(j, "b"), "missing"), 6);
    assert_string_equal(type_of(j, "a"), "categorical");
    assert_int_equal((int)num(j, "missing_total"), 12);
    cJSON_Delete(j);

    /* custom tokens, case-sensitive */
    static const char *const toks[] = {"None", "-"};
    struct profile_opts po = {.missing = toks, .n_missing = 2, .missing_case_sensitive = 1};
    j = profile_of("a\n1\nNone\nnone\n-\n\n2\n", &po);
    assert_int_equal((int)num(col(j, "a"), "missing"), 2);     /* "" is not a token now */
    assert_int_equal((int)num(j, "n_rows"), 5);                /* the empty line is skipped */
    cJSON_Delete(j);
    po.missing_case_sensitive = 0;
    j = profile_of("a\n1\nNone\nnone\n-\n2\n", &po);
    assert_int_equal((int)num(col(j, "a"), "missing"), 3);
    assert_string_equal(type_of(j, "a"), "integer");
    cJSON_Delete(j);

    /* bad options */
    static const char *const bad[] = {NULL};
    struct profile_opts pb = {.missing = bad, .n_missing = 1};
    assert_null(profile_new(&pb));
    struct profile_opts pk = {.top_k = 1000};
    assert_null(profile_new(&pk));
}

static void type_inference(void **state)
{
    const char *csv =
        "b1,b2,b3,i01,int,flt,dt,cat,txt,code,sid,empty,mix\n"
        "true,yes,T,0,-5,1.5,2024-01-31,red,the quick brown fox jumps,ab1,u-001,,1\n"
        "FALSE,No,f,1,17,2,2024-02-29T10:11:12Z,green,over the lazy dog again and,ab2,u-002,NA,2\n"
        "True,Y,t,1,3,-3e2,2024-03-01 09:00,red,a third sentence of some text,ab3,u-003,,x\n"
        "false,n,F,0,+8,0.25,2024-12-01T00:00:00.5+02:00,blue,and yet another long sentence,ab1,u-004,,3\n"
        "true,YES,t,1,42,7,1999-07-04,red,the last bit of free form text,ab2,u-005,,4\n"
        "false,no,f,0,0,.5,2000-01-01,green,really this is the final line,ab3,u-006,,5\n"
        "true,yes,t,1,1,1,2000-01-02,red,one more line of words here ok,ab1,u-007,,6\n"
        "false,no,f,0,2,2,2000-01-03,red,two more lines of words here ok,ab2,u-008,,7\n"
        "true,yes,t,1,3,3,2000-01-04,blue,three more lines of words here,ab3,u-009,,8\n"
        "false,no,f,0,4,4,2000-01-05,red,four more lines of words here x,ab1,u-010,,9\n";
    cJSON *j = profile_of(csv, NULL);
    assert_string_equal(type_of(j, "b1"), "boolean");
    assert_string_equal(type_of(j, "b2"), "boolean");
    assert_string_equal(type_of(j, "b3"), "boolean");
    assert_string_equal(type_of(j, "i01"), "integer");   /* 0/1 alone is integer */
    assert_string_equal(type_of(j, "int"), "integer");
    assert_string_equal(type_of(j, "flt"), "float");
    assert_string_equal(type_of(j, "dt"), "datetime");
    assert_string_equal(type_of(j, "cat"), "categorical");
    assert_string_equal(type_of(j, "txt"), "text");
    assert_string_equal(type_of(j, "code"), "categorical");
    assert_string_equal(type_of(j, "sid"), "identifier");  /* unique short strings */
    assert_string_equal(type_of(j, "empty"), "empty");
    assert_string_equal(type_of(j, "mix"), "categorical");
    cJSON *b1 = cJSON_GetObjectItemCaseSensitive(col(j, "b1"), "boolean");
    assert_int_equal((int)num(b1, "true"), 5);
    assert_int_equal((int)num(b1, "false"), 5);
    cJSON *n = cJSON_GetObjectItemCaseSensitive(col(j, "int"), "numeric");
    assert_true(num(n, "min") == -5);
    assert_true(num(n, "max") == 42);
    assert_true(fabs(num(n, "mean") - 7.5) < 1e-12);
    cJSON *top = cJSON_GetObjectItemCaseSensitive(col(j, "cat"), "top");
    assert_string_equal(str(cJSON_GetArrayItem(top, 0), "value"), "red");
    assert_int_equal((int)num(cJSON_GetArrayItem(top, 0), "count"), 6);
    assert_true(flag(col(j, "empty"), "constant"));
    char buf[256];
    assert_string_equal(joined(cJSON_GetObjectItemCaseSensitive(j, "identifier_columns"), buf, sizeof buf), "sid");
    assert_string_equal(joined(cJSON_GetObjectItemCaseSensitive(j, "constant_columns"), buf, sizeof buf), "empty");
    /* no name matches a target: the last non-constant, non-id column */
    assert_string_equal(str(j, "target"), "mix");
    assert_string_equal(str(j, "task"), "classification");
    cJSON_Delete(j);

    /* bad dates are not dates; booleans mixed with 0/1 stay boolean */
    j = profile_of("d,b\n2024-13-01,true\n2024-01-01,0\n", NULL);
    assert_string_equal(type_of(j, "d"), "categorical");
    assert_string_equal(type_of(j, "b"), "boolean");
    cJSON_Delete(j);
}

static void identifiers_and_targets(void **state)
{
    /* a row number, an id-named column with repeats, a unique float (not an id) */
    char csv[8192];
    size_t n = (size_t)snprintf(csv, sizeof csv, "row,customerId,score,Label\n");
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(csv + n, sizeof csv - n, "%d,%d,%d.%d,%s\n", i + 1, 1000 + i - (i == 39),
                              i, i * 7 % 10, i % 3 ? "yes" : "no");
    cJSON *j = profile_of(csv, NULL);
    assert_string_equal(type_of(j, "row"), "identifier");
    assert_string_equal(type_of(j, "customerId"), "identifier");   /* 39/40 distinct */
    assert_string_equal(type_of(j, "score"), "float");
    assert_string_equal(str(j, "target"), "Label");
    assert_string_equal(str(j, "task"), "classification");
    cJSON *cc = cJSON_GetObjectItemCaseSensitive(j, "class_counts");
    assert_int_equal((int)num(cc, "yes"), 26);
    assert_int_equal((int)num(cc, "no"), 14);
    cJSON_Delete(j);

    /* unique integers that are not increasing are a feature, not an id */
    j = profile_of("v,y\n5,1.5\n3,2.5\n9,3.5\n1,4.5\n7,5.5\n2,6.5\n8,7.5\n4,8.5\n6,9.5\n10,1\n11,2\n", NULL);
    assert_string_equal(type_of(j, "v"), "integer");
    assert_string_equal(str(j, "target"), "y");
    assert_string_equal(str(j, "task"), "regression");
    cJSON_Delete(j);

    /* integer targets: few values → classification, many → regression */
    n = (size_t)snprintf(csv, sizeof csv, "x,outcome,z\n");
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(csv + n, sizeof csv - n, "%d,%d,%d\n", i, i % 4, i % 60);
    j = profile_of(csv, NULL);
    assert_string_equal(str(j, "target"), "outcome");
    assert_string_equal(str(j, "task"), "classification");
    cJSON_Delete(j);
    struct profile_opts po = {0};
    n = (size_t)snprintf(csv, sizeof csv, "x,z\n");
    for (int i = 0; i < 100; i++) n += (size_t)snprintf(csv + n, sizeof csv - n, "%d.5,%d\n", i, i % 60);
    j = profile_of(csv, &po);
    assert_string_equal(str(j, "target"), "z");
    assert_string_equal(str(j, "task"), "regression");
    cJSON_Delete(j);
}

static void header_rule(void **state)
{
    cJSON *j = profile_of("1,2.5,3\n4,5,6\n7,8,9\n", NULL);
    assert_string_equal(str(j, "header"), "generated");
    assert_int_equal((int)num(j, "n_rows"), 3);
    assert_string_equal(str(col(j, "col_2"), "type"), "float");
    cJSON_Delete(j);
    j = profile_of("x,x,\n1,2,3\n", NULL);
    assert_string_equal(str(j, "header"), "present");
    (void)col(j, "x_2");
    (void)col(j, "col_3");
    cJSON_Delete(j);
    struct profile_opts po = {.header = CSV_HEADER_NO};
    j = profile_of("a,b\n1,2\n", &po);
    assert_int_equal((int)num(j, "n_rows"), 2);
    cJSON_Delete(j);
}

static void distinct_past_the_cap(void **state)
{
    struct profile_opts po = {.distinct_cap = 1000};
    struct profile *pr = profile_new(&po);
    assert_non_null(pr);
    char err[128];
    char v[2][64];
    struct csv_field f[2];
    struct csv_record r = {f, 2, 1, 0};
    snprintf(v[0], sizeof v[0], "key");
    snprintf(v[1], sizeof v[1], "val");
    for (int k = 0; k < 2; k++) f[k] = (struct csv_field){v[k], strlen(v[k]), 0};
    assert_int_equal(profile_add(pr, &r, err, sizeof err), 0);
    const int N = 60000;
    uint64_t x = 12345;
    for (int i = 0; i < N; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        /* key: all distinct; val: "hot" 30% of the time, else one of 5000 */
        snprintf(v[0], sizeof v[0], "k%d", i);
        if (x % 10 < 3) snprintf(v[1], sizeof v[1], "hot");
        else snprintf(v[1], sizeof v[1], "v%llu", (unsigned long long)(x >> 8) % 5000);
        for (int k = 0; k < 2; k++) f[k] = (struct csv_field){v[k], strlen(v[k]), 0};
        r.line = (uint64_t)i + 2;
        assert_int_equal(profile_add(pr, &r, err, sizeof err), 0);
    }
    cJSON *j = profile_to_json(pr);
    assert_non_null(j);
    cJSON *key = col(j, "key"), *val = col(j, "val");
    assert_true(flag(key, "distinct_estimated"));
    double d = num(key, "distinct");
    assert_true(fabs(d - N) / N < 0.05);                /* HLL p=12: ~1.6% std error */
    assert_true(flag(val, "distinct_estimated"));
    d = num(val, "distinct");
    assert_true(fabs(d - 5001) / 5001 < 0.05);
    assert_string_equal(str(val, "type"), "categorical");
    assert_false(flag(val, "top_exact"));
    cJSON *top = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(val, "top"), 0);
    assert_string_equal(str(top, "value"), "hot");
    assert_true(num(top, "count") >= 0.25 * N);         /* space-saving: an upper bound */
    assert_string_equal(str(key, "type"), "identifier");
    cJSON_Delete(j);
    profile_free(pr);
}

static void moments_and_histogram(void **state)
{
    struct profile *pr = profile_new(NULL);
    char err[128], v[64];
    struct csv_field f = {"x", 1, 0};
    struct csv_record r = {&f, 1, 1, 0};
    assert_int_equal(profile_add(pr, &r, err, sizeof err), 0);
    /* a small range first, then values far outside it on both sides */
    const int N = 5000;
    double sum = 0, sumsq = 0, mn = 1e300, mx = -1e300;
    uint64_t s = 99;
    for (int i = 0; i < N; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        double x = (double)(s % 1000) / 1000.0;
        if (i > 3000) x = x * 1e6 - 2e5;
        snprintf(v, sizeof v, "%.17g", x);
        x = strtod(v, NULL);
        sum += x;
        mn = x < mn ? x : mn;
        mx = x > mx ? x : mx;
        f = (struct csv_field){v, strlen(v), 0};
        assert_int_equal(profile_add(pr, &r, err, sizeof err), 0);
    }
    double mean = sum / N;
    /* two-pass variance from the same values, regenerated */
    s = 99;
    for (int i = 0; i < N; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        double x = (double)(s % 1000) / 1000.0;
        if (i > 3000) x = x * 1e6 - 2e5;
        snprintf(v, sizeof v, "%.17g", x);
        x = strtod(v, NULL);
        sumsq += (x - mean) * (x - mean);
    }
    double sd = sqrt(sumsq / (N - 1));
    cJSON *j = profile_to_json(pr);
    cJSON *c = col(j, "x");
    cJSON *nu = cJSON_GetObjectItemCaseSensitive(c, "numeric");
    assert_true(num(nu, "min") == mn);
    assert_true(num(nu, "max") == mx);
    assert_true(fabs(num(nu, "mean") - mean) <= 1e-9 * fabs(mean));
    assert_true(fabs(num(nu, "std") - sd) <= 1e-9 * sd);
    cJSON *h = cJSON_GetObjectItemCaseSensitive(c, "histogram");
    cJSON *edges = cJSON_GetObjectItemCaseSensitive(h, "edges");
    cJSON *counts = cJSON_GetObjectItemCaseSensitive(h, "counts");
    int nb = cJSON_GetArraySize(counts);
    assert_true(nb >= 1 && nb <= 20);
    assert_int_equal(cJSON_GetArraySize(edges), nb + 1);
    double total = 0;
    for (int k = 0; k < nb; k++) total += cJSON_GetArrayItem(counts, k)->valuedouble;
    assert_true(total == N);                            /* exact counts */
    for (int k = 0; k < nb; k++)
        assert_true(cJSON_GetArrayItem(edges, k)->valuedouble < cJSON_GetArrayItem(edges, k + 1)->valuedouble);
    assert_true(cJSON_GetArrayItem(edges, 0)->valuedouble <= mn);
    assert_true(cJSON_GetArrayItem(edges, nb)->valuedouble > mx);
    assert_true(cJSON_GetArrayItem(counts, 0)->valuedouble > 0);
    assert_true(cJSON_GetArrayItem(counts, nb - 1)->valuedouble > 0);
    cJSON_Delete(j);
    profile_free(pr);

    /* few values (below the 64 buffered) and a constant column */
    j = profile_of("a,b\n1,7\n2,7\n3,7\n", NULL);
    counts = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(col(j, "a"), "histogram"), "counts");
    total = 0;
    for (int k = 0; k < cJSON_GetArraySize(counts); k++) total += cJSON_GetArrayItem(counts, k)->valuedouble;
    assert_true(total == 3);
    counts = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(col(j, "b"), "histogram"), "counts");
    assert_int_equal(cJSON_GetArraySize(counts), 1);
    assert_true(flag(col(j, "b"), "constant"));
    cJSON_Delete(j);

    /* a number too large for a double is counted, not averaged */
    j = profile_of("a\n1\n1e999\n3\n", NULL);
    nu = cJSON_GetObjectItemCaseSensitive(col(j, "a"), "numeric");
    assert_true(num(nu, "mean") == 2);
    assert_int_equal((int)num(nu, "out_of_range"), 1);
    assert_string_equal(type_of(j, "a"), "float");
    cJSON_Delete(j);
}

static void streaming_equals_whole(void **state)
{
    char path[4096];
    size_t len;
    char *buf = slurp(repo_path("tests/data/tabular/HouseVotes84.csv", path, sizeof path, 1), &len);
    assert_non_null(buf);
    cJSON *whole = NULL;
    assert_int_equal(profile_buffer(buf, len, NULL, NULL, &whole, NULL), 0);
    static const size_t chunks[] = {1, 7, 4096};
    for (size_t c = 0; c < 3; c++) {
        struct profile *pr = profile_new(NULL);
        struct csv_parser *p = csv_parser_new(NULL, profile_record_cb, pr);
        for (size_t off = 0; off < len; off += chunks[c]) {
            size_t n = len - off < chunks[c] ? len - off : chunks[c];
            assert_int_equal(csv_parser_feed(p, buf + off, n), 0);
        }
        assert_int_equal(csv_parser_finish(p), 0);
        profile_set_delimiter(pr, csv_parser_delimiter(p));
        cJSON *j = profile_to_json(pr);
        assert_true(cJSON_Compare(j, whole, 1));
        cJSON_Delete(j);
        csv_parser_free(p);
        profile_free(pr);
    }
    cJSON_Delete(whole);
    free(buf);
}

static void errors(void **state)
{
    struct profile *pr = profile_new(NULL);
    char err[128];
    assert_null(profile_to_json(pr));             /* nothing added */
    struct csv_field f[2] = {{"a", 1, 0}, {"b", 1, 0}};
    struct csv_record r = {f, 2, 1, 0};
    assert_int_equal(profile_add(pr, &r, err, sizeof err), 0);
    r.n_fields = 1;
    r.line = 7;
    assert_int_equal(profile_add(pr, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "line 7"));
    profile_free(pr);
    profile_free(NULL);

    cJSON *j = NULL;
    struct csv_error e;
    assert_int_equal(profile_buffer("a,b\n1,\"2\n", 9, NULL, NULL, &j, &e), CSV_EQUOTE);
    assert_null(j);
    assert_int_equal(e.line, 2);
    assert_int_equal(profile_buffer("", 0, NULL, NULL, &j, &e), CSV_EEMPTY);
    assert_int_equal(profile_file("/nonexistent.csv", NULL, NULL, &j, &e), CSV_EIO);
    /* a parse error from a ragged row is the parser's, with its line */
    assert_int_equal(profile_buffer("a,b\n1,2\n3\n", 10, NULL, NULL, &j, &e), CSV_ERAGGED);
    assert_int_equal(e.line, 3);
}

/* --- the shared data sets -------------------------------------------------------- */

static cJSON *profile_shared(const char *file)
{
    char rel[256], path[4096];
    snprintf(rel, sizeof rel, "tests/data/tabular/%s", file);
    cJSON *j = NULL;
    struct csv_error e;
    if (profile_file(repo_path(rel, path, sizeof path, 1), NULL, NULL, &j, &e) != 0)
        fail_msg("%s: %s", file, e.message);
    return j;
}

/* Target and task of every file match tests/data/tabular.json. */
static void shared_targets_and_tasks(void **state)
{
    char path[4096];
    char *s = slurp(repo_path("tests/data/tabular.json", path, sizeof path, 1), NULL);
    assert_non_null(s);
    cJSON *truth = cJSON_Parse(s);
    free(s);
    assert_non_null(truth);
    int n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, truth) {
        const char *file = strrchr(str(it, "file"), '/') + 1;
        cJSON *j = profile_shared(file);
        if (strcmp(str(j, "target"), str(it, "target")) != 0 || strcmp(str(j, "task"), str(it, "task")) != 0)
            fail_msg("%s: suggested %s/%s, want %s/%s", file, str(j, "target"), str(j, "task"),
                     str(it, "target"), str(it, "task"));
        char a[512], b[512];
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(it, "id_columns");
        assert_string_equal(joined(cJSON_GetObjectItemCaseSensitive(j, "identifier_columns"), a, sizeof a),
                            ids ? joined(ids, b, sizeof b) : "");
        assert_string_equal(str(j, "header"), "present");
        assert_string_equal(str(j, "delimiter"), ",");
        cJSON_Delete(j);
        n++;
    }
    assert_int_equal(n, 14);
    cJSON_Delete(truth);
}

static int ncols_of_type(const cJSON *j, const char *type)
{
    int n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(j, "columns")) n += strcmp(str(c, "type"), type) == 0;
    return n;
}

/* The facts of data/README.md, file by file. */
static void shared_facts(void **state)
{
    char buf[1024];
    cJSON *j = profile_shared("Ionosphere.csv");
    assert_true(flag(col(j, "V2"), "constant"));
    assert_string_equal(joined(cJSON_GetObjectItemCaseSensitive(j, "constant_columns"), buf, sizeof buf), "V2");
    assert_string_equal(type_of(j, "V1"), "integer");
    assert_string_equal(type_of(j, "V3"), "float");
    assert_int_equal((int)num(cJSON_GetObjectItemCaseSensitive(j, "class_counts"), "good"), 225);
    assert_int_equal((int)num(cJSON_GetObjectItemCaseSensitive(j, "class_counts"), "bad"), 126);
    cJSON_Delete(j);

    j = profile_shared("PimaIndiansDiabetes2.csv");
    assert_int_equal((int)num(j, "missing_total"), 652);
    assert_int_equal((int)num(col(j, "insulin"), "missing"), 374);
    assert_int_equal((int)num(col(j, "triceps"), "missing"), 227);
    assert_string_equal(type_of(j, "glucose"), "integer");
    assert_string_equal(type_of(j, "mass"), "float");
    cJSON_Delete(j);

    j = profile_shared("HouseVotes84.csv");
    assert_int_equal((int)num(j, "missing_total"), 392);
    assert_int_equal(ncols_of_type(j, "boolean"), 16);
    assert_string_equal(type_of(j, "Class"), "categorical");
    assert_int_equal((int)num(col(j, "V16"), "missing"), 104);
    assert_int_equal((int)num(cJSON_GetObjectItemCaseSensitive(j, "class_counts"), "democrat"), 267);
    cJSON_Delete(j);

    j = profile_shared("Zoo.csv");
    assert_int_equal(ncols_of_type(j, "boolean"), 15);
    assert_string_equal(type_of(j, "legs"), "integer");
    assert_string_equal(type_of(j, "type"), "categorical");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "class_counts")), 7);
    cJSON_Delete(j);

    j = profile_shared("Soybean.csv");
    assert_int_equal((int)num(j, "missing_total"), 2337);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "class_counts")), 19);
    assert_string_equal(type_of(j, "Class"), "categorical");
    /* quoted codes are integers, with a note and their frequencies */
    cJSON *c = col(j, "precip");
    assert_string_equal(str(c, "type"), "integer");
    assert_non_null(strstr(str(c, "note"), "quoted"));
    assert_int_equal((int)num(c, "distinct"), 3);
    assert_int_equal((int)num(c, "missing"), 38);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(c, "top")), 3);
    cJSON_Delete(j);

    j = profile_shared("BreastCancer.csv");
    assert_true(flag(col(j, "Id"), "identifier"));
    assert_string_equal(type_of(j, "Id"), "identifier");
    assert_string_equal(type_of(j, "Cl.thickness"), "integer");
    assert_non_null(strstr(str(col(j, "Cl.thickness"), "note"), "quoted"));
    assert_int_equal((int)num(col(j, "Bare.nuclei"), "missing"), 16);
    assert_int_equal((int)num(cJSON_GetObjectItemCaseSensitive(j, "class_counts"), "benign"), 458);
    cJSON_Delete(j);

    j = profile_shared("Glass.csv");
    assert_string_equal(type_of(j, "Type"), "integer");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "class_counts")), 6);
    assert_int_equal((int)num(cJSON_GetObjectItemCaseSensitive(j, "class_counts"), "2"), 76);
    cJSON_Delete(j);

    j = profile_shared("Servo.csv");
    assert_string_equal(type_of(j, "Motor"), "categorical");
    assert_string_equal(type_of(j, "Class"), "integer");
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "class_counts"));
    cJSON_Delete(j);

    j = profile_shared("BostonHousing.csv");
    assert_string_equal(type_of(j, "chas"), "integer");
    assert_int_equal((int)num(col(j, "chas"), "quoted"), 506);
    assert_string_equal(type_of(j, "medv"), "float");
    cJSON_Delete(j);

    j = profile_shared("iris.csv");
    cJSON *nu = cJSON_GetObjectItemCaseSensitive(col(j, "sepal_length_(cm)"), "numeric");
    assert_true(fabs(num(nu, "mean") - 5.8433333333) < 1e-9);
    assert_true(fabs(num(nu, "std") - 0.8280661280) < 1e-9);
    cJSON_Delete(j);
}

/* Structural equality with a relative tolerance on numbers. */
static int json_close(const cJSON *a, const cJSON *b, char *where, size_t len)
{
    if ((a->type & 0xFF) != (b->type & 0xFF)) {
        snprintf(where, len, "type differs at %s", a->string ? a->string : "?");
        return 0;
    }
    if (cJSON_IsNumber(a)) {
        double x = a->valuedouble, y = b->valuedouble;
        if (fabs(x - y) > 1e-9 * fmax(1.0, fmax(fabs(x), fabs(y)))) {
            snprintf(where, len, "%s: %.17g != %.17g", a->string ? a->string : "[]", x, y);
            return 0;
        }
        return 1;
    }
    if (cJSON_IsString(a)) {
        if (strcmp(a->valuestring, b->valuestring) != 0) {
            snprintf(where, len, "%s: \"%s\" != \"%s\"", a->string ? a->string : "[]", a->valuestring,
                     b->valuestring);
            return 0;
        }
        return 1;
    }
    if (cJSON_IsArray(a) || cJSON_IsObject(a)) {
        const cJSON *x = a->child, *y = b->child;
        for (; x != NULL && y != NULL; x = x->next, y = y->next) {
            if (cJSON_IsObject(a) && strcmp(x->string, y->string) != 0) {
                snprintf(where, len, "key %s != %s", x->string, y->string);
                return 0;
            }
            if (!json_close(x, y, where, len)) return 0;
        }
        if (x != NULL || y != NULL) {
            snprintf(where, len, "length differs at %s", a->string ? a->string : "?");
            return 0;
        }
    }
    return 1;
}

static void shared_golden_profiles(void **state)
{
    static const char *files[] = {"BostonHousing", "BreastCancer", "Glass", "HouseVotes84",
                                  "Ionosphere", "PimaIndiansDiabetes2", "Servo", "Sonar",
                                  "Soybean", "Zoo", "breast_cancer", "diabetes", "iris", "wine"};
    int update = getenv("PODIUM_UPDATE_GOLDEN") != NULL;
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char file[128], rel[256], path[4096];
        snprintf(file, sizeof file, "%s.csv", files[i]);
        cJSON *j = profile_shared(file);
        snprintf(rel, sizeof rel, "tests/data/profiles/%s.json", files[i]);
        if (update) {
            repo_path("tests/data/profiles", path, sizeof path, 1);
            snprintf(path + strlen(path), sizeof path - strlen(path), "/%s.json", files[i]);
            char *s = cJSON_Print(j);
            FILE *f = fopen(path, "wb");
            assert_non_null(f);
            fprintf(f, "%s\n", s);
            fclose(f);
            free(s);
            printf("[ INFO     ] wrote %s\n", path);
        } else {
            char *s = slurp(repo_path(rel, path, sizeof path, 1), NULL);
            assert_non_null(s);
            cJSON *g = cJSON_Parse(s);
            free(s);
            if (g == NULL) fail_msg("%s: not JSON", path);
            char where[512] = "";
            if (!json_close(j, g, where, sizeof where))
                fail_msg("%s differs from the golden profile: %s "
                         "(PODIUM_UPDATE_GOLDEN=1 rewrites it)", files[i], where);
            cJSON_Delete(g);
        }
        cJSON_Delete(j);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(missing_tokens),
        cmocka_unit_test(type_inference),
        cmocka_unit_test(identifiers_and_targets),
        cmocka_unit_test(header_rule),
        cmocka_unit_test(distinct_past_the_cap),
        cmocka_unit_test(moments_and_histogram),
        cmocka_unit_test(streaming_equals_whole),
        cmocka_unit_test(errors),
        cmocka_unit_test(shared_targets_and_tasks),
        cmocka_unit_test(shared_facts),
        cmocka_unit_test(shared_golden_profiles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
