/*
 * family.h - the contract every model family in podium-train implements.
 *
 * A family (linear, rf, extratrees, gbm, knn, nb, mlp, cnn, darts) is a table of
 * functions over opaque parameter and model objects, as ggml does for its
 * backends: the trainer's driver (spec parsing, preprocessing, cross
 * validation, result events) never looks inside a family.
 *
 * Data reaching a family is already preprocessed: a dense row-major float
 * matrix (NaN marks a missing value; only families that declare
 * handles_missing ever see one), and a double target per row. For
 * classification the target holds the class index 0..n_classes-1.
 *
 * Ownership: params_parse returns params the caller frees with
 * params_free; fit returns a model the caller frees with model_free. Both
 * frees accept NULL. Everything runs on the caller's thread; a family may
 * start up to opts->threads worker threads inside fit/predict and joins
 * them before returning.
 */
#ifndef PODIUM_TRAINERS_FAMILY_H
#define PODIUM_TRAINERS_FAMILY_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "trainers/buf.h"
#include "trainers/rng.h"

enum pd_task_kind {
    PD_TASK_CLASSIFICATION = 0,
    PD_TASK_REGRESSION = 1,
};

/* Return codes shared by all families. */
enum pd_status {
    PD_OK = 0,
    PD_EPARAM = -1,     /* a bad parameter value: the message names it */
    PD_EDATA = -2,      /* data the family cannot fit (e.g. one class) */
    PD_ENOMEM = -3,
    PD_ECANCELLED = -4, /* opts->cancel became non-zero */
    PD_EFORMAT = -5,    /* a saved model that is truncated or not ours */
    PD_EINTERNAL = -6,
};

struct pd_data {
    size_t n;          /* rows */
    size_t d;          /* features */
    const float *x;    /* n*d, row-major, NaN = missing */
    const double *y;   /* n targets (class index for classification) */
    const double *w;   /* optional per-row weights, NULL = all 1 */
    /* Optional, d entries: 0 = numeric feature; k > 0 = categorical feature
     * holding codes 0..k-1 (NaN = missing). NULL = all numeric. Only
     * families with native_categorical set are given categorical codes;
     * others receive one-hot columns and levels == NULL. */
    const int *levels;
};

struct pd_task {
    enum pd_task_kind kind;
    int n_classes;     /* >= 2 for classification, 0 for regression */
};

/* One progress report from inside fit, e.g. a boosting round or an epoch. */
struct pd_progress {
    int iteration;
    int total;         /* planned iterations, 0 if unknown */
    const char *metric;/* name of value, e.g. "valid_logloss"; may be NULL */
    double value;
};

struct lrfind_config;   /* nn/lrfind.h */

struct pd_fit_opts {
    int threads;                     /* >= 1 */
    uint64_t seed;
    const volatile sig_atomic_t *cancel; /* may be NULL; non-zero: stop soon */
    void (*progress)(void *ctx, const struct pd_progress *p); /* may be NULL */
    void *progress_ctx;
    /* Image data (the driver's spec kind "images"): every row of x is one
     * image of image_channels x image_height x image_width floats in
     * [0, 1], CHW (d equals their product). All 0 for tables. Families
     * that need the shape (cnn, darts) refuse rows without it. */
    int image_channels, image_height, image_width;
    /* Where a CNN family (cnn, darts) runs: nn/device.h's "cpu", "cuda",
     * "cuda:N" or "auto", checked by the driver; NULL means "cpu". Other
     * families ignore it. */
    const char *device;
};

struct pd_family {
    const char *name;                /* "gbm", "rf", ... */
    int handles_missing;             /* 1: x may hold NaN (gbm) */
    int needs_scaling;               /* 1: the driver standardizes features */
    int native_categorical;          /* 1: wants codes + levels, not one-hot */
    int supports_classification;
    int supports_regression;

    /* Validate params (NULL or a JSON object) against the task, filling in
     * defaults. An unknown key or a value out of range is PD_EPARAM with a
     * message naming the parameter, e.g. "max_depth: must be >= 1, got 0".
     * Never clamp silently. */
    int (*params_parse)(const cJSON *params, const struct pd_task *task,
                        void **out, char *err, size_t errlen);
    /* The effective parameters (defaults filled in) as a new JSON object. */
    cJSON *(*params_json)(const void *params);
    void (*params_free)(void *params);

    /* Train on `train`. `valid` may be NULL; families with early stopping
     * use it when given. */
    int (*fit)(const void *params, const struct pd_task *task,
               const struct pd_data *train, const struct pd_data *valid,
               const struct pd_fit_opts *opts, void **out_model,
               char *err, size_t errlen);

    /* Predict n rows of x (n*d row-major). For classification `out` gets
     * n*n_classes probabilities (row-major, each row sums to 1); for
     * regression n values. */
    int (*predict)(const void *model, const float *x, size_t n, size_t d,
                   int threads, double *out);

    /* Serialize into / restore from the model file's weights section. */
    int (*save)(const void *model, struct pd_buf *out);
    int (*load)(struct pd_reader *in, void **out_model, char *err,
                size_t errlen);
    void (*model_free)(void *model);

    /* What a model takes and gives: *inputs features per row, *outputs
     * values per row (n_classes for classification, 1 for regression).
     * Lets a reader reject a model file whose weights disagree with its
     * header before predict writes past a buffer sized from the header.
     * Optional (NULL: not checked). */
    void (*shape)(const void *model, size_t *inputs, size_t *outputs);

    /* The learning-rate range test (nn/lrfind.h) with the family's own
     * optimizer and batches on `train`, from the initialization fit would
     * start from; *out gets lrfind_to_json's object (the caller deletes
     * it). The weights it trained are thrown away. PD_* codes as fit;
     * a bad cfg is PD_EPARAM. Optional (NULL: the family has no finder;
     * trainers/lrtest.h). */
    int (*lr_find)(const void *params, const struct pd_task *task,
                   const struct pd_data *train, const struct pd_fit_opts *opts,
                   const struct lrfind_config *cfg, cJSON **out, char *err,
                   size_t errlen);

    /* What a result reports about a trained model beyond its metrics
     * (e.g. a CNN's genotype, parameter count and FLOPs), as a new JSON
     * object the caller deletes; the driver puts it into the result event
     * and the model header as "details". Optional (NULL, or a NULL
     * answer: nothing to add). */
    cJSON *(*details)(const void *model);

    /* 1: fitting is expensive (a CNN), so with a holdout split the model
     * fitted on the training part is kept as the final model instead of
     * refitting on every row, unless the spec says "refit": true
     * (driver.h). */
    int no_refit_on_holdout;
};

/* Look a family up by name; NULL if there is none. */
const struct pd_family *pd_family_find(const char *name);

#endif
