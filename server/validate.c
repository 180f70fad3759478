/* validate.c - see validate.h. */
#include "server/validate.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/utf8.h"

void validator_init(struct validator *v) { v->errors = cJSON_CreateArray(); }

void validator_free(struct validator *v)
{
    cJSON_Delete(v->errors);
    v->errors = NULL;
}

int validator_failed(const struct validator *v)
{
    return v->errors == NULL || cJSON_GetArraySize(v->errors) > 0;
}

cJSON *validator_take(struct validator *v)
{
    cJSON *e = v->errors;
    v->errors = NULL;
    return e ? e : cJSON_CreateArray();
}

void validate_error(struct validator *v, const char *field, const char *fmt, ...)
{
    if (v->errors == NULL) return;
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    cJSON *e = cJSON_CreateObject();
    if (e == NULL) return;
    cJSON_AddStringToObject(e, "field", field);
    cJSON_AddStringToObject(e, "detail", detail);
    cJSON_AddItemToArray(v->errors, e);
}

void validate_only(struct validator *v, const cJSON *obj, const char *prefix,
                   const char *const *allowed)
{
    for (const cJSON *m = obj ? obj->child : NULL; m != NULL; m = m->next) {
        int ok = 0;
        for (const char *const *a = allowed; *a && !ok; a++) ok = strcmp(*a, m->string) == 0;
        if (ok) continue;
        char field[256];
        snprintf(field, sizeof field, "%s%s%s", prefix ? prefix : "", prefix ? "." : "", m->string);
        validate_error(v, field, "unknown field");
    }
}

const char *validate_string(struct validator *v, const cJSON *obj, const char *name,
                            int required, size_t min, size_t max)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (item == NULL || cJSON_IsNull(item)) {
        if (required) validate_error(v, name, "is required");
        return NULL;
    }
    if (!cJSON_IsString(item)) {
        validate_error(v, name, "must be a string");
        return NULL;
    }
    size_t len = utf8_length(item->valuestring);
    if (len == (size_t)-1) {
        validate_error(v, name, "must be valid UTF-8");
        return NULL;
    }
    if (len < min || len > max) {
        validate_error(v, name, "must be %zu to %zu characters long, got %zu", min, max, len);
        return NULL;
    }
    for (const unsigned char *p = (const unsigned char *)item->valuestring; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            validate_error(v, name, "must not contain control characters");
            return NULL;
        }
    }
    return item->valuestring;
}

const char *validate_enum(struct validator *v, const cJSON *obj, const char *name,
                          const char *const *choices, const char *dflt)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (item == NULL || cJSON_IsNull(item)) return dflt;
    if (cJSON_IsString(item)) {
        for (const char *const *c = choices; *c; c++)
            if (strcmp(*c, item->valuestring) == 0) return *c;
    }
    char list[256] = "";
    for (const char *const *c = choices; *c; c++) {
        strncat(list, c == choices ? "" : ", ", sizeof list - strlen(list) - 1);
        strncat(list, *c, sizeof list - strlen(list) - 1);
    }
    validate_error(v, name, "must be one of: %s", list);
    return NULL;
}
