/* test_lrfind.c - nn/lrfind: the exponential schedule, the bias-corrected
 * smoothing on hand-computed sequences, the stop rule (4x the minimum, not
 * finite), fastai's suggestions on synthetic curves with a known valley,
 * the JSON result, the SVG chart (well-formed XML, escaped title, decade
 * ticks, the suggestion marker), and a real run: a small MLP trained with
 * nn/optim's SGD, whose valley suggestion must land in the range where a
 * grid of constant learning rates actually trains well (see
 * real_mlp_valley_is_good). */
#include <ctype.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "nn/lrfind.h"
#include "nn/optim.h"
#include "trainers/rng.h"

static struct lrfind *finder(double start, double end, int n, double beta)
{
    struct lrfind_config c;
    lrfind_config_init(&c);
    c.start_lr = start, c.end_lr = end, c.iterations = n, c.beta = beta;
    struct lrfind *f;
    char err[128];
    if (lrfind_new(&c, &f, err, sizeof err) != 0) fail_msg("%s", err);
    return f;
}

static void schedule_is_exponential(void **state)
{
    struct lrfind_config c;
    lrfind_config_init(&c);
    assert_true(c.start_lr == 1e-7 && c.end_lr == 10 && c.iterations == 100 && c.beta == 0.98);
    assert_true(c.div_factor == 4 && c.stop_div && c.method == LRFIND_VALLEY);
    struct lrfind *f = finder(1e-7, 10, 100, 0.98);
    for (int i = 0; i < 100; i++) {
        double want = 1e-7 * pow(1e8, i / 100.0);   /* fastai: pos = i / N */
        assert_float_equal(lrfind_lr(f), want, want * 1e-12);
        assert_int_equal(lrfind_report(f, 1.0), i < 99 ? 1 : 0);
    }
    assert_float_equal(lrfind_lrs(f)[50], 1e-3, 1e-15);
    assert_false(lrfind_running(f));
    assert_false(lrfind_stopped_early(f));
    assert_int_equal(lrfind_count(f), 100);
    assert_int_equal(lrfind_report(f, 1.0), LRFIND_EDONE);
    assert_int_equal(lrfind_count(f), 100);
    lrfind_free(f);
    lrfind_free(NULL);
}

static void smoothing_by_hand(void **state)
{
    /* beta 0.5, losses 4, 2, 1:
     *   avg 0.5*0 + 0.5*4 = 2     smoothed 2 / (1 - 0.5)    = 4
     *   avg 0.5*2 + 0.5*2 = 2     smoothed 2 / (1 - 0.25)   = 8/3
     *   avg 0.5*2 + 0.5*1 = 1.5   smoothed 1.5 / (1 - 0.125) = 12/7 */
    struct lrfind *f = finder(1e-3, 1, 6, 0.5);
    lrfind_report(f, 4), lrfind_report(f, 2), lrfind_report(f, 1);
    const double *s = lrfind_smoothed(f);
    assert_float_equal(s[0], 4.0, 1e-12);
    assert_float_equal(s[1], 8.0 / 3, 1e-12);
    assert_float_equal(s[2], 12.0 / 7, 1e-12);
    assert_true(lrfind_losses(f)[1] == 2.0);
    lrfind_free(f);

    /* beta 0.98, losses 1, 2, 3:
     *   avg 0.02            smoothed 0.02 / 0.02         = 1
     *   avg 0.0196 + 0.04   smoothed 0.0596 / 0.0396     = 1.50505...
     *   avg 0.058408 + 0.06 smoothed 0.118408 / 0.058808 = 2.01347... */
    f = finder(1e-3, 1, 6, 0.98);
    lrfind_report(f, 1), lrfind_report(f, 2), lrfind_report(f, 3);
    s = lrfind_smoothed(f);
    assert_float_equal(s[0], 1.0, 1e-12);
    assert_float_equal(s[1], 0.0596 / 0.0396, 1e-12);
    assert_float_equal(s[2], 0.118408 / 0.058808, 1e-12);
    lrfind_free(f);
}

