/*
 * predict.h - POST /v1/models/{model_id}/predict.
 */
#ifndef PODIUM_SERVER_PREDICT_H
#define PODIUM_SERVER_PREDICT_H

#include "server/http.h"

int models_predict(struct http_req *r);

#endif
