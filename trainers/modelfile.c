/*
 * modelfile.c - see modelfile.h and docs/model-format.md. The decoder
 * checks, in order: size, magic, version, header length, checksum, the
 * JSON header, the section lengths, then hands each section to its own
 * bounds-checked reader and requires that it consumes the section whole.
 */
#include "trainers/modelfile.h"

#include "trainers/ensemble.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef PODIUM_VERSION
#define PODIUM_VERSION "0.0.0"
#endif

uint64_t modelfile_checksum(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

cJSON *modelfile_header_new(const struct schema *s, const struct prep *p,
                            const struct pd_family *fam, const void *params)
{
    cJSON *h = cJSON_CreateObject();
    if (h == NULL) return NULL;
    cJSON_AddStringToObject(h, "format", "podium-model");
    cJSON_AddNumberToObject(h, "version", MODELFILE_VERSION);
    cJSON_AddStringToObject(h, "podium_version", PODIUM_VERSION);
    cJSON_AddStringToObject(h, "family", fam->name);
    cJSON *pj = params ? fam->params_json(params) : cJSON_CreateObject();
    cJSON_AddItemToObject(h, "params", pj ? pj : cJSON_CreateObject());
    cJSON_AddItemToObject(h, "schema", schema_to_json(s));
    if (s->image_channels > 0) {
        /* an image model: what a reader must do to an image before the
         * pixel features, and a summary instead of one entry per pixel */
        cJSON_AddStringToObject(h, "input", "images");
        cJSON *im = cJSON_AddObjectToObject(h, "image");
        if (im) {
            cJSON_AddNumberToObject(im, "height", s->image_height);
            cJSON_AddNumberToObject(im, "width", s->image_width);
            cJSON_AddNumberToObject(im, "channels", s->image_channels);
            cJSON_AddStringToObject(im, "resize", "bilinear, area above 2x (nn/augment.h)");
            cJSON_AddStringToObject(im, "scale", "sample / 255");
        }
        cJSON *cl = cJSON_AddArrayToObject(h, "classes");
        for (int k = 0; cl && k < s->n_classes; k++)
            cJSON_AddItemToArray(cl, cJSON_CreateString(s->classes[k]));
        cJSON *pre = cJSON_AddObjectToObject(h, "preprocessing");
        if (pre) {
            cJSON_AddNumberToObject(pre, "n_features", (double)prep_width(p));
            cJSON_AddStringToObject(pre, "features", "pixels in CHW order");
            cJSON_AddBoolToObject(pre, "standardized", fam->needs_scaling != 0);
        }
        return h;
    }
    cJSON_AddItemToObject(h, "preprocessing", prep_json(p, s));
    return h;
}

int modelfile_encode(const cJSON *header, const struct prep *p,
                     const struct pd_family *fam, const void *model,
                     struct pd_buf *out)
{
    size_t start = out->len;
    char *text = cJSON_PrintUnformatted(header);
    if (text == NULL) return PD_ENOMEM;
    size_t hlen = strlen(text);
    if (hlen > MODELFILE_MAX_HEADER) {
        free(text);
        return PD_EINTERNAL;
    }
    pd_buf_put(out, MODELFILE_MAGIC, 8);
    pd_buf_put_u32(out, MODELFILE_VERSION);
    pd_buf_put_u32(out, (uint32_t)hlen);
    pd_buf_put(out, text, hlen);
    free(text);

    struct pd_buf sec;
    pd_buf_init(&sec);
    int rc = prep_save(p, &sec);
    if (rc == 0 && sec.failed) rc = PD_ENOMEM;
    if (rc == 0) {
        pd_buf_put_u64(out, sec.len);
        pd_buf_put(out, sec.data, sec.len);
        sec.len = 0;
        rc = fam->save(model, &sec);
        if (rc == 0 && sec.failed) rc = PD_ENOMEM;
    }
    if (rc == 0) {
        pd_buf_put_u64(out, sec.len);
        pd_buf_put(out, sec.data, sec.len);
    }
    pd_buf_free(&sec);
    if (rc != 0) return rc;
    if (out->failed) return PD_ENOMEM;
    pd_buf_put_u64(out, modelfile_checksum(out->data + start, out->len - start));
    return out->failed ? PD_ENOMEM : 0;
}

static int bad(char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "not a valid Podium model file: %s", what);
    return PD_EFORMAT;
}