static void stop_rule(void **state)
{
    /* beta 0: smoothed = raw. The minimum is 1; 4 is not above 4x1, 4.5 is. */
    const double losses[] = {3, 2, 1, 2, 3, 4, 4.5, 1, 1};
    struct lrfind *f = finder(1e-4, 1, 20, 0.0);
    int i = 0;
    while (lrfind_running(f)) lrfind_report(f, losses[i++]);
    assert_int_equal(i, 7);
    assert_int_equal(lrfind_count(f), 7);
    assert_true(lrfind_stopped_early(f));
    /* the next lr stays the last one's once ended */
    assert_true(lrfind_lr(f) == lrfind_lrs(f)[6]);
    lrfind_free(f);

    /* without stop_div it runs on, except through a non-finite loss */
    struct lrfind_config c;
    lrfind_config_init(&c);
    c.iterations = 20, c.beta = 0, c.stop_div = 0;
    assert_int_equal(lrfind_new(&c, &f, NULL, 0), 0);
    for (i = 0; i < 9; i++) assert_int_equal(lrfind_report(f, losses[i]), 1);
    assert_int_equal(lrfind_report(f, NAN), 0);
    assert_true(lrfind_stopped_early(f));
    assert_int_equal(lrfind_count(f), 10);
    lrfind_free(f);

    /* a non-finite loss ends it (with smoothing, the EMA turns infinite) */
    f = finder(1e-7, 10, 100, 0.98);
    for (i = 0; i < 30; i++) lrfind_report(f, 2.0 - i * 0.01);
    assert_int_equal(lrfind_report(f, INFINITY), 0);
    assert_true(lrfind_stopped_early(f));
    assert_int_equal(lrfind_count(f), 31);
    /* the suggestions ignore it */
    struct lrfind_suggestion s;
    assert_int_equal(lrfind_suggest(f, LRFIND_MINIMUM, &s), 0);
    assert_true(isfinite(s.lr));
    lrfind_free(f);

    /* with smoothing, a jump to 10x takes a few steps to show */
    f = finder(1e-7, 10, 100, 0.98);
    for (i = 0; i < 40; i++) lrfind_report(f, 1.0);
    int extra = 0;
    while (lrfind_running(f)) lrfind_report(f, 10.0), extra++;
    /* after 40 ones avg = 1 - b^40; after k tens more
     * avg = b^k (1 - b^40) + 10 (1 - b^k), smoothed = avg / (1 - b^(40+k)):
     * k = 12 gives 3.98, k = 13 gives 4.16, the first above 4 */
    assert_int_equal(extra, 13);
    lrfind_free(f);
}

/* A synthetic test: the loss as a function of lr, plus deterministic noise:
 * flat at 2.3 below 1e-4, down a smooth S to 0.3 at 1e-1 (the valley, its
 * steepest point at 10^-2.5 = 3.2e-3), then up fast (divergence). */
static double synthetic_loss(double lr, struct pd_rng *r, double noise)
{
    double x = log10(lr);
    double l;
    if (x < -4) l = 2.3;
    else if (x < -1) {
        double t = (x + 4) / 3;              /* 0..1 */
        l = 2.3 - 2.0 * t * t * (3 - 2 * t); /* smoothstep */
    } else {
        l = 0.3 + 3.0 * pow(10, 2 * (x + 1)) - 3.0;
        if (l < 0.3) l = 0.3;
    }
    return l * (1 + noise * (2 * pd_rng_uniform(r) - 1));
}

static struct lrfind *run_synthetic(double noise, uint64_t seed, int method)
{
    struct lrfind_config c;
    lrfind_config_init(&c);
    c.method = method;
    struct lrfind *f;
    assert_int_equal(lrfind_new(&c, &f, NULL, 0), 0);
    struct pd_rng r;
    pd_rng_seed(&r, seed);
    while (lrfind_running(f)) lrfind_report(f, synthetic_loss(lrfind_lr(f), &r, noise));
    return f;
}

