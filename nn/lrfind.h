/*
 * lrfind.h - the learning-rate range test (Leslie Smith, "Cyclical
 * Learning Rates for Training Neural Networks", 2017) the way fastai's
 * Learner.lr_find runs it: train for up to N steps while the learning rate
 * grows exponentially from start_lr to end_lr, record the loss, stop when
 * it diverges, and suggest a learning rate from the smoothed loss curve.
 *
 * Who uses it: a trainer (CNN or MLP) before the real training. The finder
 * does no training itself; the caller drives it:
 *
 *     save the weights and the optimizer state (optim_state_save)
 *     lrfind_new(&cfg, &f, err, sizeof err);
 *     while (lrfind_running(f)) {
 *         optim_set_lr(opt, lrfind_lr(f));
 *         loss = one training step on the next batch;   (forward, backward, optim_step)
 *         lrfind_report(f, loss);
 *     }
 *     restore the weights and the optimizer state (optim_state_load)
 *     lrfind_suggest(f, LRFIND_VALLEY, &s);  lrfind_to_json(f);  lrfind_svg(f, ...);
 *
 * The test changes the weights (at its end, usually ruins them): the
 * CALLER saves them before and restores them after, with the optimizer
 * state; lrfind never sees either. lrfind_run does the loop over a
 * callback for callers that prefer that.
 *
 * The schedule (fastai's SchedExp at pos = i/N): step i (0-based) runs at
 *     lr_i = start_lr * (end_lr / start_lr)^(i / N),
 * so the last step runs just below end_lr.
 *
 * Smoothing (fastai's AvgSmoothLoss, bias-corrected EMA): with avg_0 = 0,
 *     avg_{i+1} = beta*avg_i + (1-beta)*loss_i,
 *     smoothed_i = avg_{i+1} / (1 - beta^(i+1)).
 *
 * Stop rule: after recording step i, the test ends when i+1 == N, or
 * (stop_div) when smoothed_i > div_factor * (the smallest smoothed value
 * so far, this one included) or smoothed_i is not finite; that step stays
 * in the record ("stopped_early" is then true).
 *
 * Suggestions use the smoothed losses, cut as fastai cuts them: drop the
 * first N/10 steps and the last 5 recorded, then everything from the
 * first non-finite value on. If fewer than 2 points remain, all finite
 * recorded points from the start are used instead; with fewer than 2 of
 * those there is no suggestion (LRFIND_ENODATA). On that window (loss l,
 * lr x, m points):
 *  - valley (the default; fastai's `valley`): for each point the length
 *    lds[i] of the longest strictly decreasing subsequence of l ending at
 *    i (not necessarily contiguous: noise bumps inside a long downhill
 *    stretch do not cut it); end = the first index with the largest lds,
 *    start = end - lds[end] (fastai's arithmetic, one before the first
 *    point of that subsequence when it is contiguous); with
 *    len = end - start, the suggestion is x[start + floor(len/3) +
 *    floor(len/6)]: about half way down the longest valley, where the
 *    loss still falls fast, not at its bottom where it is about to blow
 *    up. One deliberate difference: when no point is below an earlier one
 *    (lds all 1) that index is -1, which Python wraps to the LAST point
 *    (the largest lr); we clamp it to the first. Computed in O(m log m)
 *    (fastai's loop is O(m^2)); on 296 random curves it picked the same
 *    point as a transcription of fastai's code.
 *  - steep (fastai's `steep`): the x[i] at which the slope
 *    (l[i+1] - l[i]) / (log10 x[i+1] - log10 x[i]) is most negative.
 *  - minimum (fastai's `minimum`): x at the smallest l, divided by 10.
 *
 * One finder is used by one thread; finders share nothing.
 */
#ifndef PODIUM_NN_LRFIND_H
#define PODIUM_NN_LRFIND_H

#include <stddef.h>

#include <cjson/cJSON.h>

enum lrfind_method {
    LRFIND_VALLEY = 0,
    LRFIND_STEEP = 1,
    LRFIND_MINIMUM = 2,
};

enum lrfind_status {
    LRFIND_OK = 0,
    LRFIND_EARG = -1,     /* bad configuration or argument */
    LRFIND_ENOMEM = -2,
    LRFIND_EDONE = -3,    /* a loss reported after the test ended */
    LRFIND_ENODATA = -4,  /* too few finite points for a suggestion */
    LRFIND_ESTEP = -5,    /* lrfind_run: the step callback failed */
};

#define LRFIND_MIN_ITERATIONS 6         /* as fastai */
#define LRFIND_MAX_ITERATIONS 100000

struct lrfind_config {
    double start_lr;      /* > 0, default 1e-7 */
    double end_lr;        /* > start_lr, default 10 */
    int iterations;       /* N in 6..100000, default 100 */
    double beta;          /* smoothing in [0, 1), default 0.98 */
    double div_factor;    /* > 1, default 4 */
    int stop_div;         /* stop on divergence, default 1 */
    int method;           /* enum lrfind_method for "suggestion", default valley */
};