int modelfile_decode(const void *data, size_t len, struct modelfile *out,
                     char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const unsigned char *d = data;
    struct pd_reader r;
    pd_reader_init(&r, data, len);
    char magic[8];
    uint32_t version = 0, hlen = 0;
    if (pd_reader_get(&r, magic, 8) < 0 || memcmp(magic, MODELFILE_MAGIC, 8) != 0)
        return bad(err, errlen, "bad magic (expected \"PDMODEL\")");
    if (pd_reader_get_u32(&r, &version) < 0) return bad(err, errlen, "truncated before the version");
    if (version != MODELFILE_VERSION) {
        snprintf(err, errlen, "unsupported model file version %u (this build reads %u)",
                 version, MODELFILE_VERSION);
        return PD_EFORMAT;
    }
    if (pd_reader_get_u32(&r, &hlen) < 0) return bad(err, errlen, "truncated before the header");
    if (hlen > MODELFILE_MAX_HEADER || hlen > r.left) return bad(err, errlen, "truncated header");
    if (len < 24) return bad(err, errlen, "truncated");
    /* checksum over everything but its own 8 bytes */
    struct pd_reader tail;
    uint64_t sum = 0;
    pd_reader_init(&tail, d + len - 8, 8);
    pd_reader_get_u64(&tail, &sum);
    if (sum != modelfile_checksum(d, len - 8))
        return bad(err, errlen, "checksum mismatch (truncated or corrupted)");
    r.left -= 8; /* the checksum is not part of any section */
    if (hlen > r.left) return bad(err, errlen, "truncated header");

    out->header = cJSON_ParseWithLength((const char *)r.p, hlen);
    r.p += hlen;
    r.left -= hlen;
    if (!cJSON_IsObject(out->header)) {
        modelfile_free(out);
        return bad(err, errlen, "the header is not a JSON object");
    }
    const cJSON *fam = cJSON_GetObjectItemCaseSensitive(out->header, "family");
    const cJSON *sch = cJSON_GetObjectItemCaseSensitive(out->header, "schema");
    if (!cJSON_IsString(fam) || (out->family = pd_family_find(fam->valuestring)) == NULL) {
        modelfile_free(out);
        return bad(err, errlen, "the header names no known model family");
    }
    char sub[256];
    if (schema_from_json(sch, &out->schema, sub, sizeof sub) < 0) {
        modelfile_free(out);
        snprintf(err, errlen, "not a valid Podium model file: %s", sub);
        return PD_EFORMAT;
    }
    out->task.kind = out->schema.task;
    out->task.n_classes = out->schema.n_classes;
    /* an image model says so twice: "input" and the schema's "image" */
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(out->header, "input");
    int says_images = cJSON_IsString(input) && strcmp(input->valuestring, "images") == 0;
    if ((input != NULL && !says_images) || says_images != (out->schema.image_channels > 0)) {
        modelfile_free(out);
        return bad(err, errlen, "the header's input and schema disagree (images or a table)");
    }

    uint64_t plen = 0, wlen = 0;
    if (pd_reader_get_u64(&r, &plen) < 0 || plen > r.left) {
        modelfile_free(out);
        return bad(err, errlen, "truncated preprocessing section");
    }
    struct pd_reader sec;
    pd_reader_init(&sec, r.p, (size_t)plen);
    r.p += plen;
    r.left -= (size_t)plen;
    int rc = prep_load(&sec, &out->schema, &out->prep, sub, sizeof sub);
    if (rc == 0 && sec.left != 0) rc = PD_EFORMAT, snprintf(sub, sizeof sub, "preprocessing section: trailing bytes");
    if (rc != 0) {
        modelfile_free(out);
        snprintf(err, errlen, "not a valid Podium model file: %s", sub);
        return rc == PD_ENOMEM ? rc : PD_EFORMAT;
    }
    if (pd_reader_get_u64(&r, &wlen) < 0 || wlen != r.left) {
        modelfile_free(out);
        return bad(err, errlen, "truncated or oversized weights section");
    }
    pd_reader_init(&sec, r.p, (size_t)wlen);
    rc = out->family->load(&sec, &out->model, sub, sizeof sub);
    if (rc == 0 && sec.left != 0) rc = PD_EFORMAT, snprintf(sub, sizeof sub, "trailing bytes");
    if (rc != 0) {
        modelfile_free(out);
        snprintf(err, errlen, "not a valid Podium model file: weights: %s", sub);
        return rc == PD_ENOMEM ? rc : PD_EFORMAT;
    }
    /* The weights must take what the preprocessing gives and give what the
     * header promises: predict fills a buffer sized from the header. */
    if (out->family->shape) {
        size_t inputs = 0, outputs = 0;
        out->family->shape(out->model, &inputs, &outputs);
        size_t want = out->task.kind == PD_TASK_CLASSIFICATION ? (size_t)out->task.n_classes : 1;
        size_t width = prep_width(out->prep);
        if (outputs != want || inputs != width) {
            modelfile_free(out);
            snprintf(err, errlen,
                     "not a valid Podium model file: the weights (%zu inputs, %zu outputs) do not "
                     "match the header (%zu inputs, %zu outputs)",
                     inputs, outputs, width, want);
            return PD_EFORMAT;
        }
    }
    /* an ensemble's members predict from frames built with this schema */
    if (out->family == &pd_family_ensemble &&
        ensemble_check_schema(out->model, &out->schema, sub, sizeof sub) != 0) {
        modelfile_free(out);
        snprintf(err, errlen, "not a valid Podium model file: weights: %s", sub);
        return PD_EFORMAT;
    }
    return 0;
}