static void synthetic_valley(void **state)
{
    /* Where the suggestions must land, for several noise draws. The raw
     * valley runs from 1e-4 to 1e-1 in lr, 12.5 steps per decade, its
     * middle at 10^-2.5. The suggestions work on the smoothed curve, and
     * an EMA with beta 0.98 reaches back ~50 steps (4 decades), so the
     * smoothed curve falls late and slowly: from 2.3 at 3e-4 to its bottom
     * 1.5 at 0.1, just before the raw loss explodes. valley: the longest
     * decreasing run starts early (with noise, a few descending flat-region
     * points join it) and the pick is half way along it in steps:
     * [5e-4, 5e-3] (seen: 8.3e-4 .. 2.5e-3 over 12 seeds). steep: the
     * lagged curve is steepest where the raw one is already near its
     * bottom: [1e-2, 6e-2] (seen 2.3e-2 .. 4e-2). minimum: the smoothed
     * bottom at 0.1, / 10: [5e-3, 2e-2] (seen 1e-2). A valley picked at
     * the start of the run (<= 3e-4) or at its bottom (~0.1) fails. */
    for (uint64_t seed = 1; seed <= 12; seed++) {
        struct lrfind *f = run_synthetic(seed == 1 ? 0.0 : 0.05, seed, LRFIND_VALLEY);
        assert_true(lrfind_stopped_early(f));
        struct lrfind_suggestion v, st, mn;
        assert_int_equal(lrfind_suggest(f, LRFIND_VALLEY, &v), 0);
        assert_int_equal(lrfind_suggest(f, LRFIND_STEEP, &st), 0);
        assert_int_equal(lrfind_suggest(f, LRFIND_MINIMUM, &mn), 0);
        print_message("seed %d: %zu steps, valley %.3g steep %.3g minimum %.3g\n", (int)seed,
                      lrfind_count(f), v.lr, st.lr, mn.lr);
        if (!(v.lr >= 5e-4 && v.lr <= 5e-3)) fail_msg("valley %g out of [5e-4, 5e-3]", v.lr);
        if (!(st.lr >= 1e-2 && st.lr <= 6e-2)) fail_msg("steep %g out of [1e-2, 6e-2]", st.lr);
        if (!(mn.lr >= 5e-3 && mn.lr <= 2e-2)) fail_msg("minimum %g out of [5e-3, 2e-2]", mn.lr);
        assert_int_equal(v.method, LRFIND_VALLEY);
        /* index is the recorded point at that lr */
        assert_true(lrfind_lrs(f)[v.index] == v.lr);
        lrfind_free(f);
    }
}

static void valley_follows_fastai(void **state)
{
    /* Hand-made smoothed curve (beta 0: smoothed = raw) over 20 steps: the
     * window is steps 2..14 (N/10 = 2 dropped at the start, 5 at the
     * end). In the window: 5 5 | 4 6 3 2.5 2 1 0.5 | 0.6 0.7 0.8 0.9.
     * The longest strictly decreasing subsequence is 5 4 3 2.5 2 1 0.5
     * (7 long, the 6 skipped), ending at window index 8; start = 8 - 7 = 1,
     * len 7: index 1 + 2 + 1 = 4, the point with loss 3 (step 6). */
    const double l[20] = {9, 9, 5, 5, 4, 6, 3, 2.5, 2, 1, 0.5, 0.6, 0.7, 0.8, 0.9,
                          1, 1.1, 1.2, 1.3, 1.4};
    struct lrfind_config c;
    lrfind_config_init(&c);
    c.iterations = 20, c.beta = 0, c.stop_div = 0;
    struct lrfind *f;
    assert_int_equal(lrfind_new(&c, &f, NULL, 0), 0);
    for (int i = 0; i < 20; i++) lrfind_report(f, l[i]);
    struct lrfind_suggestion s;
    assert_int_equal(lrfind_suggest(f, LRFIND_VALLEY, &s), 0);
    assert_int_equal(s.index, 6);
    assert_true(s.lr == lrfind_lrs(f)[6]);
    /* steep: the biggest drop per log-lr step in the window is 4 -> ... the
     * steps are equal in log lr, so it is the largest single fall: 6 -> 3 at
     * step 5 */
    assert_int_equal(lrfind_suggest(f, LRFIND_STEEP, &s), 0);
    assert_int_equal(s.index, 5);
    /* minimum: 0.5 at step 10, lr / 10 */
    assert_int_equal(lrfind_suggest(f, LRFIND_MINIMUM, &s), 0);
    assert_float_equal(s.lr, lrfind_lrs(f)[10] / 10, 1e-18);
    assert_int_equal(lrfind_suggest(f, 9, &s), LRFIND_EARG);
    lrfind_free(f);

    /* too few points for the window: the finite prefix is used; with one
     * point there is nothing to suggest */
    f = finder(1e-7, 10, 100, 0.98);
    lrfind_report(f, 1.0);
    assert_int_equal(lrfind_suggest(f, LRFIND_VALLEY, &s), LRFIND_ENODATA);
    lrfind_report(f, 0.5);
    lrfind_report(f, 0.25);
    assert_int_equal(lrfind_suggest(f, LRFIND_VALLEY, &s), 0);
    assert_int_equal(lrfind_suggest(f, LRFIND_MINIMUM, &s), 0);
    assert_float_equal(s.lr, lrfind_lrs(f)[2] / 10, 1e-20);
    lrfind_free(f);
}

