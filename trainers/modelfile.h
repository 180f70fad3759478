/*
 * modelfile.h - Podium's model file (.pdm), written by podium-train and
 * read by podium-predict. The format is documented in docs/model-format.md:
 *
 *   "PDMODEL\0"       8 bytes magic
 *   u32 version       MODELFILE_VERSION
 *   u32 header_len    then header_len bytes of JSON (UTF-8, no NUL):
 *                     format, family, params, schema, preprocessing,
 *                     metrics, ...
 *   u64 prep_len      then the preprocessing state (preprocess.h)
 *   u64 weights_len   then the family's weights (family->save)
 *   u64 checksum      FNV-1a 64 of every byte before it
 * All integers little-endian. Reading is bounds-checked throughout: a file
 * that is not ours, truncated, corrupted or inconsistent is PD_EFORMAT
 * with a message saying which part is wrong.
 *
 * Image models (docs/model-format.md): the header also has "input":
 * "images", "image" {height, width, channels} and "classes"; the schema is
 * an image schema (schema.h) whose pixel columns the preprocessing reads;
 * trainers/imagedata.h turns images into frames for modelfile_predict.
 *
 * Ownership: modelfile_decode/modelfile_load fill a struct modelfile the
 * caller releases with modelfile_free (which zeroes it; a zeroed one is
 * fine to free). Single-threaded.
 */
#ifndef PODIUM_TRAINERS_MODELFILE_H
#define PODIUM_TRAINERS_MODELFILE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "trainers/buf.h"
#include "trainers/family.h"
#include "trainers/preprocess.h"
#include "trainers/schema.h"

#define MODELFILE_MAGIC "PDMODEL"      /* + its NUL: 8 bytes */
#define MODELFILE_VERSION 1u
#define MODELFILE_MAX_HEADER (16u << 20)
#define MODELFILE_MAX_BYTES ((uint64_t)4 << 30)

struct modelfile {
    cJSON *header;
    struct schema schema;
    struct prep *prep;
    const struct pd_family *family;
    struct pd_task task;
    void *model;
};

/* The header's required members (format, version, family, params, schema,
 * preprocessing); the caller adds more (metrics, ...) before encoding. */
cJSON *modelfile_header_new(const struct schema *s, const struct prep *p,
                            const struct pd_family *fam, const void *params);

/* Serialize into out (appended). 0, or PD_ENOMEM / PD_EINTERNAL. */
int modelfile_encode(const cJSON *header, const struct prep *p,
                     const struct pd_family *fam, const void *model,
                     struct pd_buf *out);

/* Parse a whole file image. 0, or PD_EFORMAT / PD_ENOMEM with a message. */
int modelfile_decode(const void *data, size_t len, struct modelfile *out,
                     char *err, size_t errlen);
/* Read and decode a file (at most MODELFILE_MAX_BYTES). */
int modelfile_load(const char *path, struct modelfile *out, char *err,
                   size_t errlen);
void modelfile_free(struct modelfile *m);

/* Predict every row of a frame built with m->schema: out gets
 * n_rows * n_classes probabilities (classification) or n_rows values.
 * 0, or a negative PD_ code with a message. */
int modelfile_predict(const struct modelfile *m, const struct schema_frame *f,
                      int threads, double *out, char *err, size_t errlen);

/* FNV-1a 64 (the trailing checksum). */
uint64_t modelfile_checksum(const void *data, size_t len);

#endif
