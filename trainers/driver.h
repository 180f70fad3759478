/*
 * driver.h - podium-train's driver: the job spec, the cross-validation
 * loop, the events, the out-of-fold predictions and the final model file.
 * train_main.c is a thin main over this module, so tests run the whole
 * training path in-process.
 *
 * The spec (JSON object):
 *   kind      "table" | "images"                                     "table"
 *   data      string, required    CSV file, or for images an archive (zip,
 *                                 tar, tar.gz: class folders or an IDX pair,
 *                                 lib/imageset.h), relative to the working folder
 *   target    string, required    target column name (tables only; ignored
 *                                 with a warning for images: the class is the
 *                                 folder name or the IDX label)
 *   image     {"height": 1..4096, "width": 1..4096, "channels": 1|3}
 *             images only; what every image is converted to
 *             (trainers/imagedata.h); a member left out takes its default:
 *             the archive's most common size, 1 channel when every image
 *             is grey, else 3. At most DRIVER_IMAGE_MAX_BYTES of pixel
 *             floats in all (bad_data naming the numbers past it).
 *   task      "auto" | "classification" | "regression"            "auto"
 *   model     {"family": name, "params": {...} | null}, required
 *   cv        {"folds": 2..1000, "seed": n} | {"holdout": (0,1), "seed": n}
 *                                                   {"folds": 5, "seed": 0}
 *   metric    primary metric: accuracy, balanced_accuracy, logloss
 *             (or log_loss), roc_auc, f1_macro | rmse, mae, r2;
 *             default logloss (classification), rmse (regression),
 *             accuracy (images; task is always classification)
 *   threads   1..256                                                 1
 *   artifact  model file path; the out-of-fold predictions go to
 *             ARTIFACT.oof.csv. Without it nothing is written. Its folder
 *             must be writable (checked before training: bad_spec).
 *   lr_find   {"start", "end", "iterations", "suggestion"}: run the
 *             learning-rate range test instead of cross validation (see
 *             trainers/lrtest.h: its own result event, no model file; cv
 *             and artifact are then unused)
 *   device    "cpu" | "cuda" | "cuda:N" | "auto": where a CNN family
 *             (cnn, darts) runs (nn/device.h): "auto" takes the GPU when
 *             one is visible; "cuda" with no GPU visible, or in a build
 *             without the CUDA backend, is a bad_spec (field "device")
 *             saying which, before anything is loaded or reported
 *             (a visible GPU that fails to start is reported by the
 *             family). Any other
 *             value is a bad_spec at once. Other families ignore it; the
 *             lr_find mode runs where the family would. (The
 *             scheduler adds it for GPU families.)                    "cpu"
 *   refit     true | false, only with cv.holdout: whether the final model
 *             is fitted again on every row (true) or is the model fitted on
 *             the training part of the holdout split (false: half the
 *             cost, and the reported score is that very model's). Default:
 *             true, except for families that declare fitting expensive
 *             (pd_family.no_refit_on_holdout: cnn, darts). With folds the
 *             final model is always refitted; "refit": false is then a
 *             bad_spec.
 * A spec with an "ensemble" member is not for the driver: podium-train hands
 * it to ensemble_run (trainers/ensemble.h, docs/model-format.md).
 * Unknown keys inside model and cv are errors; unknown top-level keys are
 * ignored with a warning on stderr (a scheduler may add its own).
 *
 * Events (one JSON object each, through driver_opts.emit):
 *   {"event":"start", "task", "family", "n_rows", "folds"}  (images add
 *    "input":"images", "image":{height,width,channels}, "unreadable": k,
 *    as does the result event; n_rows counts the readable images)
 *   {"event":"fold","fold":i,"folds":k}
 *   {"event":"iteration","stage":"cv"|"final","fold":i,"iteration","total",
 *    "metric","value"}  (at most one per progress_interval seconds, plus
 *    the last iteration of each fit)
 *   {"event":"fold_done","fold":i,"metrics":{name: value},"fit_seconds"}
 *   {"event":"refit"}   the final fit on every row (not sent without refit)
 *   {"event":"result", ...}   see driver_run
 *   {"event":"error","kind","field","message"[,"line"]}  (driver_error_event;
 *    "line" is the CSV line of a malformed data file)
 *
 * Early stopping: when the effective params have early_stopping_rounds
 * > 0 (gbm), every fit (each fold's and the final one) holds out a
 * stratified 10% of its own training rows as the family's validation set;
 * the evaluation fold is never used for it.
 *
 * Writing: the model file and the OOF file are written under temporary
 * names (NAME.tmp.PID) and renamed only when everything succeeded; on
 * failure or cancellation they are removed.
 */