static void json_result(void **state)
{
    struct lrfind *f = run_synthetic(0.02, 3, LRFIND_STEEP);
    cJSON *j = lrfind_to_json(f);
    assert_non_null(j);
    size_t n = lrfind_count(f);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "lrs")), (int)n);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "losses")), (int)n);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "smoothed")), (int)n);
    assert_int_equal((int)cJSON_GetObjectItem(j, "iterations")->valuedouble, (int)n);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "stopped_early")));
    cJSON *sg = cJSON_GetObjectItem(j, "suggestion");
    assert_string_equal(cJSON_GetObjectItem(sg, "method")->valuestring, "steep");
    struct lrfind_suggestion s;
    assert_int_equal(lrfind_suggest(f, LRFIND_STEEP, &s), 0);
    assert_true(cJSON_GetObjectItem(sg, "lr")->valuedouble == s.lr);
    cJSON *all = cJSON_GetObjectItem(j, "suggestions");
    for (int m = 0; m <= LRFIND_MINIMUM; m++) {
        assert_int_equal(lrfind_suggest(f, m, &s), 0);
        assert_true(cJSON_GetObjectItem(all, lrfind_method_name(m))->valuedouble == s.lr);
    }
    assert_true(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "lrs"), 0)->valuedouble == 1e-7);
    cJSON_Delete(j);
    lrfind_free(f);

    /* a NaN loss is null; no data means null suggestions */
    f = finder(1e-7, 10, 100, 0.98);
    lrfind_report(f, NAN);
    j = lrfind_to_json(f);
    char *text = cJSON_PrintUnformatted(j);
    assert_non_null(strstr(text, "\"losses\":[null]"));
    assert_non_null(strstr(text, "\"suggestion\":{\"method\":\"valley\",\"lr\":null}"));
    assert_non_null(strstr(text, "\"valley\":null"));
    assert_non_null(strstr(text, "\"stopped_early\":true,\"iterations\":1"));
    free(text);
    cJSON_Delete(j);
    lrfind_free(f);

    assert_string_equal(lrfind_method_name(LRFIND_MINIMUM), "minimum");
    assert_null(lrfind_method_name(3));
    assert_int_equal(lrfind_method_parse("steep"), LRFIND_STEEP);
    assert_int_equal(lrfind_method_parse("slide"), LRFIND_EARG);
}

/* --- a minimal XML well-formedness check for the chart --------------------- */

/* Balanced, properly nested tags; quoted attributes without '<'; '&' only
 * in the five XML entities or numeric references; exactly one root, svg.
 * Returns NULL or what was wrong. */
