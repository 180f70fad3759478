/*
 * params.c - see params.h. Pure functions over a parsed cJSON tree, which
 * stays owned by the caller.
 */
#include "trainers/params.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int params_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return PD_EPARAM;
}

const cJSON *params_get(const cJSON *obj, const char *key)
{
    if (obj == NULL || !cJSON_IsObject(obj)) return NULL;
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

const cJSON *params_get_nonnull(const cJSON *obj, const char *key)
{
    const cJSON *it = params_get(obj, key);
    return cJSON_IsNull(it) ? NULL : it;
}

int params_int(const struct params_ctx *c, const cJSON *it, long lo, long hi,
               long *out)
{
    if (it == NULL) return 0;
    const char *k = it->string;
    int num = cJSON_IsNumber(it);
    double v = num ? it->valuedouble : NAN;
    switch (c->style) {
    case PARAMS_BRIEF:
        if (!num || v != floor(v) || v < (double)lo || v > (double)hi)
            return params_fail(c->err, c->errlen, "%s: must be an integer between %ld and %ld",
                               k, lo, hi);
        break;
    case PARAMS_BOUNDS:
        if (!num || v != floor(v)) return params_fail(c->err, c->errlen, "%s: must be an integer", k);
        if (v < (double)lo || v > (double)hi)
            return params_fail(c->err, c->errlen, "%s: must be between %ld and %ld, got %g",
                               k, lo, hi, v);
        break;
    case PARAMS_INTERVAL:
        if (!num || !isfinite(v) || v != floor(v))
            return params_fail(c->err, c->errlen, "%s: must be an integer", k);
        if (v < (double)lo || v > (double)hi)
            return params_fail(c->err, c->errlen, "%s: must be in [%ld, %ld], got %.17g",
                               k, lo, hi, v);
        break;
    }
    *out = (long)v;
    return 0;
}

int params_num(const struct params_ctx *c, const cJSON *it, double lo,
               int lo_open, double hi, int hi_open, double *out)
{
    if (it == NULL) return 0;
    const char *k = it->string;
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
        return params_fail(c->err, c->errlen, "%s: must be a number", k);
    double v = it->valuedouble;
    int lo_ok = lo_open ? v > lo : v >= lo;
    int hi_ok = hi_open ? v < hi : v <= hi;
    if (c->style == PARAMS_BOUNDS) {
        /* The bound that failed, lower first. */
        if (!lo_ok)
            return params_fail(c->err, c->errlen, "%s: must be %s %g, got %g", k,
                               lo_open ? ">" : ">=", lo, v);
        if (!hi_ok)
            return params_fail(c->err, c->errlen, "%s: must be %s %g, got %g", k,
                               hi_open ? "<" : "<=", hi, v);
    } else if (!lo_ok || !hi_ok) {
        if (c->style == PARAMS_INTERVAL)
            return params_fail(c->err, c->errlen, "%s: must be in %c%g, %g%c, got %.17g", k,
                               lo_open ? '(' : '[', lo, hi, hi_open ? ')' : ']', v);
        return params_fail(c->err, c->errlen, "%s: must be in %c%g, %g%c, got %g", k,
                           lo_open ? '(' : '[', lo, hi, hi_open ? ')' : ']', v);
    }
    *out = v;
    return 0;
}

int params_bool(const struct params_ctx *c, const cJSON *it, int *out)
{
    if (it == NULL) return 0;
    if (!cJSON_IsBool(it))
        return params_fail(c->err, c->errlen, "%s: must be true or false", it->string);
    *out = cJSON_IsTrue(it) ? 1 : 0;
    return 0;
}

int params_enum(const struct params_ctx *c, const cJSON *it,
                const char *const *names, int *out)
{
    if (it == NULL) return 0;
    for (int i = 0; cJSON_IsString(it) && names[i] != NULL; i++)
        if (strcmp(it->valuestring, names[i]) == 0) {
            *out = i;
            return 0;
        }
    /* `k: must be "a", "b" or "c"`, cut short (never overrun) by errlen. */
    if (c->err == NULL || c->errlen == 0) return PD_EPARAM;
    size_t len = 0;
    int w = snprintf(c->err, c->errlen, "%s: must be ", it->string);
    for (int i = 0; w >= 0 && names[i] != NULL; i++) {
        len += (size_t)w;
        if (len >= c->errlen) break;
        const char *sep = i == 0 ? "" : names[i + 1] != NULL ? ", " : " or ";
        w = snprintf(c->err + len, c->errlen - len, "%s\"%s\"", sep, names[i]);
    }
    return PD_EPARAM;
}

int params_object(const struct params_ctx *c, const cJSON *params)
{
    if (params != NULL && !cJSON_IsNull(params) && !cJSON_IsObject(params))
        return params_fail(c->err, c->errlen, "params: must be a JSON object");
    return 0;
}

int params_unknown(const struct params_ctx *c, const cJSON *it)
{
    return params_fail(c->err, c->errlen, "%s: unknown parameter of %s", it->string, c->family);
}

int params_check_keys(const struct params_ctx *c, const cJSON *obj,
                      const char *const *known)
{
    if (params_object(c, obj) != 0) return PD_EPARAM;
    if (obj == NULL || cJSON_IsNull(obj)) return 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, obj) {
        int ok = 0;
        for (const char *const *k = known; *k; k++)
            if (it->string && strcmp(it->string, *k) == 0) { ok = 1; break; }
        if (!ok)
            return params_fail(c->err, c->errlen, "%s: unknown parameter",
                               it->string ? it->string : "(unnamed)");
        /* Duplicate keys would make the effective value ambiguous. */
        for (const cJSON *j = it->next; j; j = j->next)
            if (j->string && it->string && strcmp(j->string, it->string) == 0)
                return params_fail(c->err, c->errlen, "%s: given more than once", it->string);
    }
    return 0;
}
