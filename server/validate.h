/*
 * validate.h - checking a request's JSON object field by field, collecting
 * every problem (not just the first) for one 422 answer.
 *
 *     struct validator v;
 *     validator_init(&v);
 *     validate_only(&v, in, NULL, (const char *[]){"name", "role", NULL});
 *     const char *name = validate_string(&v, in, "name", 1, 1, 100);
 *     if (validator_failed(&v)) return http_problem_invalid(r, validator_take(&v));
 *     validator_free(&v);
 */
#ifndef PODIUM_SERVER_VALIDATE_H
#define PODIUM_SERVER_VALIDATE_H

#include <stddef.h>

#include <cjson/cJSON.h>

struct validator {
    cJSON *errors;   /* array of {"field", "detail"} */
};

void validator_init(struct validator *v);
void validator_free(struct validator *v);
int validator_failed(const struct validator *v);
/* Hand the errors array to the caller (for http_problem_invalid). */
cJSON *validator_take(struct validator *v);

void validate_error(struct validator *v, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Every member of obj must be one of allowed (NULL-terminated); an
 * unknown one is reported as prefix.name (prefix NULL at the top level). */
void validate_only(struct validator *v, const cJSON *obj, const char *prefix,
                   const char *const *allowed);

/* A string member of min..max characters (UTF-8 code points); returns it,
 * or NULL when absent (an error if required) or invalid. */
const char *validate_string(struct validator *v, const cJSON *obj, const char *name,
                            int required, size_t min, size_t max);

/* A string member that must be one of choices; dflt when absent. */
const char *validate_enum(struct validator *v, const cJSON *obj, const char *name,
                          const char *const *choices, const char *dflt);

#endif