static const char *xml_check(const char *p, char *root, size_t root_size)
{
    char stack[64][32];
    int depth = 0, roots = 0;
    while (*p) {
        if (*p == '&') {
            static const char *const ents[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#"};
            int ok = 0;
            for (int i = 0; i < 6; i++) ok |= strncmp(p, ents[i], strlen(ents[i])) == 0;
            if (!ok) return "bare &";
            p++;
            continue;
        }
        if (*p != '<') {
            if (*p == '>') return "bare >";
            p++;
            continue;
        }
        if (strncmp(p, "<?", 2) == 0) {
            if (depth || roots) return "processing instruction inside the document";
            const char *e = strstr(p, "?>");
            if (!e) return "unterminated <?";
            p = e + 2;
            continue;
        }
        if (strncmp(p, "<!--", 4) == 0) {
            const char *e = strstr(p, "-->");
            if (!e) return "unterminated comment";
            p = e + 3;
            continue;
        }
        int closing = p[1] == '/';
        p += closing ? 2 : 1;
        char name[32];
        size_t n = 0;
        while (isalnum((unsigned char)*p) || *p == '-' || *p == ':' || *p == '_') {
            if (n + 1 >= sizeof name) return "name too long";
            name[n++] = *p++;
        }
        name[n] = '\0';
        if (n == 0) return "empty tag name";
        int self = 0;
        while (*p && *p != '>') {
            if (*p == '"') {
                const char *e = strchr(p + 1, '"');
                if (!e) return "unterminated attribute";
                if (memchr(p + 1, '<', (size_t)(e - p - 1))) return "< in attribute";
                p = e + 1;
                continue;
            }
            if (*p == '<' || *p == '\'') return "stray character in tag";
            if (*p == '/' && p[1] == '>') self = 1;
            p++;
        }
        if (!*p) return "unterminated tag";
        p++;
        if (closing) {
            if (depth == 0 || strcmp(stack[depth - 1], name) != 0) return "mismatched closing tag";
            depth--;
        } else {
            if (depth == 0) {
                if (roots++) return "two root elements";
                snprintf(root, root_size, "%s", name);
            }
            if (!self) {
                if (depth == 64) return "too deep";
                snprintf(stack[depth++], sizeof stack[0], "%s", name);
            }
        }
    }
    return depth ? "unclosed element" : roots ? NULL : "no root";
}

static void svg_chart(void **state)
{
    /* the checker itself catches what it should */
    char root[32];
    assert_null(xml_check("<a><b/><c x=\"1\">t &amp; u</c></a>", root, sizeof root));
    assert_non_null(xml_check("<a><b></a>", root, sizeof root));
    assert_non_null(xml_check("<a>x & y</a>", root, sizeof root));
    assert_non_null(xml_check("<a></a><b/>", root, sizeof root));

    struct lrfind *f = run_synthetic(0.05, 2, LRFIND_VALLEY);
    char *svg = NULL;
    size_t len = 0;
    struct lrfind_svg_opts o = {0, 0, "LR <find> & \"friends\"\x01 \xc3\xa9t\xc3\xa9"};
    assert_int_equal(lrfind_svg(f, &o, &svg, &len), 0);
    assert_int_equal(strlen(svg), len);
    const char *why = xml_check(svg, root, sizeof root);
    if (why) fail_msg("SVG not well-formed: %s\n%s", why, svg);
    assert_string_equal(root, "svg");
    assert_non_null(strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" "
                                "width=\"640\" height=\"400\" viewBox=\"0 0 640 400\">"));
    assert_non_null(strstr(svg, "LR &lt;find&gt; &amp; &quot;friends&quot; \xc3\xa9t\xc3\xa9"));
    assert_null(strchr(svg, '\x01'));
    /* a decade tick for every power of ten from 1e-7 up to the last lr */
    char tick[32];
    int last = (int)ceil(log10(lrfind_lrs(f)[lrfind_count(f) - 1]));
    for (int d = -7; d <= last; d++) {
        snprintf(tick, sizeof tick, ">1e%d</text>", d);
        if (!strstr(svg, tick)) fail_msg("no tick %s", tick);
    }
    snprintf(tick, sizeof tick, ">1e%d</text>", last + 1);
    assert_null(strstr(svg, tick));
    /* the marker and its label, with the valley value */
    struct lrfind_suggestion s;
    assert_int_equal(lrfind_suggest(f, LRFIND_VALLEY, &s), 0);
    assert_non_null(strstr(svg, "<circle id=\"suggestion\""));
    char label[64];
    snprintf(label, sizeof label, "valley: %.3g</text>", s.lr);
    assert_non_null(strstr(svg, label));
    assert_non_null(strstr(svg, "class=\"raw\""));
    assert_non_null(strstr(svg, "class=\"smoothed\""));
    free(svg);

    /* a title that is not UTF-8 is made safe */
    o.title = "bad \xff\xfe <x>";
    o.width = 50, o.height = 100000;   /* clamped */
    assert_int_equal(lrfind_svg(f, &o, &svg, NULL), 0);
    assert_null(xml_check(svg, root, sizeof root));
    assert_non_null(strstr(svg, "bad ?? &lt;x&gt;"));
    assert_non_null(strstr(svg, "width=\"200\" height=\"4000\""));
    free(svg);
    lrfind_free(f);

    /* nothing to draw */
    f = finder(1e-7, 10, 100, 0.98);
    lrfind_report(f, 1.0);
    assert_int_equal(lrfind_svg(f, NULL, &svg, NULL), LRFIND_ENODATA);
    assert_null(svg);
    lrfind_free(f);
}

static void bad_configs_refused(void **state)
{
    struct lrfind_config c;
    struct lrfind *f = (struct lrfind *)1;
    char err[128];
    lrfind_config_init(&c);
    c.iterations = 5;
    assert_int_equal(lrfind_new(&c, &f, err, sizeof err), LRFIND_EARG);
    assert_null(f);
    assert_non_null(strstr(err, "iterations"));
    c.iterations = LRFIND_MAX_ITERATIONS + 1;
    assert_int_equal(lrfind_new(&c, &f, err, sizeof err), LRFIND_EARG);
    lrfind_config_init(&c);
    c.end_lr = c.start_lr;
    assert_int_equal(lrfind_new(&c, &f, err, sizeof err), LRFIND_EARG);
    assert_non_null(strstr(err, "start_lr"));
    c.start_lr = 0;
    assert_int_equal(lrfind_new(&c, &f, err, sizeof err), LRFIND_EARG);
    lrfind_config_init(&c);
    c.beta = 1;
    assert_int_equal(lrfind_new(&c, &f, err, sizeof err), LRFIND_EARG);
    lrfind_config_init(&c);
    c.div_factor = 1;
    assert_int_equal(lrfind_new(&c, &f, err, sizeof err), LRFIND_EARG);
    lrfind_config_init(&c);
    c.method = 3;
    assert_int_equal(lrfind_new(&c, &f, err, sizeof err), LRFIND_EARG);
    assert_int_equal(lrfind_new(NULL, &f, err, sizeof err), LRFIND_EARG);
}