#ifndef PODIUM_TRAINERS_DRIVER_H
#define PODIUM_TRAINERS_DRIVER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "nn/lrfind.h"
#include "trainers/family.h"
#include "trainers/modelfile.h"

enum driver_status {
    DRIVER_OK = 0,
    DRIVER_EBADSPEC = -1,    /* exit 2, kind "bad_spec" */
    DRIVER_EBADDATA = -2,    /* exit 2, kind "bad_data" */
    DRIVER_EINTERNAL = -3,   /* exit 3, kind "internal" */
    DRIVER_ECANCELLED = -4,  /* exit 4, kind "cancelled" */
};

/* The process exit code for a status: 0, 2, 2, 3, 4. */
int driver_exit_code(int status);

struct driver_error {
    int status;              /* enum driver_status */
    char field[128];         /* e.g. "model.params.max_depth"; "" when none */
    char message[768];
    uint64_t line;           /* CSV line of a data error; 0 when none */
};

/* {"event":"error","kind":...,"field":...,"message":...}; caller deletes. */
cJSON *driver_error_event(const struct driver_error *e);

enum driver_data_kind {
    DRIVER_DATA_TABLE = 0,
    DRIVER_DATA_IMAGES = 1,
};

/* The pixel floats an image data set may take (the frame of pixel columns
 * holds them again as doubles during training: 3x this in all). */
#define DRIVER_IMAGE_MAX_BYTES ((uint64_t)1 << 30)

struct driver_spec {
    int kind;                        /* enum driver_data_kind */
    char *data;
    char *target;                    /* NULL for images */
    int image_channels;              /* images: 0 = default */
    unsigned image_height, image_width;
    int task;                        /* SCHEMA_TASK_AUTO or enum pd_task_kind */
    const struct pd_family *family;
    cJSON *params;                   /* copy of model.params; NULL = defaults */
    int folds;                       /* >= 2, or 0 with holdout */
    double holdout;                  /* in (0, 1) when folds == 0 */
    uint64_t seed;
    int metric;                      /* enum pd_metric, -1 = task default */
    int threads;
    char *artifact;                  /* NULL = write nothing */
    int lr_find;                     /* 1: the range-test mode (lrtest.h) */
    int refit;                       /* 0: the family's default; 1: "refit": true;
                                        -1: "refit": false (holdout only) */
    char *device;                    /* "cuda", "auto", ...; NULL = "cpu" */
    struct lrfind_config lr_find_cfg;
};

/* Check a spec and fill out (freed with driver_spec_free, also after a
 * failure). DRIVER_EBADSPEC with e->field naming the member. */
int driver_spec_parse(const cJSON *json, struct driver_spec *out,
                      struct driver_error *e);
void driver_spec_free(struct driver_spec *s);

struct driver_opts {
    const volatile sig_atomic_t *cancel;            /* may be NULL */
    void (*emit)(void *ctx, const cJSON *event);     /* may be NULL */
    void *emit_ctx;
    double progress_interval;   /* seconds between iteration events; <= 0: 0.1 */
};

struct driver_result {
    cJSON *result;           /* the result event (also emitted) */
    struct modelfile final;  /* the final model, in memory */
    char *oof_path;          /* NULL when no artifact */
};

/* Train and evaluate. res may be NULL; otherwise the caller frees it with
 * driver_result_free (also after a failure). Returns enum driver_status;
 * on failure e says what and where. The result event holds: task, family,
 * params (effective), metric, score, greater_is_better, metrics
 * ({name: {mean, std, folds: [...]}}), n_rows, n_features, classes,
 * dropped_columns, folds, fit_seconds (the final fit), cv_seconds,
 * predict_us_per_row, model_bytes, threads, device (the kind the model
 * ran on: details.device.kind for the CNN families, else "cpu"), refit (whether the
 * final model was refitted), details (pd_family.details: what the family
 * reports about the model, e.g. a CNN's genotype, param_count, flops;
 * absent when it has none; the model header carries it too), artifact,
 * oof_path. */
int driver_run(const struct driver_spec *spec, const struct driver_opts *o,
               struct driver_result *res, struct driver_error *e);
void driver_result_free(struct driver_result *r);

/* The temporary name the model (oof = 0) or the OOF file (oof = 1) is
 * written under before the rename: ARTIFACT[.oof.csv].tmp.PID. */
void driver_temp_path(const char *artifact, int oof, char *out, size_t len);

/* The output name of a metric ("logloss" for PD_METRIC_LOG_LOSS). */
const char *driver_metric_name(int m);

#endif
