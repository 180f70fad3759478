/*
 * lrfind.c - see lrfind.h. The record is three arrays of N doubles
 * allocated up front; suggestions are computed on demand from them (a
 * window copied out, so the record stays as reported).
 */
#include "nn/lrfind.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/svg.h"

struct lrfind {
    struct lrfind_config cfg;
    double *lrs, *losses, *smoothed;
    size_t n;             /* points recorded */
    double avg;           /* EMA numerator */
    double beta_pow;      /* beta^n */
    double best;          /* smallest smoothed so far */
    int ended, stopped_early;
};

static void set_err(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t err_size, const char *fmt, ...)
{
    if (!err || err_size == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

static const char *const method_names[] = {"valley", "steep", "minimum"};

const char *lrfind_method_name(int method)
{
    return method >= 0 && method <= LRFIND_MINIMUM ? method_names[method] : NULL;
}

int lrfind_method_parse(const char *name)
{
    for (int m = 0; name && m <= LRFIND_MINIMUM; m++)
        if (strcmp(name, method_names[m]) == 0) return m;
    return LRFIND_EARG;
}

void lrfind_config_init(struct lrfind_config *cfg)
{
    cfg->start_lr = 1e-7;
    cfg->end_lr = 10.0;
    cfg->iterations = 100;
    cfg->beta = 0.98;
    cfg->div_factor = 4.0;
    cfg->stop_div = 1;
    cfg->method = LRFIND_VALLEY;
}

int lrfind_new(const struct lrfind_config *cfg, struct lrfind **out, char *err, size_t err_size)
{
    struct lrfind *f = NULL;
    if (out) *out = NULL;
    if (!cfg || !out) {
        set_err(err, err_size, "NULL argument");
        return LRFIND_EARG;
    }
    if (!isfinite(cfg->start_lr) || !(cfg->start_lr > 0) || !isfinite(cfg->end_lr)
        || !(cfg->end_lr > cfg->start_lr)) {
        set_err(err, err_size, "need finite 0 < start_lr < end_lr, got %g and %g", cfg->start_lr,
                cfg->end_lr);
        return LRFIND_EARG;
    }
    if (cfg->iterations < LRFIND_MIN_ITERATIONS || cfg->iterations > LRFIND_MAX_ITERATIONS) {
        set_err(err, err_size, "iterations must be in %d..%d, got %d", LRFIND_MIN_ITERATIONS,
                LRFIND_MAX_ITERATIONS, cfg->iterations);
        return LRFIND_EARG;
    }
    if (!isfinite(cfg->beta) || cfg->beta < 0 || cfg->beta >= 1) {
        set_err(err, err_size, "beta must be in [0, 1), got %g", cfg->beta);
        return LRFIND_EARG;
    }
    if (!isfinite(cfg->div_factor) || !(cfg->div_factor > 1)) {
        set_err(err, err_size, "div_factor must be finite and > 1, got %g", cfg->div_factor);
        return LRFIND_EARG;
    }
    if (!lrfind_method_name(cfg->method)) {
        set_err(err, err_size, "unknown suggestion method %d", cfg->method);
        return LRFIND_EARG;
    }
    size_t n = (size_t)cfg->iterations;
    f = calloc(1, sizeof *f);
    if (!f) goto nomem;
    f->cfg = *cfg;
    f->lrs = malloc(n * sizeof *f->lrs);
    f->losses = malloc(n * sizeof *f->losses);
    f->smoothed = malloc(n * sizeof *f->smoothed);
    if (!f->lrs || !f->losses || !f->smoothed) goto nomem;
    f->beta_pow = 1.0;
    f->best = INFINITY;
    *out = f;
    return 0;
nomem:
    lrfind_free(f);
    set_err(err, err_size, "out of memory");
    return LRFIND_ENOMEM;
}

void lrfind_free(struct lrfind *f)
{
    if (!f) return;
    free(f->lrs);
    free(f->losses);
    free(f->smoothed);
    free(f);
}

int lrfind_from_record(const struct lrfind_config *cfg, const double *lrs, const double *losses,
                       const double *smoothed, size_t n, struct lrfind **out, char *err,
                       size_t err_size)
{
    if (out) *out = NULL;
    if (!lrs || !losses || !smoothed || !out || !cfg) {
        set_err(err, err_size, "NULL argument");
        return LRFIND_EARG;
    }
    if (n < 1 || n > (size_t)cfg->iterations) {
        set_err(err, err_size, "a record of %zu points for %d iterations", n, cfg->iterations);
        return LRFIND_EARG;
    }
    for (size_t i = 0; i < n; i++)
        if (!isfinite(lrs[i]) || !(lrs[i] > 0)) {
            set_err(err, err_size, "learning rate %zu is not a finite number > 0", i);
            return LRFIND_EARG;
        }
    struct lrfind *f;
    int rc = lrfind_new(cfg, &f, err, err_size);
    if (rc) return rc;
    memcpy(f->lrs, lrs, n * sizeof *lrs);
    memcpy(f->losses, losses, n * sizeof *losses);
    memcpy(f->smoothed, smoothed, n * sizeof *smoothed);
    f->n = n;
    for (size_t i = 0; i < n; i++)
        if (smoothed[i] < f->best) f->best = smoothed[i];
    f->ended = 1;
    f->stopped_early = n < (size_t)cfg->iterations;
    *out = f;
    return 0;
}

int lrfind_running(const struct lrfind *f) { return !f->ended; }
size_t lrfind_count(const struct lrfind *f) { return f->n; }
const double *lrfind_lrs(const struct lrfind *f) { return f->lrs; }
const double *lrfind_losses(const struct lrfind *f) { return f->losses; }
const double *lrfind_smoothed(const struct lrfind *f) { return f->smoothed; }
int lrfind_stopped_early(const struct lrfind *f) { return f->stopped_early; }

static double lr_at(const struct lrfind *f, size_t i)
{
    double pos = (double)i / (double)f->cfg.iterations;
    return f->cfg.start_lr * exp(pos * log(f->cfg.end_lr / f->cfg.start_lr));
}

double lrfind_lr(const struct lrfind *f)
{
    size_t i = f->ended && f->n > 0 ? f->n - 1 : f->n;
    return lr_at(f, i);
}

int lrfind_report(struct lrfind *f, double loss)
{
    if (f->ended) return LRFIND_EDONE;
    const double b = f->cfg.beta;
    size_t i = f->n;
    f->avg = b * f->avg + (1.0 - b) * loss;
    f->beta_pow *= b;
    double sm = f->avg / (1.0 - f->beta_pow);
    f->lrs[i] = lr_at(f, i);
    f->losses[i] = loss;
    f->smoothed[i] = sm;
    f->n = i + 1;
    if (sm < f->best) f->best = sm;
    if (f->cfg.stop_div && (!isfinite(sm) || sm > f->cfg.div_factor * f->best)) {
        f->ended = 1;
        f->stopped_early = f->n < (size_t)f->cfg.iterations;
    }
    /* without stop_div a non-finite loss still ends it: nothing after it
     * could be used */
    if (!isfinite(sm)) {
        f->ended = 1;
        f->stopped_early = f->n < (size_t)f->cfg.iterations;
    }
    if (f->n >= (size_t)f->cfg.iterations) f->ended = 1;
    return f->ended ? 0 : 1;
}

int lrfind_run(struct lrfind *f, lrfind_step_fn step, void *ctx)
{
    while (lrfind_running(f)) {
        double loss;
        if (step(ctx, lrfind_lr(f), &loss) != 0) return LRFIND_ESTEP;
        lrfind_report(f, loss);
    }
    return 0;
}

/* --- suggestions ------------------------------------------------------------------ */

/* The window [*lo, *hi) of recorded points the suggestions use. */
static int window(const struct lrfind *f, size_t *lo, size_t *hi)
{
    size_t a = (size_t)f->cfg.iterations / 10;
    size_t b = f->n > 5 ? f->n - 5 : 0;
    for (size_t i = a; i < b; i++)
        if (!isfinite(f->smoothed[i])) {
            b = i;
            break;
        }
    if (b < a + 2) {
        /* too short: the finite prefix of everything recorded */
        a = 0;
        for (b = 0; b < f->n && isfinite(f->smoothed[b]); b++) continue;
        if (b < 2) return LRFIND_ENODATA;
    }
    *lo = a;
    *hi = b;
    return 0;
}

/* fastai's valley on l[0..m): lds[i] = the longest strictly decreasing
 * subsequence ending at i, by patience sorting on -l (tails[k] is the
 * smallest last value of -l over increasing runs of length k+1). */
static int valley_index(const double *l, size_t m, size_t *idx)
{
    double *tails = malloc(m * sizeof *tails);
    if (!tails) return LRFIND_ENOMEM;
    size_t ntails = 0, best_len = 0, end = 0;
    for (size_t i = 0; i < m; i++) {
        double x = -l[i];
        size_t lo = 0, hi = ntails;   /* first tail >= x */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (tails[mid] < x) lo = mid + 1;
            else hi = mid;
        }
        tails[lo] = x;
        if (lo == ntails) ntails++;
        size_t len = lo + 1;
        if (len > best_len) best_len = len, end = i;
    }
    free(tails);
    long start = (long)end - (long)best_len;
    long sections = ((long)end - start);
    long k = start + (long)((double)sections / 3.0) + (long)((double)sections / 3.0 / 2.0);
    if (k < 0) k = 0;
    if (k > (long)m - 1) k = (long)m - 1;
    *idx = (size_t)k;
    return 0;
}

static size_t nearest_index(const struct lrfind *f, double lr)
{
    size_t best = 0;
    double bd = INFINITY, t = log(lr);
    for (size_t i = 0; i < f->n; i++) {
        double d = fabs(log(f->lrs[i]) - t);
        if (d < bd) bd = d, best = i;
    }
    return best;
}

int lrfind_suggest(const struct lrfind *f, int method, struct lrfind_suggestion *out)
{
    size_t lo, hi;
    if (!lrfind_method_name(method) || !out) return LRFIND_EARG;
    int rc = window(f, &lo, &hi);
    if (rc) return rc;
    const double *l = f->smoothed + lo, *x = f->lrs + lo;
    const size_t m = hi - lo;
    size_t k = 0;
    double lr;
    if (method == LRFIND_VALLEY) {
        if ((rc = valley_index(l, m, &k)) != 0) return rc;
        lr = x[k];
    } else if (method == LRFIND_STEEP) {
        double best = INFINITY;
        for (size_t i = 0; i + 1 < m; i++) {
            double g = (l[i + 1] - l[i]) / (log10(x[i + 1]) - log10(x[i]));
            if (g < best) best = g, k = i;
        }
        lr = x[k];
    } else {
        for (size_t i = 1; i < m; i++)
            if (l[i] < l[k]) k = i;
        lr = x[k] / 10.0;
    }
    out->method = method;
    out->lr = lr;
    out->index = nearest_index(f, lr);
    return 0;
}

/* --- JSON -------------------------------------------------------------------------- */

cJSON *lrfind_to_json(const struct lrfind *f)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    /* cJSON prints non-finite numbers as null */
    cJSON *lrs = cJSON_AddArrayToObject(o, "lrs");
    cJSON *losses = cJSON_AddArrayToObject(o, "losses");
    cJSON *sm = cJSON_AddArrayToObject(o, "smoothed");
    if (!lrs || !losses || !sm) goto fail;
    for (size_t i = 0; i < f->n; i++) {
        const double v[3] = {f->lrs[i], f->losses[i], f->smoothed[i]};
        cJSON *arr[3] = {lrs, losses, sm};
        for (int k = 0; k < 3; k++) {
            cJSON *num = isfinite(v[k]) ? cJSON_CreateNumber(v[k]) : cJSON_CreateNull();
            if (!num) goto fail;
            cJSON_AddItemToArray(arr[k], num);
        }
    }
    struct lrfind_suggestion s;
    cJSON *one = cJSON_AddObjectToObject(o, "suggestion");
    if (!one || !cJSON_AddStringToObject(one, "method", lrfind_method_name(f->cfg.method)))
        goto fail;
    if (lrfind_suggest(f, f->cfg.method, &s) == 0 ? !cJSON_AddNumberToObject(one, "lr", s.lr)
                                                    : !cJSON_AddNullToObject(one, "lr"))
        goto fail;
    cJSON *all = cJSON_AddObjectToObject(o, "suggestions");
    if (!all) goto fail;
    for (int m = 0; m <= LRFIND_MINIMUM; m++) {
        const char *name = lrfind_method_name(m);
        if (lrfind_suggest(f, m, &s) == 0 ? !cJSON_AddNumberToObject(all, name, s.lr)
                                          : !cJSON_AddNullToObject(all, name))
            goto fail;
    }
    if (!cJSON_AddBoolToObject(o, "stopped_early", f->stopped_early)) goto fail;
    if (!cJSON_AddNumberToObject(o, "iterations", (double)f->n)) goto fail;
    return o;
fail:
    cJSON_Delete(o);
    return NULL;
}

