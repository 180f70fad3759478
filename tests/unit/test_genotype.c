/* test_genotype.c - DARTS genotypes: the JSON form both ways, every way a
 * genotype can be malformed, random draws and mutations that stay inside
 * the space, and the SVG cell diagram. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/genotype.h"

/* The DARTS (2nd order) CIFAR-10 cell from the paper's code. */
static const char DARTS_V2[] =
    "{\"normal\": [[\"sep_conv_3x3\", 0], [\"sep_conv_3x3\", 1], [\"sep_conv_3x3\", 0],"
    " [\"sep_conv_3x3\", 1], [\"sep_conv_3x3\", 1], [\"skip_connect\", 0],"
    " [\"skip_connect\", 0], [\"dil_conv_3x3\", 2]],"
    " \"reduce\": [[\"max_pool_3x3\", 0], [\"max_pool_3x3\", 1], [\"skip_connect\", 2],"
    " [\"max_pool_3x3\", 1], [\"max_pool_3x3\", 0], [\"skip_connect\", 2],"
    " [\"skip_connect\", 2], [\"max_pool_3x3\", 1]]}";

static int valid(const struct genotype *g)
{
    for (int c = 0; c < 2; c++) {
        const struct genotype_edge *e = c ? g->reduce : g->normal;
        for (int i = 0; i < GENOTYPE_EDGES; i++) {
            if (e[i].op <= GOP_NONE || e[i].op >= GOP_COUNT) return 0;
            if (e[i].input < 0 || e[i].input > i / 2 + 1) return 0;
        }
    }
    return 1;
}

static void json_round_trip(void **state)
{
    cJSON *j = cJSON_Parse(DARTS_V2);
    struct genotype g;
    char err[256];
    assert_int_equal(genotype_from_json(j, &g, err, sizeof err), 0);
    assert_int_equal(g.normal[7].op, GOP_DIL_CONV_3X3);
    assert_int_equal(g.normal[7].input, 2);
    assert_int_equal(g.reduce[0].op, GOP_MAX_POOL_3X3);
    cJSON *back = genotype_to_json(&g);
    assert_true(cJSON_Compare(j, back, 1));
    cJSON_Delete(back);
    cJSON_Delete(j);
}

static void malformed(void **state)
{
    static const struct {
        const char *json, *want;
    } cases[] = {
        {"[]", "must be an object"},
        {"{\"normal\": []}", "genotype.normal: must be an array of 8"},
        {"{\"normal\": [[\"sep_conv_3x3\", 0]], \"reduce\": []}", "array of 8"},
        {"{\"normal\": [[\"conv_9x9\", 0], [\"sep_conv_3x3\", 1], [\"sep_conv_3x3\", 0],"
         "[\"sep_conv_3x3\", 1], [\"sep_conv_3x3\", 1], [\"skip_connect\", 0],"
         "[\"skip_connect\", 0], [\"dil_conv_3x3\", 2]]}",
         "genotype.normal[0]: unknown op 'conv_9x9'"},
        {"{\"normal\": [[\"none\", 0], [\"sep_conv_3x3\", 1], [\"sep_conv_3x3\", 0],"
         "[\"sep_conv_3x3\", 1], [\"sep_conv_3x3\", 1], [\"skip_connect\", 0],"
         "[\"skip_connect\", 0], [\"dil_conv_3x3\", 2]]}",
         "unknown op 'none'"},
        {"{\"normal\": [[\"sep_conv_3x3\", 2], [\"sep_conv_3x3\", 1], [\"sep_conv_3x3\", 0],"
         "[\"sep_conv_3x3\", 1], [\"sep_conv_3x3\", 1], [\"skip_connect\", 0],"
         "[\"skip_connect\", 0], [\"dil_conv_3x3\", 2]]}",
         "genotype.normal[0]: input must be an integer 0..1 for node 0"},
        {"{\"normal\": [[\"sep_conv_3x3\", 0.5], [\"sep_conv_3x3\", 1], [\"sep_conv_3x3\", 0],"
         "[\"sep_conv_3x3\", 1], [\"sep_conv_3x3\", 1], [\"skip_connect\", 0],"
         "[\"skip_connect\", 0], [\"dil_conv_3x3\", 2]]}",
         "input must be an integer"},
        {"{\"normal\": [[\"sep_conv_3x3\"], [\"sep_conv_3x3\", 1], [\"sep_conv_3x3\", 0],"
         "[\"sep_conv_3x3\", 1], [\"sep_conv_3x3\", 1], [\"skip_connect\", 0],"
         "[\"skip_connect\", 0], [\"dil_conv_3x3\", 2]]}",
         "genotype.normal[0]: must be [op name, input index]"},
        {"{\"normal\": [], \"extra\": 1}", "genotype.extra: unknown member"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *j = cJSON_Parse(cases[i].json);
        assert_non_null(j);
        struct genotype g;
        char err[256] = "";
        assert_int_equal(genotype_from_json(j, &g, err, sizeof err), -1);
        if (strstr(err, cases[i].want) == NULL) fail_msg("case %zu: got '%s'", i, err);
        cJSON_Delete(j);
    }
    /* a valid normal cell but a malformed reduction cell */
    cJSON *j = cJSON_Parse(DARTS_V2);
    cJSON_ReplaceItemInArray(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "reduce"), "x") ?
                                 NULL : cJSON_GetObjectItem(j, "reduce"),
                             7, cJSON_Parse("[\"max_pool_3x3\", 6]"));
    struct genotype g;
    char err[256];
    assert_int_equal(genotype_from_json(j, &g, err, sizeof err), -1);
    assert_non_null(strstr(err, "genotype.reduce[7]"));
    cJSON_Delete(j);
}

