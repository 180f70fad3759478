/*
 * samples.h - sample images of an image data set as small PNGs:
 * GET /v1/datasets/{dataset_id}/samples/{n}.
 *
 * The samples of an image set are numbered 0..K-1 in the order of its
 * profile's "classes" (lib/imageset.h), and within a class in archive
 * order:
 *  - folders layout: each class's "samples", the first (up to 5) readable
 *    images of that folder in archive order;
 *  - idx layout: the first min(5, count) images of each label, in the
 *    order of the IDX images file.
 * Either way, sample k of a class is the k-th readable image of that
 * class that imageset_visit hands over. Sample n is found by walking the
 * stored archive with the visitor (same limits and safety rules as the
 * profile) and stopping as soon as it has been handed over; it is scaled
 * down to at most SAMPLES_MAX_SIDE px a side (area average) and sent as
 * an 8-bit grey or RGB PNG, with an ETag made of the blob's SHA-256 and n.
 *
 * Runs on the request's worker thread, with the request's connection.
 */
#ifndef PODIUM_SERVER_SAMPLES_H
#define PODIUM_SERVER_SAMPLES_H

#include <cjson/cJSON.h>

#include "server/http.h"

#define SAMPLES_MAX_SIDE 128
#define SAMPLES_PER_CLASS 5   /* idx layout; folders keep the profile's own (lib/imageset) */

/* GET /v1/datasets/{dataset_id}/samples/{n}. */
int samples_get(struct http_req *r);

/* How many samples class `cls` (an item of the profile's "classes") has,
 * for a profile of layout `layout` ("folders" or "idx"). */
int samples_of_class(const char *layout, const cJSON *cls);

#endif
