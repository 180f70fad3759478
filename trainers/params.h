/*
 * params.h - strict readers of a model family's JSON parameters (the
 * `params` object of a job spec or of `podium-train --params`), shared by
 * every family in trainers/ so that each rejects bad values the same way
 * and names the parameter first: "max_iter: must be ...".
 *
 * A reader takes one member of the params object (its key, it->string, is
 * the name used in the message) and either stores the value and returns 0,
 * or leaves *out alone and returns PD_EPARAM with a message in err. A NULL
 * member counts as absent: 0, *out untouched. So the families that walk
 * the object with cJSON_ArrayForEach pass each member, and those that look
 * keys up pass params_get(obj, key).
 *
 * The wording of range errors predates this module and differs by family;
 * struct params_ctx's style keeps each family's (users and tests read
 * them). Nothing here allocates or keeps state; any thread may call it.
 */
#ifndef PODIUM_TRAINERS_PARAMS_H
#define PODIUM_TRAINERS_PARAMS_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "trainers/family.h"

/* How range errors read:
 * - PARAMS_BOUNDS (linear, nb): "tol: must be > 0, got 0",
 *   "l1_ratio: must be <= 1, got 2", "max_iter: must be an integer",
 *   "max_iter: must be between 1 and 1000000, got 0".
 * - PARAMS_BRIEF (mlp, knn): "dropout: must be in [0, 1), got 1",
 *   "max_iter: must be an integer between 1 and 1000000" (type and range
 *   errors alike).
 * - PARAMS_INTERVAL (forest, gbm): "subsample: must be in (0, 1], got
 *   1.5" with the value in full (%.17g), "max_bins: must be an integer"
 *   (also for infinities), "max_bins: must be in [2, 255], got 1". */
enum params_style { PARAMS_BOUNDS, PARAMS_BRIEF, PARAMS_INTERVAL };

struct params_ctx {
    const char *family;      /* "x: unknown parameter of <family>" */
    enum params_style style;
    char *err;               /* may be NULL */
    size_t errlen;
};

/* Format a message into err (when err is not NULL and errlen > 0) and
 * return PD_EPARAM. */
__attribute__((format(printf, 3, 4)))
int params_fail(char *err, size_t errlen, const char *fmt, ...);

/* obj[key], or NULL when obj is not an object or has no such key
 * (case-sensitive). params_get_nonnull also answers NULL for a JSON null,
 * for parameters where null means "the default". */
const cJSON *params_get(const cJSON *obj, const char *key);
const cJSON *params_get_nonnull(const cJSON *obj, const char *key);

/* An integer in [lo, hi]. */
int params_int(const struct params_ctx *c, const cJSON *it, long lo, long hi,
               long *out);
/* A finite number above lo (lo_open: strictly) and below hi (hi_open:
 * strictly); pass INFINITY as hi for no upper bound. */
int params_num(const struct params_ctx *c, const cJSON *it, double lo,
               int lo_open, double hi, int hi_open, double *out);
/* true or false, stored as 1 or 0. */
int params_bool(const struct params_ctx *c, const cJSON *it, int *out);
/* One of the strings in the NULL-terminated list names; *out is its
 * index. Otherwise: `key: must be "a", "b" or "c"`. */
int params_enum(const struct params_ctx *c, const cJSON *it,
                const char *const *names, int *out);

/* params must be absent, null or an object: else "params: must be a JSON
 * object". */
int params_object(const struct params_ctx *c, const cJSON *params);
/* For the families that walk the object: "key: unknown parameter of
 * <family>" for a member none of their cases took. */
int params_unknown(const struct params_ctx *c, const cJSON *it);
/* For the families that look keys up: params_object, then every key of
 * obj must be in the NULL-terminated list known ("key: unknown parameter")
 * and appear once ("key: given more than once"). */
int params_check_keys(const struct params_ctx *c, const cJSON *obj,
                      const char *const *known);

#endif
