/* pgjson.c - see pgjson.h. The type OIDs are PostgreSQL's fixed built-in
 * ones (pg_type.dat), stable across versions. */
#include "lib/pgjson.h"

#include <stdlib.h>

enum {
    OID_BOOL = 16, OID_INT8 = 20, OID_INT2 = 21, OID_INT4 = 23,
    OID_JSON = 114, OID_FLOAT4 = 700, OID_FLOAT8 = 701, OID_NUMERIC = 1700,
    OID_JSONB = 3802,
};

static cJSON *value(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col)) return cJSON_CreateNull();
    const char *v = PQgetvalue(res, row, col);
    switch (PQftype(res, col)) {
    case OID_BOOL:
        return cJSON_CreateBool(v[0] == 't');
    case OID_INT2:
    case OID_INT4:
    case OID_INT8:
    case OID_FLOAT4:
    case OID_FLOAT8:
    case OID_NUMERIC: {
        char *end;
        double d = strtod(v, &end);
        if (*end != '\0') return cJSON_CreateString(v); /* NaN, Infinity */
        return cJSON_CreateNumber(d);
    }
    case OID_JSON:
    case OID_JSONB: {
        cJSON *j = cJSON_Parse(v);
        return j ? j : cJSON_CreateNull();
    }
    default:
        return cJSON_CreateString(v);
    }
}

cJSON *pgjson_row(const PGresult *res, int row)
{
    cJSON *obj = cJSON_CreateObject();
    if (obj == NULL) return NULL;
    for (int c = 0; c < PQnfields(res); c++) {
        cJSON *v = value(res, row, c);
        if (v == NULL) {
            cJSON_Delete(obj);
            return NULL;
        }
        cJSON_AddItemToObject(obj, PQfname(res, c), v);
    }
    return obj;
}

cJSON *pgjson_rows(const PGresult *res)
{
    cJSON *arr = cJSON_CreateArray();
    if (arr == NULL) return NULL;
    for (int r = 0; r < PQntuples(res); r++) {
        cJSON *o = pgjson_row(res, r);
        if (o == NULL) {
            cJSON_Delete(arr);
            return NULL;
        }
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}
