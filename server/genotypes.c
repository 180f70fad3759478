/*
 * genotypes.c - a model's genotype as JSON and SVG (genotypes.h).
 */
#include "server/genotypes.h"

#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "lib/genotype.h"
#include "server/resource.h"

/* The model's details and ETag, or NULL after answering (404 when it has
 * no genotype). *g is filled on success. */
static cJSON *fetch(struct http_req *r, struct genotype *g, char *etag, size_t etag_len,
                    int *ret)
{
    PGresult *res = resource_fetch(r, "model_id", "model",
        "SELECT t.details::text, encode(t.artifact_sha256, 'hex'), t.family FROM trials t"
        " WHERE t.id = $1 AND t.team_id = $2 AND t.state = 'succeeded'", ret);
    if (res == NULL) return NULL;
    cJSON *details = PQgetisnull(res, 0, 0) ? NULL : cJSON_Parse(PQgetvalue(res, 0, 0));
    snprintf(etag, etag_len, "\"g-%s\"", PQgetvalue(res, 0, 1));
    char family[64];
    snprintf(family, sizeof family, "%s", PQgetvalue(res, 0, 2));
    PQclear(res);
    char err[200];
    if (genotype_from_json(cJSON_GetObjectItemCaseSensitive(details, "genotype"), g, err,
                           sizeof err) < 0) {
        cJSON_Delete(details);
        char detail[160];
        snprintf(detail, sizeof detail,
                 "this %s model has no architecture genotype: only cnn and darts models do",
                 family);
        *ret = http_problem(r, 404, "no-genotype", "No genotype", NULL, "%s", detail);
        return NULL;
    }
    return details;
}

static int not_modified(struct http_req *r, const char *etag)
{
    const char *inm = http_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH);
    return inm && strstr(inm, etag) != NULL;
}

int models_genotype(struct http_req *r)
{
    int ret;
    struct genotype g;
    char etag[96];
    cJSON *details = fetch(r, &g, etag, sizeof etag, &ret);
    if (details == NULL) return ret;
    if (not_modified(r, etag)) {
        cJSON_Delete(details);
        return http_respond_not_modified(r, etag);
    }
    char *body = cJSON_PrintUnformatted(details);
    cJSON_Delete(details);
    if (body == NULL) return MHD_NO;
    return http_respond_bytes(r, 200, "application/json", body, strlen(body), etag);
}

int models_genotype_svg(struct http_req *r)
{
    int ret;
    struct genotype g;
    char etag[96];
    cJSON *details = fetch(r, &g, etag, sizeof etag, &ret);
    if (details == NULL) return ret;
    cJSON_Delete(details);
    if (not_modified(r, etag)) return http_respond_not_modified(r, etag);
    char title[96];
    snprintf(title, sizeof title, "Cells of model %s", http_param(r, "model_id"));
    char *svg = genotype_svg(&g, title);
    if (svg == NULL) return MHD_NO;
    return http_respond_bytes(r, 200, "image/svg+xml", svg, strlen(svg), etag);
}