/* --- SVG chart ------------------------------------------------------------------------ */

/* A "nice" step (1, 2 or 5 times a power of ten) near range/target. */
static double nice_step(double range, int target)
{
    double raw = range / target;
    double p = pow(10.0, floor(log10(raw)));
    double r = raw / p;
    return (r < 1.5 ? 1 : r < 3.5 ? 2 : r < 7.5 ? 5 : 10) * p;
}

struct frame {
    double x0, x1, y0, y1;          /* plot area in pixels */
    double lx0, lx1, ly0, ly1;      /* data ranges: log10 lr, loss */
};

static double px(const struct frame *fr, double lr)
{
    return fr->x0 + (log10(lr) - fr->lx0) / (fr->lx1 - fr->lx0) * (fr->x1 - fr->x0);
}

static double py(const struct frame *fr, double loss)
{
    return fr->y1 - (loss - fr->ly0) / (fr->ly1 - fr->ly0) * (fr->y1 - fr->y0);
}

static void curve(struct svg *s, const struct frame *fr, const struct lrfind *f, const double *v,
                  const char *attrs)
{
    int pen = 0;
    svg_printf(s, "<path %s fill=\"none\" clip-path=\"url(#plot)\" d=\"", attrs);
    for (size_t i = 0; i < f->n; i++) {
        if (!isfinite(v[i])) {
            pen = 0;
            continue;
        }
        /* keep far-off points near the frame so the clip path sees a line */
        double y = py(fr, v[i]);
        if (y < fr->y0 - 1000) y = fr->y0 - 1000;
        if (y > fr->y1 + 1000) y = fr->y1 + 1000;
        svg_printf(s, "%s%.2f %.2f ", pen ? "L" : "M", px(fr, f->lrs[i]), y);
        pen = 1;
    }
    svg_printf(s, "\"/>\n");
}

