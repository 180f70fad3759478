/*
 * ensemble.h - ensemble selection (Caruana et al. 2004: greedy forward
 * selection with replacement over out-of-fold predictions) and the
 * "ensemble" model family that stores its result.
 *
 * Three layers, each testable on its own:
 *   - ensemble_select: the pure selection over in-memory OOF predictions;
 *   - ensemble_encode / pd_family_ensemble / ensemble_predict_frame: the
 *     model file of family "ensemble", whose weights section embeds each
 *     selected member's whole model file with its weight (see
 *     docs/model-format.md), so the file is self-contained;
 *   - ensemble_run: podium-train's {"ensemble": ...} spec (read member
 *     model and OOF files, select, write the model, its OOF file and the
 *     result event).
 *
 * The ensemble spec (JSON object; other top-level keys are ignored):
 *   ensemble  {"members": [{"artifact": PATH, "oof": PATH}, ...] (1..64),
 *              "rounds": 1..1000 (default 50),
 *              "patience": 1..1000 (default 10)}
 *   metric    as driver.h; default logloss / rmse
 *   task      "auto" | "classification" | "regression" (must match the members)
 *   data      optional CSV: when given, the ensemble predicts its rows once
 *             to time predict_us_per_row (null otherwise)
 *   threads   1..256
 *   artifact  output model path (the OOF file goes to ARTIFACT.oof.csv)
 *
 * Ownership: a loaded ensemble model (pd_family_ensemble.load) owns its
 * members; model_free releases them. Single-threaded.
 */
#ifndef PODIUM_TRAINERS_ENSEMBLE_H
#define PODIUM_TRAINERS_ENSEMBLE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "trainers/buf.h"
#include "trainers/driver.h"
#include "trainers/family.h"
#include "trainers/modelfile.h"
#include "trainers/schema.h"

#define ENSEMBLE_MAX_MEMBERS 64
#define ENSEMBLE_MAX_ROUNDS 1000
#define ENSEMBLE_DEFAULT_ROUNDS 50
#define ENSEMBLE_DEFAULT_PATIENCE 10

extern const struct pd_family pd_family_ensemble;

/* The selection objective: the mean over folds of `metric` computed on
 * each fold's rows (fold[i] in 0..n_folds-1), as podium-train reports a
 * score. pred is n*k (k = n_classes, or 1 for regression). */
double ensemble_objective(const struct pd_task *task, int metric, const double *y,
                          const int *fold, int n_folds, size_t n, const double *pred);

/* Greedy forward selection with replacement. pred[m] is model m's n*k
 * OOF predictions. Starts from the best single model (lowest index on
 * ties), then each round adds the model (repeats allowed) whose addition
 * gives the best objective of the averaged predictions; stops after
 * `rounds` additions or `patience` rounds without improvement, and keeps
 * the best prefix. counts[m] gets how many times model m is in it;
 * *score its objective; *used the prefix length. Deterministic.
 * 0, or PD_EPARAM / PD_ENOMEM. */
int ensemble_select(const struct pd_task *task, int metric, const double *y,
                    const int *fold, int n_folds, size_t n,
                    const double *const *pred, int n_models, int rounds, int patience,
                    int *counts, double *score, int *used);

/* Encode an ensemble model file: members[i] (lens[i] bytes) is a whole
 * model file, weights[i] > 0 summing to 1. Every member must decode, not
 * be an ensemble itself, and share one schema. extra (may be NULL) is
 * merged into the header (metrics, score, ...; not consumed). Appends to
 * out. 0, or PD_EFORMAT / PD_EPARAM / PD_ENOMEM with a message. */
int ensemble_encode(const void *const *members, const size_t *lens,
                    const double *weights, int n, const cJSON *extra,
                    struct pd_buf *out, char *err, size_t errlen);

/* modelfile hooks (modelfile.c): an ensemble predicts from the raw frame
 * (each member applies its own preprocessing), and its members' schema
 * must equal the file's. */
int ensemble_predict_frame(const void *model, const struct schema_frame *f,
                           int threads, double *out, char *err, size_t errlen);
int ensemble_check_schema(const void *model, const struct schema *s,
                          char *err, size_t errlen);

/* Run an ensemble spec (see above): emits start, iteration and result
 * events through o->emit, writes ARTIFACT and ARTIFACT.oof.csv under
 * temporary names renamed at the end. Returns enum driver_status; e says
 * what failed. */
int ensemble_run(const cJSON *spec, const struct driver_opts *o,
                 struct driver_error *e);

#endif
