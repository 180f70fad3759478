/*
 * models.h - trained models over the API. A model is a succeeded trial
 * with an artifact (an LR-finder trial has none).
 *
 *   GET /v1/models/{id}            the model, with its job's data set,
 *                                  target, task and metric
 *   GET /v1/models/{id}/artifact   the model file, streamed, tagged with
 *                                  its SHA-256 (ETag and Repr-Digest)
 *
 * Threads: libmicrohttpd's worker threads; an artifact's content reader
 * runs on the worker that serves the download.
 */
#ifndef PODIUM_SERVER_MODELS_H
#define PODIUM_SERVER_MODELS_H

#include "server/http.h"

int models_get(struct http_req *r);
int models_artifact(struct http_req *r);

#endif