int lrfind_svg(const struct lrfind *f, const struct lrfind_svg_opts *opts, char **out, size_t *len)
{
    struct svg s;
    struct frame fr;
    if (!out) return LRFIND_EARG;
    *out = NULL;
    int w = opts && opts->width ? opts->width : 640;
    int h = opts && opts->height ? opts->height : 400;
    w = w < 200 ? 200 : w > 4000 ? 4000 : w;
    h = h < 200 ? 200 : h > 4000 ? 4000 : h;
    const char *title = opts && opts->title ? opts->title : "Learning-rate range test";

    /* ranges: x over every recorded lr (decade aligned); y over the finite
     * smoothed losses except the last 5 steps, and the raw losses up to the
     * smoothed minimum (after it they are the divergence) */
    size_t finite = 0, upto = f->n > 10 ? f->n - 5 : f->n, at_min = 0;
    double ylo = INFINITY, yhi = -INFINITY;
    for (size_t i = 0; i < f->n; i++)
        if (isfinite(f->smoothed[i])) {
            finite++;
            if (i < upto) {
                if (f->smoothed[i] < ylo) ylo = f->smoothed[i], at_min = i;
                if (f->smoothed[i] > yhi) yhi = f->smoothed[i];
            }
        }
    if (finite < 2 || !(ylo <= yhi)) return LRFIND_ENODATA;
    for (size_t i = 0; i <= at_min; i++)
        if (isfinite(f->losses[i])) {
            if (f->losses[i] < ylo) ylo = f->losses[i];
            if (f->losses[i] > yhi) yhi = f->losses[i];
        }
    if (yhi - ylo < 1e-12 * (fabs(yhi) + 1)) ylo -= 0.5, yhi += 0.5;
    double pad = 0.1 * (yhi - ylo);
    fr = (struct frame){70, w - 20.0, 40, h - 55.0,
                        floor(log10(f->lrs[0]) + 1e-9), ceil(log10(f->lrs[f->n - 1]) - 1e-9),
                        ylo - pad, yhi + pad};
    if (fr.lx1 <= fr.lx0) fr.lx1 = fr.lx0 + 1;

    svg_begin(&s, w, h);
    svg_printf(&s, "<title>");
    svg_escape(&s, title);
    svg_printf(&s, "</title>\n<defs><clipPath id=\"plot\"><rect x=\"%.2f\" y=\"%.2f\" "
               "width=\"%.2f\" height=\"%.2f\"/></clipPath></defs>\n",
               fr.x0, fr.y0, fr.x1 - fr.x0, fr.y1 - fr.y0);
    svg_printf(&s, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", w, h);
    svg_printf(&s, "<g font-family=\"sans-serif\" font-size=\"12\" fill=\"#333\">\n");
    svg_printf(&s, "<text x=\"%.2f\" y=\"22\" font-size=\"14\" text-anchor=\"middle\">",
               (fr.x0 + fr.x1) / 2);
    svg_escape(&s, title);
    svg_printf(&s, "</text>\n");

    /* decade ticks and grid on x */
    for (double d = fr.lx0; d <= fr.lx1 + 1e-9; d += 1) {
        double x = fr.x0 + (d - fr.lx0) / (fr.lx1 - fr.lx0) * (fr.x1 - fr.x0);
        svg_printf(&s, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#ddd\"/>\n",
                   x, fr.y0, x, fr.y1);
        svg_printf(&s, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#333\"/>\n",
                   x, fr.y1, x, fr.y1 + 5);
        svg_printf(&s, "<text class=\"xtick\" x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">1e%d</text>\n",
                   x, fr.y1 + 18, (int)d);
    }
    /* y ticks at nice steps */
    double step = nice_step(fr.ly1 - fr.ly0, 5);
    for (double v = ceil(fr.ly0 / step) * step; v <= fr.ly1; v += step) {
        double y = py(&fr, v);
        double shown = fabs(v) < step * 1e-6 ? 0.0 : v;
        svg_printf(&s, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#eee\"/>\n",
                   fr.x0, y, fr.x1, y);
        svg_printf(&s, "<text class=\"ytick\" x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\">%.4g</text>\n",
                   fr.x0 - 6, y + 4, shown);
    }
    svg_printf(&s, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"none\" "
               "stroke=\"#333\"/>\n", fr.x0, fr.y0, fr.x1 - fr.x0, fr.y1 - fr.y0);
    svg_printf(&s, "<text x=\"%.2f\" y=\"%d\" text-anchor=\"middle\">learning rate (log scale)</text>\n",
               (fr.x0 + fr.x1) / 2, h - 12);
    svg_printf(&s, "<text x=\"16\" y=\"%.2f\" text-anchor=\"middle\" "
               "transform=\"rotate(-90 16 %.2f)\">loss</text>\n",
               (fr.y0 + fr.y1) / 2, (fr.y0 + fr.y1) / 2);

    curve(&s, &fr, f, f->losses, "class=\"raw\" stroke=\"#9ecae1\" stroke-width=\"1\"");
    curve(&s, &fr, f, f->smoothed, "class=\"smoothed\" stroke=\"#08519c\" stroke-width=\"2\"");

    /* legend */
    svg_printf(&s, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#9ecae1\"/>"
               "<text x=\"%.2f\" y=\"%.2f\">raw loss</text>\n",
               fr.x1 - 120, fr.y0 + 14, fr.x1 - 100, fr.y0 + 14, fr.x1 - 95, fr.y0 + 18);
    svg_printf(&s, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#08519c\" "
               "stroke-width=\"2\"/><text x=\"%.2f\" y=\"%.2f\">smoothed</text>\n",
               fr.x1 - 120, fr.y0 + 30, fr.x1 - 100, fr.y0 + 30, fr.x1 - 95, fr.y0 + 34);

    struct lrfind_suggestion sg;
    if (lrfind_suggest(f, f->cfg.method, &sg) == 0 && isfinite(f->smoothed[sg.index])) {
        double x = px(&fr, sg.lr), y = py(&fr, f->smoothed[sg.index]);
        if (x < fr.x0) x = fr.x0;
        if (x > fr.x1) x = fr.x1;
        if (y < fr.y0) y = fr.y0;
        if (y > fr.y1) y = fr.y1;
        svg_printf(&s, "<circle id=\"suggestion\" cx=\"%.2f\" cy=\"%.2f\" r=\"5\" fill=\"#e6550d\"/>\n",
                   x, y);
        int right = x < (fr.x0 + fr.x1) / 2;
        svg_printf(&s, "<text id=\"suggestion-label\" x=\"%.2f\" y=\"%.2f\" text-anchor=\"%s\" "
                   "fill=\"#e6550d\">%s: %.3g</text>\n",
                   right ? x + 8 : x - 8, y - 8, right ? "start" : "end",
                   lrfind_method_name(sg.method), sg.lr);
    }
    svg_printf(&s, "</g>\n");
    *out = svg_finish(&s, len);
    return *out ? 0 : LRFIND_ENOMEM;
}
