/*
 * lrtest.h - podium-train's learning-rate range-test mode: a spec with an
 * "lr_find" member runs the range test (nn/lrfind.h) instead of cross
 * validation, and its result event carries the curve and the suggestion
 * instead of scores; no model file is written.
 *
 * The spec member (every key optional):
 *   "lr_find": {"start": 1e-7, "end": 10, "iterations": 100,
 *               "suggestion": "valley" | "steep" | "minimum"}
 *   start       a number > 0                                       1e-7
 *   end         a number > start, at most 1e6                        10
 *   iterations  an integer from 6 to 100000                         100
 *   suggestion  which suggestion the result leads with          "valley"
 * (the API narrows iterations to 10..1000).
 *
 * The run: the data loads as for training (CSV or images) and is
 * preprocessed as the final fit would preprocess it, on every row with a
 * target; then the family's lr_find (trainers/family.h) trains from its
 * usual initialization with its own optimizer and batches while the rate
 * grows, and throws those weights away. Families without lr_find are a
 * bad_spec naming model.family.
 *
 * The result event:
 *   {"event": "result", "mode": "lr_find", "task", "family", "params",
 *    "metrics": {}, "score": null, "n_rows", "n_features", "classes",
 *    "details": {"lr_find": {lrs, losses, smoothed, suggestion,
 *                suggestions, stopped_early, iterations (points recorded),
 *                "min_loss" (the smallest smoothed loss; null if none),
 *                "config": {start, end, iterations, suggestion}}},
 *    "fit_seconds", "threads", "device": "cpu",
 *    "artifact": null, "oof_path": null}
 * and the family reports each step as an iteration event with metric
 * "lr_find_loss".
 *
 * Single-threaded apart from what the family starts; no globals.
 */
#ifndef PODIUM_TRAINERS_LRTEST_H
#define PODIUM_TRAINERS_LRTEST_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "nn/lrfind.h"
#include "trainers/family.h"
#include "trainers/schema.h"

#define LRTEST_MAX_END 1e6

/* Read a spec's lr_find member into cfg (defaults for what it leaves
 * out). 0, or -1 with the member at fault in field ("lr_find.start") and
 * a message that names it. */
int lrtest_config_parse(const cJSON *it, struct lrfind_config *cfg, char *field, size_t field_len,
                        char *msg, size_t msg_len);

/* The loaded data, as the driver holds it. */
struct lrtest_input {
    const struct pd_family *family;
    const void *params;                 /* parsed by family->params_parse */
    const struct pd_task *task;
    const struct schema *schema;
    const struct schema_frame *frame;
    const size_t *rows;                 /* frame rows with a target */
    const double *y;                    /* their targets */
    size_t n;
    int threads;
    uint64_t seed;
    const volatile sig_atomic_t *cancel;
    void (*progress)(void *ctx, const struct pd_progress *p);   /* may be NULL */
    void *progress_ctx;
    const char *device;                 /* the spec's "device" (NULL: cpu) */
};

/* Run the test. 0 with *result (the result event above, without the
 * members only the driver knows, the image facts; the caller
 * deletes it), or a PD_* code (PD_EPARAM: the family has no finder or
 * rejects cfg; PD_EDATA: no usable feature) with a message in err. */
int lrtest_run(const struct lrtest_input *in, const struct lrfind_config *cfg, cJSON **result,
               char *err, size_t errlen);

#endif
