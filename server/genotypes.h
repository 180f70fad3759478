/*
 * genotypes.h - a CNN model's architecture (a DARTS cell genotype,
 * lib/genotype.h) as JSON to download and as an SVG cell diagram.
 *
 *   GET /v1/models/{model_id}/genotype      {"genotype": {...}, ...details}
 *   GET /v1/models/{model_id}/genotype.svg  the normal and reduction cells
 *
 * The genotype is the one the trial's result reported (trials.details); a
 * model without one (a classical family) answers 404 naming that. Both are
 * immutable, so they carry an ETag (the model's artifact digest) and
 * answer 304. MHD worker threads, as every handler.
 */
#ifndef PODIUM_SERVER_GENOTYPES_H
#define PODIUM_SERVER_GENOTYPES_H

#include "server/http.h"

int models_genotype(struct http_req *r);
int models_genotype_svg(struct http_req *r);

#endif
