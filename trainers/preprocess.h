/*
 * preprocess.h - the preprocessing of podium-train, fitted on the training
 * rows of each fold only (no leakage) and saved in the model file, so that
 * podium-predict applies exactly what the model was trained with.
 *
 * From the typed frame (schema.h) to the family's float matrix, per used
 * column:
 *  - numeric / boolean: missing values are imputed with the training
 *    median, and a 0/1 missing-indicator column follows when the training
 *    rows had a missing value; families that handle missing values
 *    (handles_missing) get NaN instead, with no indicator.
 *  - categorical, at most onehot_max_levels levels seen in training:
 *    one-hot (one column per level, sorted); missing or unseen -> all 0.
 *  - categorical with more levels: one ordinal column (the level's index
 *    in sorted order), imputed with the most frequent level plus a
 *    missing indicator, or NaN for families that handle missing values.
 *  - families with native_categorical get every categorical column as one
 *    code column (pd_data.levels = level count; NaN = missing/unseen).
 *  - needs_scaling: numeric and ordinal columns are standardized with the
 *    training mean and (population) standard deviation, 1 when it is 0.
 *    One-hot and indicator columns stay 0/1.
 *  - a column with no non-missing training value is dropped.
 *
 * Ownership: prep_fit/prep_load return a prep the caller frees with
 * prep_free (NULL-safe). Pure computation, any thread.
 */
#ifndef PODIUM_TRAINERS_PREPROCESS_H
#define PODIUM_TRAINERS_PREPROCESS_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "trainers/buf.h"
#include "trainers/family.h"
#include "trainers/schema.h"

#define PREP_DEFAULT_ONEHOT_MAX_LEVELS 16

struct prep_opts {
    int impute;              /* 1 unless the family handles_missing */
    int scale;               /* the family's needs_scaling */
    int native_categorical;  /* the family's native_categorical */
    uint32_t onehot_max_levels;
};

struct prep;

/* The options a family asks for. */
struct prep_opts prep_opts_for(const struct pd_family *fam);

/* Fit on rows[0..n) of f. 0, or -1 with a message. */
int prep_fit(const struct schema *s, const struct schema_frame *f,
             const size_t *rows, size_t n, const struct prep_opts *o,
             struct prep **out, char *err, size_t errlen);

/* Output width (features) and, for native_categorical preps, the
 * pd_data.levels array of that width (NULL otherwise; owned by p). */
size_t prep_width(const struct prep *p);
const int *prep_levels(const struct prep *p);

/* Transform rows[0..n) of f (rows NULL = 0..n-1) into x (n * width). */
void prep_transform(const struct prep *p, const struct schema_frame *f,
                    const size_t *rows, size_t n, float *x);

/* Binary state (the model file's preprocessing section). load checks every
 * count and column against the schema the model was trained with; a bad
 * or truncated section is PD_EFORMAT with a message. */
int prep_save(const struct prep *p, struct pd_buf *b);
int prep_load(struct pd_reader *r, const struct schema *s, struct prep **out,
              char *err, size_t errlen);

/* A readable summary for the model header and the result event:
 * {"n_features": d, "columns": [{"name", "encoding", ...}]}. */
cJSON *prep_json(const struct prep *p, const struct schema *s);

void prep_free(struct prep *p);

#endif