static void random_draws_stay_in_the_space(void **state)
{
    struct genotype_rng r = {42};
    int seen_op[GOP_COUNT] = {0};
    for (int k = 0; k < 500; k++) {
        struct genotype g;
        genotype_random(&g, &r);
        assert_true(valid(&g));
        for (int i = 0; i < GENOTYPE_EDGES; i += 2) {
            assert_int_not_equal(g.normal[i].input, g.normal[i + 1].input);
            assert_int_not_equal(g.reduce[i].input, g.reduce[i + 1].input);
        }
        for (int i = 0; i < GENOTYPE_EDGES; i++) seen_op[g.normal[i].op]++;
    }
    assert_int_equal(seen_op[GOP_NONE], 0);
    for (int op = 1; op < GOP_COUNT; op++) assert_true(seen_op[op] > 300);
    /* the same seed draws the same genotype */
    struct genotype_rng a = {7}, b = {7};
    struct genotype ga, gb;
    genotype_random(&ga, &a);
    genotype_random(&gb, &b);
    assert_memory_equal(&ga, &gb, sizeof ga);
}

static void mutation_changes_one_edge(void **state)
{
    struct genotype_rng r = {3};
    struct genotype g;
    genotype_random(&g, &r);
    for (int k = 0; k < 2000; k++) {
        struct genotype child = g;
        genotype_mutate(&child, &r);
        assert_true(valid(&child));
        int changed = 0;
        for (int i = 0; i < GENOTYPE_EDGES; i++) {
            changed += memcmp(&child.normal[i], &g.normal[i], sizeof g.normal[i]) != 0;
            changed += memcmp(&child.reduce[i], &g.reduce[i], sizeof g.reduce[i]) != 0;
        }
        assert_int_equal(changed, 1);
        char k1[256], k2[256];
        genotype_key(&g, k1, sizeof k1);
        genotype_key(&child, k2, sizeof k2);
        assert_string_not_equal(k1, k2);
        g = child;
    }
}

static int count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p++) n++;
    return n;
}

static void svg_diagram(void **state)
{
    cJSON *j = cJSON_Parse(DARTS_V2);
    struct genotype g;
    char err[256];
    assert_int_equal(genotype_from_json(j, &g, err, sizeof err), 0);
    cJSON_Delete(j);
    char *svg = genotype_svg(&g, "job <1> & \"best\"");
    assert_non_null(svg);
    assert_non_null(strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert_non_null(strstr(svg, "<title>job &lt;1&gt; &amp; &quot;best&quot;</title>"));
    /* 8 edges a cell, each a path with its op's name; 4 concat lines a cell */
    assert_int_equal(count(svg, "class=\"edge\""), 2 * GENOTYPE_EDGES);
    assert_int_equal(count(svg, "class=\"concat\""), 2 * GENOTYPE_NODES);
    assert_int_equal(count(svg, ">dil_conv_3x3<"), 1);
    assert_int_equal(count(svg, ">max_pool_3x3<"), 5);
    assert_int_equal(count(svg, "<svg"), 1);
    assert_int_equal(count(svg, "</svg>"), 1);
    assert_int_equal(count(svg, "<text"), count(svg, "</text>"));
    if (getenv("GENOTYPE_SVG_OUT")) {
        FILE *f = fopen(getenv("GENOTYPE_SVG_OUT"), "w");
        if (f) {
            fputs(svg, f);
            fclose(f);
        }
    }
    free(svg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_round_trip),
        cmocka_unit_test(malformed),
        cmocka_unit_test(random_draws_stay_in_the_space),
        cmocka_unit_test(mutation_changes_one_edge),
        cmocka_unit_test(svg_diagram),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