/* The defaults above. */
void lrfind_config_init(struct lrfind_config *cfg);

struct lrfind;

/* 0 with *out, or LRFIND_EARG / LRFIND_ENOMEM with a message in err. */
int lrfind_new(const struct lrfind_config *cfg, struct lrfind **out, char *err, size_t err_size);
void lrfind_free(struct lrfind *f);   /* NULL is a no-op */

/* 1 while the caller should run another step, 0 once the test has ended. */
int lrfind_running(const struct lrfind *f);
/* The learning rate for the next step (the last one's once ended). */
double lrfind_lr(const struct lrfind *f);
/* Record the raw training loss of the step just run at lrfind_lr(f).
 * Returns 1 to go on, 0 when the test has just ended, LRFIND_EDONE when
 * it had already ended (nothing recorded). Any double is accepted; NaN
 * and infinities end the test. */
int lrfind_report(struct lrfind *f, double loss);

/* Callback form: step(ctx, lr, &loss) runs one training step at lr and
 * returns 0 (or non-zero to abort: lrfind_run returns LRFIND_ESTEP, what
 * was recorded stays). Returns 0 when the test ended normally. */
typedef int (*lrfind_step_fn)(void *ctx, double lr, double *loss);
int lrfind_run(struct lrfind *f, lrfind_step_fn step, void *ctx);

/* A finished finder holding a record made earlier (what lrfind_to_json
 * wrote: its lrs, losses and smoothed arrays, n points each), so that a
 * reader of the stored record can draw it (lrfind_svg) and suggest from
 * it. cfg must be the test's configuration (the suggestions' window
 * depends on its iterations); n in 1..cfg->iterations; the lrs finite and
 * > 0; the losses may be NaN (a JSON null). Nothing is recomputed: the
 * record is taken as given. 0, LRFIND_EARG or LRFIND_ENOMEM with err. */
int lrfind_from_record(const struct lrfind_config *cfg, const double *lrs, const double *losses,
                       const double *smoothed, size_t n, struct lrfind **out, char *err,
                       size_t err_size);

/* What was recorded: n points (one per reported step), read-only arrays
 * valid until the next report or lrfind_free. */
size_t lrfind_count(const struct lrfind *f);
const double *lrfind_lrs(const struct lrfind *f);
const double *lrfind_losses(const struct lrfind *f);
const double *lrfind_smoothed(const struct lrfind *f);
int lrfind_stopped_early(const struct lrfind *f);

struct lrfind_suggestion {
    int method;           /* enum lrfind_method */
    double lr;            /* the suggested learning rate */
    size_t index;         /* the recorded point nearest to lr on a log scale */
};

/* A suggestion by method from what was recorded so far (see above).
 * 0, LRFIND_ENODATA or LRFIND_EARG (unknown method). */
int lrfind_suggest(const struct lrfind *f, int method, struct lrfind_suggestion *out);

/* A static name: "valley", "steep", "minimum" (NULL for others), and the
 * method of a name (LRFIND_EARG when unknown). */
const char *lrfind_method_name(int method);
int lrfind_method_parse(const char *name);

/* The result as a new cJSON object (caller cJSON_Deletes), NULL when out
 * of memory:
 *   {"lrs": [...], "losses": [...], "smoothed": [...],
 *    "suggestion": {"method": "valley", "lr": x},
 *    "suggestions": {"valley": x, "steep": y, "minimum": z},
 *    "stopped_early": bool, "iterations": n}
 * An lr with no suggestion is null, and so is every non-finite number. */
cJSON *lrfind_to_json(const struct lrfind *f);

struct lrfind_svg_opts {
    int width, height;    /* 0 = 640 x 400; each clamped to 200..4000 */
    const char *title;    /* NULL = "Learning-rate range test"; escaped */
};

/* The chart as a standalone SVG 1.1 document (caller frees *out; *len its
 * length when len is not NULL): the learning rate on a log10 x axis with a
 * tick and label at every decade, the loss on the y axis, the raw losses
 * (thin, light) and the smoothed ones (thick), and the suggestion of the
 * configured method as a circle with id="suggestion" and a label with its
 * method and value. The y range covers the smoothed losses without the
 * last 5 steps (as fastai's plot skips them) and the raw losses up to the
 * smallest smoothed one, padded by 10%; what falls outside (the raw
 * divergence) is clipped. Non-finite points are left out. opts may be NULL.
 * 0, LRFIND_ENODATA (fewer than 2 finite points) or LRFIND_ENOMEM. */
int lrfind_svg(const struct lrfind *f, const struct lrfind_svg_opts *opts, char **out,
               size_t *len);

#endif
