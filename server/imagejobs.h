/*
 * imagejobs.h - what POST /v1/jobs takes for an image data set: the model
 * families and strategies of image search (neural architecture search),
 * and the job's options (the size images are converted to, the NAS
 * settings), validated with defaults filled in from the data set's
 * profile.
 *
 * An image job searches CNN architectures ("cnn": cells built from a DARTS
 * genotype, trained from scratch) beside classical baselines on the pixels
 * (knn, mlp, linear), with one of three strategies:
 *   darts      one supernet search trial (family "darts") that derives a
 *              genotype, then that genotype retrained as a "cnn" trial;
 *   evolution  regularized evolution: each child a "cnn" trial;
 *   random     random genotypes, the baseline for both.
 * Its target is always "class" and its task classification.
 *
 * The options object (stored in jobs.options; every member optional):
 *   {"image": {"height": 4..256, "width": 4..256, "channels": 1 | 3},
 *    "nas": {"cells": 2..20, "channels": 4..128, "epochs": 1..600,
 *            "search_epochs": 1..200, "batch_size": 8..1024,
 *            "learning_rate": number in (0, 10] | "auto",
 *            "population": 2..1000, "sample": 2..population,
 *            "augment": bool, "drop_path": 0..0.9, "cutout": 0..1,
 *            "auxiliary_weight": 0..1}}
 * Defaults: the profile's most common image size (each side capped at 64,
 * so that a search fits a CPU), one channel when every image is grey;
 * cells 5, channels 16, epochs 10, search_epochs 5, batch_size 64,
 * learning_rate 0.025, population 10, sample 3, augment true, drop_path 0,
 * cutout 0, auxiliary_weight 0 (the training extras, trainers/cnn.h).
 *
 * Pure (no I/O): any thread.
 */
#ifndef PODIUM_SERVER_IMAGEJOBS_H
#define PODIUM_SERVER_IMAGEJOBS_H

#include <cjson/cJSON.h>

#include "server/validate.h"

/* Image model families in their default order. */
extern const char *const imagejobs_families[];
/* Image strategies; the first is the default. */
extern const char *const imagejobs_strategies[];

/* 1 if name is an image family / strategy. */
int imagejobs_family(const char *name);
int imagejobs_strategy(const char *name);

/* Validate in's "options" member (may be absent) against the data set's
 * profile; errors go to v with their field ("options.nas.cells"). Returns
 * the complete options (defaults filled in) as a new object the caller
 * deletes (meaningful only when v has no errors), or NULL: no memory. */
cJSON *imagejobs_options(struct validator *v, const cJSON *in, const cJSON *profile);

#endif