/* --- the real problem: a 2-16-3 ReLU MLP on three Gaussian blobs ------------ */
enum { ND = 360, NF = 2, NH = 16, NK = 3, BATCH = 24 };
enum { NW1 = NF * NH, NB1 = NH, NW2 = NH * NK, NB2 = NK, NP = NW1 + NB1 + NW2 + NB2 };

struct problem {
    float x[ND][NF];
    int y[ND];
    size_t order[ND];
    size_t cursor;
    struct pd_rng rng;
};

static void problem_init(struct problem *p)
{
    struct pd_rng r;
    pd_rng_seed(&r, 2024);
    for (int i = 0; i < ND; i++) {
        int k = i % NK;
        double a = 2 * M_PI * k / NK;
        p->y[i] = k;
        p->x[i][0] = (float)(1.5 * cos(a) + pd_rng_normal(&r));
        p->x[i][1] = (float)(1.5 * sin(a) + pd_rng_normal(&r));
        p->order[i] = (size_t)i;
    }
    p->cursor = ND;
    pd_rng_seed(&p->rng, 7);
}

/* torch.nn.Linear's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
static void model_init(float *w, uint64_t seed)
{
    struct pd_rng r;
    pd_rng_seed(&r, seed);
    for (int i = 0; i < NW1 + NB1; i++) w[i] = (float)((2 * pd_rng_uniform(&r) - 1) / sqrt(NF));
    for (int i = NW1 + NB1; i < NP; i++) w[i] = (float)((2 * pd_rng_uniform(&r) - 1) / sqrt(NH));
}

/* Mean cross-entropy over rows idx[0..n) and (if g) its gradient. */
static double loss_grad(const float *w, const struct problem *p, const size_t *idx, size_t n,
                        float *g)
{
    const float *w1 = w, *b1 = w + NW1, *w2 = b1 + NB1, *b2 = w2 + NW2;
    double loss = 0;
    if (g) memset(g, 0, NP * sizeof *g);
    for (size_t s = 0; s < n; s++) {
        const float *x = p->x[idx[s]];
        float h[NH], z[NK], pr[NK];
        for (int j = 0; j < NH; j++) {
            float a = b1[j];
            for (int f = 0; f < NF; f++) a += x[f] * w1[f * NH + j];
            h[j] = a > 0 ? a : 0;
        }
        float zmax = -INFINITY;
        for (int k = 0; k < NK; k++) {
            float a = b2[k];
            for (int j = 0; j < NH; j++) a += h[j] * w2[j * NK + k];
            z[k] = a;
            if (a > zmax) zmax = a;
        }
        double se = 0;
        for (int k = 0; k < NK; k++) se += exp((double)z[k] - zmax);
        for (int k = 0; k < NK; k++) pr[k] = (float)(exp((double)z[k] - zmax) / se);
        loss += log(se) + zmax - z[p->y[idx[s]]];
        if (!g) continue;
        float *g1 = g, *gb1 = g + NW1, *g2 = gb1 + NB1, *gb2 = g2 + NW2;
        float dz[NK], dh[NH];
        for (int k = 0; k < NK; k++) dz[k] = (pr[k] - (k == p->y[idx[s]])) / (float)n;
        for (int j = 0; j < NH; j++) {
            float a = 0;
            for (int k = 0; k < NK; k++) {
                g2[j * NK + k] += h[j] * dz[k];
                a += w2[j * NK + k] * dz[k];
            }
            dh[j] = h[j] > 0 ? a : 0;
        }
        for (int k = 0; k < NK; k++) gb2[k] += dz[k];
        for (int j = 0; j < NH; j++) {
            gb1[j] += dh[j];
            for (int f = 0; f < NF; f++) g1[f * NH + j] += x[f] * dh[j];
        }
    }
    return loss / (double)n;
}