int modelfile_load(const char *path, struct modelfile *out, char *err,
                   size_t errlen)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return PD_EFORMAT;
    }
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            if (cap >= MODELFILE_MAX_BYTES) {
                free(buf);
                fclose(f);
                snprintf(err, errlen, "%s: larger than the model file limit", path);
                return PD_EFORMAT;
            }
            size_t ncap = cap ? cap * 2 : 1 << 16;
            unsigned char *nb = realloc(buf, ncap);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                snprintf(err, errlen, "out of memory");
                return PD_ENOMEM;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    int ioerr = ferror(f);
    fclose(f);
    if (ioerr) {
        free(buf);
        snprintf(err, errlen, "%s: read error", path);
        return PD_EFORMAT;
    }
    char sub[384];
    int rc = modelfile_decode(buf, len, out, sub, sizeof sub);
    free(buf);
    if (rc != 0) snprintf(err, errlen, "%s: %s", path, sub);
    return rc;
}

void modelfile_free(struct modelfile *m)
{
    if (m == NULL) return;
    if (m->family && m->model) m->family->model_free(m->model);
    prep_free(m->prep);
    schema_free(&m->schema);
    cJSON_Delete(m->header);
    memset(m, 0, sizeof *m);
}

int modelfile_predict(const struct modelfile *m, const struct schema_frame *f,
                      int threads, double *out, char *err, size_t errlen)
{
    /* an ensemble has no features of its own: each member applies its
     * own preprocessing to the frame (ensemble.h) */
    if (m->family == &pd_family_ensemble)
        return ensemble_predict_frame(m->model, f, threads, out, err, errlen);
    size_t n = f->n_rows, d = prep_width(m->prep);
    if (n == 0) return 0;
    float *x = malloc(n * (d ? d : 1) * sizeof *x);
    if (x == NULL) {
        snprintf(err, errlen, "out of memory");
        return PD_ENOMEM;
    }
    prep_transform(m->prep, f, NULL, n, x);
    int rc = m->family->predict(m->model, x, n, d, threads, out);
    free(x);
    if (rc != 0) snprintf(err, errlen, "%s: predict failed (%d)", m->family->name, rc);
    return rc;
}
