/*
 * schema.h - the typing of a training table for podium-train: which
 * columns are numeric, categorical, boolean, identifiers or constants, what
 * the target is (task, class labels), and the typed view ("frame") of a
 * CSV table's feature columns that preprocessing reads.
 *
 * Rules (simple on purpose, and documented in docs/model-format.md):
 *  - A cell is missing when, spaces trimmed, it is empty or one of NA,
 *    N/A, NaN, nan, null, NULL, None, ?.
 *  - constant:    at most one distinct non-missing value (dropped);
 *  - boolean:     every non-missing value is true/false (any case) -> 1/0;
 *  - numeric:     every non-missing value is a plain decimal number
 *                 (csv_is_number; quoted or not);
 *  - identifier:  (dropped) a numeric column of integers whose name says
 *                 "id" (id, *_id, *.id, *-id, *Id) with distinct values on
 *                 at least half of its rows, or a column of integers that
 *                 are all distinct and consecutive (a row number), or a
 *                 non-numeric column with >= 20 values, all distinct;
 *  - categorical: any other column (levels are the cell strings).
 *  - task "auto": classification when the target has a value that is not
 *    a number (strings, booleans), or when it holds integers only with
 *    exactly 2 distinct values, or at most 20 distinct values and at least
 *    10 rows per distinct value; regression otherwise.
 *  - class labels are the distinct target strings, sorted numerically
 *    when all are numbers, else by strcmp (scikit-learn's LabelEncoder
 *    order); the class index is the position in that order.
 *
 * Image models (schema_init_images): the features are the pixels of an
 * image converted to channels x height x width (trainers/imagedata.h),
 * one numeric column per value in CHW order, named "px<i>"; the target is
 * "class", the task classification, the classes the data set's class
 * names. Such a schema has image_channels > 0; its JSON form carries
 * "image": {"height", "width", "channels"} instead of the column list
 * (which a reader rebuilds), so a model header stays small.
 *
 * Ownership: schema_* functions fill caller-provided structs that the
 * caller releases with schema_free / schema_frame_free (both zero the
 * struct and accept one that is zeroed). A frame points into the CSV table
 * it was built from, which must outlive it. Single-threaded.
 */
#ifndef PODIUM_TRAINERS_SCHEMA_H
#define PODIUM_TRAINERS_SCHEMA_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "lib/csv.h"
#include "trainers/family.h"

enum schema_type {
    SCHEMA_NUMERIC = 0,
    SCHEMA_CATEGORICAL = 1,
    SCHEMA_BOOLEAN = 2,
    SCHEMA_IDENTIFIER = 3,   /* dropped */
    SCHEMA_CONSTANT = 4,     /* dropped */
};

#define SCHEMA_TASK_AUTO (-1)
#define SCHEMA_MAX_CLASSES 1000
#define SCHEMA_MAX_IMAGE_SIDE 4096u
#define SCHEMA_MAX_IMAGE_FEATURES (1u << 20)   /* channels * height * width */

struct schema_col {
    char *name;
    enum schema_type type;
};

struct schema {
    size_t n_cols;              /* feature columns (target excluded), table order */
    struct schema_col *cols;
    char *target;
    enum pd_task_kind task;
    int n_classes;              /* 0 for regression */
    char **classes;             /* n_classes labels, class index order */
    int image_channels;         /* 1 or 3 for an image model, 0 for a table */
    unsigned image_height, image_width;
};

/* A typed view of the feature columns of a table: column c of the schema
 * is num[c] (numeric/boolean: n_rows doubles, NaN = missing) or str[c]
 * (categorical: n_rows cell pointers, NULL = missing); both NULL for the
 * dropped columns. */
struct schema_frame {
    size_t n_rows, n_cols;
    double **num;
    const char ***str;
};

/* 1 when the cell counts as missing. */
int schema_is_missing(const char *s);
/* Parse a plain decimal number (surrounding spaces allowed): 0, or -1. */
int schema_parse_number(const char *s, double *v);
/* "numeric", "categorical", ...; NULL for an unknown value. */
const char *schema_type_name(enum schema_type t);
/* 1 when the column is used as a feature (not dropped). */
int schema_col_used(const struct schema_col *c);

/* Type the columns of t, the target being the column named `target`;
 * task is SCHEMA_TASK_AUTO or an enum pd_task_kind. 0, or -1 with a
 * message (no such target, a regression target that is not numeric,
 * fewer than 2 classes, ...). */
int schema_infer(const struct csv_table *t, const char *target, int task,
                 struct schema *out, char *err, size_t errlen);

/* Encode the target of every row of t: y[r] is the class index or the
 * value, NaN when the cell is missing. 0, or -1 with a message (a label
 * not in the schema's classes, a value that is not a number). */
int schema_encode_target(const struct schema *s, const struct csv_table *t,
                         double *y, char *err, size_t errlen);

/* Build the typed view of t's feature columns, matched by name (any
 * order; extra columns, the target included, are ignored). A used column
 * that t lacks, or a cell that does not parse as its type, is -1 with a
 * message naming the column (and the data row, 1-based); so is a number
 * beyond the float range (the families work in float). */
int schema_frame_build(const struct schema *s, const struct csv_table *t,
                       struct schema_frame *f, char *err, size_t errlen);
void schema_frame_free(struct schema_frame *f);

/* The schema of an image model: classes[0..n_classes) are copied. 0, or
 * -1 with a message (channels not 1 or 3, a side of 0 or over
 * SCHEMA_MAX_IMAGE_SIDE, more than SCHEMA_MAX_IMAGE_FEATURES values,
 * fewer than 2 or more than SCHEMA_MAX_CLASSES classes). */
int schema_init_images(struct schema *out, const char *const *classes, int n_classes,
                       int channels, unsigned height, unsigned width, char *err, size_t errlen);

/* {"target":..., "task":..., "classes":[...], "columns":[{"name","type"}]},
 * or for an image model {"target":"class", "task":"classification",
 * "classes":[...], "image":{"height","width","channels"}}. */
cJSON *schema_to_json(const struct schema *s);
int schema_from_json(const cJSON *j, struct schema *out, char *err, size_t errlen);
void schema_free(struct schema *s);

#endif