/* The next minibatch: a fresh shuffle every epoch. */
static const size_t *next_batch(struct problem *p)
{
    if (p->cursor + BATCH > ND) {
        for (size_t i = ND - 1; i > 0; i--) {
            size_t j = (size_t)pd_rng_below(&p->rng, i + 1);
            size_t t = p->order[i];
            p->order[i] = p->order[j];
            p->order[j] = t;
        }
        p->cursor = 0;
    }
    const size_t *b = p->order + p->cursor;
    p->cursor += BATCH;
    return b;
}

static double full_loss(const float *w, const struct problem *p)
{
    size_t all[ND];
    for (size_t i = 0; i < ND; i++) all[i] = i;
    return loss_grad(w, p, all, ND, NULL);
}

/* Train from w0 for `epochs` at a constant lr with SGD momentum 0.9; the
 * full-data loss at the end (a diverged run gives a huge or NaN loss). */
static double train_at(const float *w0, double lr, int epochs)
{
    static struct problem p;
    float w[NP], g[NP];
    problem_init(&p);
    memcpy(w, w0, sizeof w);
    struct optim_group grp = {w, g, NP, 0};
    struct optim_config c;
    optim_config_init(&c, OPTIM_SGD);
    c.lr = lr, c.momentum = 0.9;
    struct optim *o;
    if (optim_new(&c, &grp, 1, &o, NULL, 0) != 0) return NAN;
    for (int it = 0; it < epochs * (ND / BATCH); it++) {
        loss_grad(w, &p, next_batch(&p), BATCH, g);
        optim_step(o);
    }
    optim_free(o);
    return full_loss(w, &p);
}

struct finder_ctx {
    struct problem *p;
    struct optim *o;
    float *w, *g;
};

static int finder_step(void *ctx, double lr, double *loss)
{
    struct finder_ctx *c = ctx;
    if (optim_set_lr(c->o, lr) != 0) return -1;
    *loss = loss_grad(c->w, c->p, next_batch(c->p), BATCH, c->g);
    optim_step(c->o);
    return 0;
}

/* The LR finder on the MLP from weights w0 (SGD, momentum 0.9, batches of
 * 24, the defaults: 1e-7 to 10 over 100 steps); the valley suggestion.
 * Saves and restores the weights and the optimizer state around the test,
 * and checks that training afterwards is exactly training from w0. */
static double find_lr(const float *w0, struct lrfind **fout)
{
    static struct problem p;
    float w[NP], g[NP], saved_w[NP];
    problem_init(&p);
    memcpy(w, w0, sizeof w);
    struct optim_group grp = {w, g, NP, 0};
    struct optim_config c;
    optim_config_init(&c, OPTIM_SGD);
    c.lr = 0.05, c.momentum = 0.9;
    struct optim *o;
    assert_int_equal(optim_new(&c, &grp, 1, &o, NULL, 0), 0);

    size_t nb = optim_state_bytes(o);
    unsigned char *saved_state = malloc(nb);
    assert_non_null(saved_state);
    memcpy(saved_w, w, sizeof w);
    assert_int_equal(optim_state_save(o, saved_state, nb), 0);

    struct lrfind *f = finder(1e-7, 10, 100, 0.98);
    struct finder_ctx ctx = {&p, o, w, g};
    assert_int_equal(lrfind_run(f, finder_step, &ctx), 0);

    memcpy(w, saved_w, sizeof w);
    assert_int_equal(optim_state_load(o, saved_state, nb, NULL, 0), 0);
    assert_true(optim_lr(o) == 0.05);
    assert_int_equal(optim_steps(o), 0);
    free(saved_state);

    /* restored: 2 epochs from here equal 2 epochs from scratch */
    problem_init(&p);
    for (int it = 0; it < 2 * (ND / BATCH); it++) {
        loss_grad(w, &p, next_batch(&p), BATCH, g);
        optim_step(o);
    }
    optim_free(o);
    float fresh[NP];
    memcpy(fresh, w0, sizeof fresh);
    problem_init(&p);
    grp.w = fresh;
    assert_int_equal(optim_new(&c, &grp, 1, &o, NULL, 0), 0);
    for (int it = 0; it < 2 * (ND / BATCH); it++) {
        loss_grad(fresh, &p, next_batch(&p), BATCH, g);
        optim_step(o);
    }
    optim_free(o);
    assert_memory_equal(w, fresh, sizeof w);

    struct lrfind_suggestion s;
    assert_int_equal(lrfind_suggest(f, LRFIND_VALLEY, &s), 0);
    *fout = f;
    return s.lr;
}

static void backprop_is_right(void **state)
{
    /* the test's model must be right for the rest to mean anything:
     * central differences on every parameter */
    static struct problem p;
    problem_init(&p);
    float w[NP], g[NP];
    model_init(w, 11);
    const size_t *b = next_batch(&p);
    loss_grad(w, &p, b, BATCH, g);
    for (int i = 0; i < NP; i++) {
        float keep = w[i];
        w[i] = keep + 1e-3f;
        double up = loss_grad(w, &p, b, BATCH, NULL);
        w[i] = keep - 1e-3f;
        double down = loss_grad(w, &p, b, BATCH, NULL);
        w[i] = keep;
        double fd = (up - down) / 2e-3;
        if (fabs(fd - g[i]) > 2e-3 + 0.02 * fabs(fd)) fail_msg("param %d: %g vs %g", i, g[i], fd);
    }
}

/* The known-good range, and how it was found. With the data and model
 * above (360 points of three overlapping Gaussian blobs, a 2-16-3 ReLU
 * MLP, SGD momentum 0.9, batches of 24), we trained from each of the init
 * seeds 1, 2, 3 at constant learning rates 10^(-6 + k/4), k = 0..26, for
 * 10 epochs (the train_at below) and looked at the full-data loss. The
 * best was 0.398 / 0.402 / 0.402 (at 3.2e-2, 5.6e-2, 3.2e-2); the lrs
 * within 3% of the best were exactly 1e-2 .. 1e-1 for every seed
 * (5.6e-3 was 3.4-5.5% worse, 1.78e-1 4.7-10.5% worse; below 1e-3 the
 * loss had not come down from ~0.6-1.0, above 0.3 training was unstable or
 * diverged). So the valley suggestion must lie in [1e-2, 1e-1]; fastai's
 * valley gave 3.3e-2, 2.8e-2 and 1.9e-2 for the three seeds. A smaller
 * version of that grid also runs here, for seed 1, to confirm the range
 * holds for this build and that training at the suggestion is as good. */
static void real_mlp_valley_is_good(void **state)
{
    for (uint64_t seed = 1; seed <= 3; seed++) {
        float w0[NP];
        model_init(w0, seed);
        struct lrfind *f;
        double lr = find_lr(w0, &f);
        print_message("init seed %d: valley %.3g after %zu steps (stopped early: %d)\n",
                      (int)seed, lr, lrfind_count(f), lrfind_stopped_early(f));
        if (!(lr >= 1e-2 && lr <= 1e-1)) fail_msg("seed %d: valley %g out of [1e-2, 1e-1]", (int)seed, lr);
        if (seed == 1) {
            /* the chart of a real run, left in the suite's scratch folder
             * for a person to look at (the SVG checks are in svg_chart) */
            const char *tmp = getenv("PODIUM_TEST_TMP");
            char *svg;
            assert_int_equal(lrfind_svg(f, NULL, &svg, NULL), 0);
            if (tmp) {
                char path[512];
                snprintf(path, sizeof path, "%s/lrfind_mlp.svg", tmp);
                FILE *fp = fopen(path, "w");
                if (fp) fputs(svg, fp), fclose(fp);
            }
            free(svg);
        }
        lrfind_free(f);

        if (seed != 1) continue;
        /* the grid, on half-decades: the best 10-epoch loss, and the loss
         * at the suggestion must be within 3% of it */
        double best = INFINITY, best_lr = 0;
        for (int k = 0; k <= 12; k++) {
            double g_lr = pow(10, -5 + k * 0.5);
            double l = train_at(w0, g_lr, 10);
            if (l < best) best = l, best_lr = g_lr;
        }
        double at = train_at(w0, lr, 10);
        print_message("grid best %.4f at %.3g; at the valley %.4f\n", best, best_lr, at);
        assert_true(best_lr >= 1e-2 && best_lr <= 1e-1);
        assert_true(at <= best * 1.03);
        /* and it matters: 100x smaller is clearly worse */
        assert_true(train_at(w0, lr / 100, 10) > best * 1.3);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(schedule_is_exponential),
        cmocka_unit_test(smoothing_by_hand),
        cmocka_unit_test(stop_rule),
        cmocka_unit_test(synthetic_valley),
        cmocka_unit_test(valley_follows_fastai),
        cmocka_unit_test(json_result),
        cmocka_unit_test(svg_chart),
        cmocka_unit_test(bad_configs_refused),
        cmocka_unit_test(backprop_is_right),
        cmocka_unit_test(real_mlp_valley_is_good),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
