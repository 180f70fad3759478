/*
 * imagedata.c - see imagedata.h. The archive is walked by lib/imageset
 * (one place for the layout, the safety rules and the class names); this
 * module only collects what the walk hands over: it maps each image's
 * class name to a temporary index (a small hash table, in order of first
 * sight), resizes the pixels with nn/augment's aug_resize into a growing
 * float matrix, and after the walk renumbers the labels in the profile's
 * class order. Prediction queues the walk's images (readable or not) in
 * batches of PRED_BATCH, predicts a batch through the model file's own
 * preprocessing (modelfile_predict on a frame of pixel columns) and
 * answers the queue in order.
 */
#include "trainers/imagedata.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nn/augment.h"

#define PRED_BATCH 64

__attribute__((format(printf, 4, 5)))
static int set_err(char *err, size_t errlen, int status, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return status;
}

/* ---- class names seen during the walk ---------------------------------- */

struct name_map {
    char **names;            /* in order of first sight */
    size_t n, cap_names;
    int *slots;              /* open addressing: index + 1, 0 = empty */
    size_t cap;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int map_grow(struct name_map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    int *slots = calloc(cap, sizeof *slots);
    if (slots == NULL) return -1;
    for (size_t i = 0; i < m->n; i++) {
        size_t j = hash_str(m->names[i]) & (cap - 1);
        while (slots[j]) j = (j + 1) & (cap - 1);
        slots[j] = (int)i + 1;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

/* The index of name, added when new (add != 0); -1 when absent or out of memory. */
static int map_index(struct name_map *m, const char *name, int add)
{
    if (m->cap == 0 || (add && (m->n + 1) * 2 > m->cap)) {
        if (!add) return -1;
        if (map_grow(m) < 0) return -1;
    }
    size_t j = hash_str(name) & (m->cap - 1);
    while (m->slots[j]) {
        if (strcmp(m->names[m->slots[j] - 1], name) == 0) return m->slots[j] - 1;
        j = (j + 1) & (m->cap - 1);
    }
    if (!add) return -1;
    if (m->n == m->cap_names) {
        size_t nc = m->cap_names ? m->cap_names * 2 : 16;
        char **names = realloc(m->names, nc * sizeof *names);
        if (names == NULL) return -1;
        m->names = names;
        m->cap_names = nc;
    }
    if ((m->names[m->n] = strdup(name)) == NULL) return -1;
    m->slots[j] = (int)m->n + 1;
    return (int)m->n++;
}

static void map_free(struct name_map *m)
{
    for (size_t i = 0; i < m->n; i++) free(m->names[i]);
    free(m->names);
    free(m->slots);
    memset(m, 0, sizeof *m);
}

/* ---- conversion ---------------------------------------------------------- */

int imagedata_convert(const struct image_pixels *px, int channels, unsigned height,
                      unsigned width, float *dst, char *err, size_t errlen)
{
    struct aug_image im = {px->data, px->width, px->height, px->channels, 0};
    char msg[256] = "";
    int rc = aug_resize(&im, channels, height, width, dst, msg, sizeof msg);
    if (rc == AUG_ENOMEM) return set_err(err, errlen, IMAGEDATA_ENOMEM, "out of memory");
    if (rc != 0) return set_err(err, errlen, IMAGEDATA_EDATA, "resize: %s", msg);
    return 0;
}

int imagedata_frame(const float *x, size_t dim, const size_t *rows, size_t n,
                    struct schema_frame *f)
{
    memset(f, 0, sizeof *f);
    f->n_rows = n;
    f->n_cols = dim;
    f->num = calloc(dim + 1, sizeof *f->num);
    f->str = calloc(dim + 1, sizeof *f->str);
    if (f->num == NULL || f->str == NULL) goto oom;
    for (size_t c = 0; c < dim; c++)
        if ((f->num[c] = malloc((n + 1) * sizeof *f->num[c])) == NULL) goto oom;
    /* row by row: each image's values are contiguous in x */
    for (size_t i = 0; i < n; i++) {
        const float *row = x + (rows ? rows[i] : i) * dim;
        for (size_t c = 0; c < dim; c++) f->num[c][i] = row[c];
    }
    return 0;
oom:
    schema_frame_free(f);
    return -1;
}

int imagedata_is_image_model(const struct modelfile *m)
{
    return m && m->schema.image_channels > 0;
}

int imagedata_defaults(const cJSON *profile, int *channels, unsigned *height,
                       unsigned *width)
{
    const cJSON *mc = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(profile, "sizes"), "most_common");
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(mc, "width");
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(mc, "height");
    if (!cJSON_IsNumber(w) || !cJSON_IsNumber(h) || w->valuedouble < 1 || h->valuedouble < 1)
        return -1;
    *width = (unsigned)w->valuedouble;
    *height = (unsigned)h->valuedouble;
    /* grey when no image has colour: channel counts 3 and 4 absent */
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(profile, "channels");
    int colour = cJSON_GetObjectItemCaseSensitive(ch, "3") != NULL ||
                 cJSON_GetObjectItemCaseSensitive(ch, "4") != NULL;
    *channels = colour ? 3 : 1;
    return 0;
}

/* ---- loading ------------------------------------------------------------- */

struct load_ctx {
    struct imagedata *d;
    unsigned flags;
    uint64_t max_bytes;
    size_t cap;              /* images the arrays hold */
    uint64_t raw_bytes;
    struct name_map seen;
    int status;              /* set by the callback when it stops the walk */
    char *err;
    size_t errlen;
};

static int load_item(void *ctx, const struct imageset_item *it)
{
    struct load_ctx *L = ctx;
    struct imagedata *d = L->d;
    if (it->pixels == NULL) {
        d->unreadable++;
        return 0;
    }
    if (it->class_name == NULL) return 0;   /* not asked for (no FLAT) */
    uint64_t row_bytes = (uint64_t)d->dim * sizeof(float);
    if ((L->flags & IMAGEDATA_FEATURES) && (uint64_t)(d->n + 1) * row_bytes > L->max_bytes) {
        L->status = set_err(L->err, L->errlen, IMAGEDATA_ELIMIT,
                            "images: more than %zu images of %d x %u x %u values need more than "
                            "%llu bytes as floats, over the limit of %llu bytes; choose a "
                            "smaller image size or fewer images",
                            d->n, d->channels, d->height, d->width,
                            (unsigned long long)((uint64_t)d->n * row_bytes),
                            (unsigned long long)L->max_bytes);
        return -1;
    }
    uint64_t px_bytes = (uint64_t)it->pixels->width * it->pixels->height * (uint64_t)it->pixels->channels;
    if ((L->flags & IMAGEDATA_RAW) && L->raw_bytes + px_bytes > L->max_bytes) {
        L->status = set_err(L->err, L->errlen, IMAGEDATA_ELIMIT,
                            "images: the decoded images pass %llu bytes at %s (image %zu), over "
                            "the limit of %llu bytes",
                            (unsigned long long)L->raw_bytes, it->name, d->n + 1,
                            (unsigned long long)L->max_bytes);
        return -1;
    }
    if (d->n == L->cap) {
        size_t cap = L->cap ? L->cap + L->cap / 2 : 256;
        if ((L->flags & IMAGEDATA_FEATURES) && (uint64_t)cap * row_bytes > L->max_bytes)
            cap = (size_t)(L->max_bytes / row_bytes);
        if (cap <= d->n) cap = d->n + 1;
        int ok = 1;
        int *label = realloc(d->label, cap * sizeof *label);
        if (label) d->label = label;
        else ok = 0;
        if (ok && (L->flags & IMAGEDATA_FEATURES)) {
            float *x = realloc(d->x, cap * d->dim * sizeof *x);
            if (x) d->x = x;
            else ok = 0;
        }
        if (ok && (L->flags & IMAGEDATA_RAW)) {
            struct image_pixels *raw = realloc(d->raw, cap * sizeof *raw);
            if (raw) d->raw = raw;
            else ok = 0;
        }
        if (ok && (L->flags & IMAGEDATA_NAMES)) {
            char **names = realloc(d->names, cap * sizeof *names);
            if (names) d->names = names;
            else ok = 0;
        }
        if (!ok) {
            L->status = set_err(L->err, L->errlen, IMAGEDATA_ENOMEM, "out of memory at %zu images", d->n);
            return -1;
        }
        L->cap = cap;
    }
    int k = map_index(&L->seen, it->class_name, 1);
    if (k < 0) {
        L->status = set_err(L->err, L->errlen, IMAGEDATA_ENOMEM, "out of memory");
        return -1;
    }
    if (L->flags & IMAGEDATA_FEATURES) {
        int rc = imagedata_convert(it->pixels, d->channels, d->height, d->width,
                                   d->x + d->n * d->dim, L->err, L->errlen);
        if (rc != 0) {
            L->status = rc;
            return -1;
        }
    }
    if (L->flags & IMAGEDATA_NAMES) {
        if ((d->names[d->n] = strdup(it->name)) == NULL) {
            L->status = set_err(L->err, L->errlen, IMAGEDATA_ENOMEM, "out of memory");
            return -1;
        }
    }
    if (L->flags & IMAGEDATA_RAW) {
        struct image_pixels *r = &d->raw[d->n];
        *r = *it->pixels;
        if ((r->data = malloc(px_bytes ? (size_t)px_bytes : 1)) == NULL) {
            memset(r, 0, sizeof *r);
            if (L->flags & IMAGEDATA_NAMES) free(d->names[d->n]);
            L->status = set_err(L->err, L->errlen, IMAGEDATA_ENOMEM, "out of memory");
            return -1;
        }
        memcpy(r->data, it->pixels->data, (size_t)px_bytes);
        L->raw_bytes += px_bytes;
    }
    d->label[d->n] = k;
    d->n++;
    return 0;
}

static int archive_status(const struct imageset_error *e, char *err, size_t errlen)
{
    if (e->code == IMAGESET_ENOMEM) return set_err(err, errlen, IMAGEDATA_ENOMEM, "out of memory");
    return set_err(err, errlen, IMAGEDATA_EARCHIVE, "%s", e->message[0] ? e->message
                                                                      : imageset_strerror(e->code));
}

int imagedata_load_file(const char *path, const struct imagedata_opts *o,
                        struct imagedata *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    struct imagedata_opts O = o ? *o : (struct imagedata_opts){.flags = IMAGEDATA_FEATURES};
    struct load_ctx L = {.d = out, .flags = O.flags, .err = err, .errlen = errlen};
    L.max_bytes = O.max_bytes ? O.max_bytes : IMAGEDATA_DEFAULT_MAX_BYTES;
    struct imageset_error ie;
    int status = 0;
    int *remap = NULL;

    out->channels = O.channels;
    out->height = O.height;
    out->width = O.width;
    if (O.channels == 0 || O.height == 0 || O.width == 0) {
        /* the defaults come from a profile: one walk more */
        cJSON *p = NULL;
        if (imageset_profile_file(path, &O.limits, &p, &ie) != 0) {
            status = archive_status(&ie, err, errlen);
            goto fail;
        }
        int ch;
        unsigned h, w;
        int rc = imagedata_defaults(p, &ch, &h, &w);
        cJSON_Delete(p);
        if (rc < 0) {
            status = set_err(err, errlen, IMAGEDATA_EDATA, "images: the archive's profile has no sizes");
            goto fail;
        }
        if (!out->channels) out->channels = ch;
        if (!out->height) out->height = h;
        if (!out->width) out->width = w;
    }
    if (out->channels != 1 && out->channels != 3) {
        status = set_err(err, errlen, IMAGEDATA_EDATA, "image.channels: must be 1 or 3, got %d",
                         out->channels);
        goto fail;
    }
    if (out->height > AUG_MAX_OUT_SIDE || out->width > AUG_MAX_OUT_SIDE) {
        status = set_err(err, errlen, IMAGEDATA_EDATA,
                         "image: %u x %u is larger than %u pixels a side", out->height,
                         out->width, AUG_MAX_OUT_SIDE);
        goto fail;
    }
    out->dim = (size_t)out->channels * out->height * out->width;

    int rc = imageset_visit_file(path, &O.limits, 0, load_item, &L, &out->profile, &ie);
    if (rc != 0) {
        status = rc == IMAGESET_ESTOPPED && L.status ? L.status : archive_status(&ie, err, errlen);
        goto fail;
    }
    /* the labels in the profile's class order */
    const cJSON *classes = cJSON_GetObjectItemCaseSensitive(out->profile, "classes");
    int nk = cJSON_GetArraySize(classes);
    if (nk < 2) {
        status = set_err(err, errlen, IMAGEDATA_EDATA,
                         "images: %d class%s with readable images; a classifier needs at least 2",
                         nk, nk == 1 ? "" : "es");
        goto fail;
    }
    out->classes = calloc((size_t)nk, sizeof *out->classes);
    remap = malloc((L.seen.n + 1) * sizeof *remap);
    if (out->classes == NULL || remap == NULL) {
        status = set_err(err, errlen, IMAGEDATA_ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < L.seen.n; i++) remap[i] = -1;
    for (int k = 0; k < nk; k++) {
        const char *name = cJSON_GetStringValue(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(classes, k), "name"));
        if (name == NULL || (out->classes[k] = strdup(name)) == NULL) {
            status = set_err(err, errlen, IMAGEDATA_ENOMEM, "out of memory");
            goto fail;
        }
        out->n_classes = k + 1;
        int s = map_index(&L.seen, name, 0);
        if (s >= 0) remap[s] = k;
    }
    for (size_t i = 0; i < out->n; i++) {
        int k = remap[out->label[i]];
        if (k < 0) {
            status = set_err(err, errlen, IMAGEDATA_EDATA,
                             "images: class '%s' is not in the archive's profile",
                             L.seen.names[out->label[i]]);
            goto fail;
        }
        out->label[i] = k;
    }
    free(remap);
    map_free(&L.seen);
    return 0;
fail:
    free(remap);
    map_free(&L.seen);
    imagedata_free(out);
    return status;
}

void imagedata_free(struct imagedata *d)
{
    if (d == NULL) return;
    for (size_t i = 0; d->raw && i < d->n; i++) image_pixels_free(&d->raw[i]);
    for (size_t i = 0; d->names && i < d->n; i++) free(d->names[i]);
    for (int k = 0; d->classes && k < d->n_classes; k++) free(d->classes[k]);
    free(d->raw);
    free(d->names);
    free(d->classes);
    free(d->x);
    free(d->label);
    cJSON_Delete(d->profile);
    memset(d, 0, sizeof *d);
}

/* ---- prediction -------------------------------------------------------- */

struct pending {
    char *name;
    char *error;             /* NULL: predicted from row `slot` of the batch */
    size_t slot;
    int resized;
    uint32_t width, height;
};

struct pred_ctx {
    const struct modelfile *m;
    const struct imagedata_predict_opts *o;
    imagedata_pred_fn fn;
    void *fn_ctx;
    int K;
    size_t dim;
    float *x;                /* PRED_BATCH rows */
    double *proba;           /* PRED_BATCH * K */
    struct pending q[PRED_BATCH];
    size_t nq, nx;
    size_t count;            /* images seen, readable or not */
    int status;
    char *err;
    size_t errlen;
};

static void pending_clear(struct pred_ctx *P)
{
    for (size_t i = 0; i < P->nq; i++) {
        free(P->q[i].name);
        free(P->q[i].error);
    }
    memset(P->q, 0, sizeof P->q);
    P->nq = P->nx = 0;
}

/* Predict the batch and answer the queue in order. 0 or a status. */
static int flush(struct pred_ctx *P)
{
    int status = 0;
    if (P->nx > 0) {
        struct schema_frame f;
        char msg[512];
        if (imagedata_frame(P->x, P->dim, NULL, P->nx, &f) < 0) {
            status = set_err(P->err, P->errlen, IMAGEDATA_ENOMEM, "out of memory");
            goto done;
        }
        int threads = P->o && P->o->threads > 0 ? P->o->threads : 1;
        int rc = modelfile_predict(P->m, &f, threads, P->proba, msg, sizeof msg);
        schema_frame_free(&f);
        if (rc != 0) {
            status = set_err(P->err, P->errlen, rc == PD_ENOMEM ? IMAGEDATA_ENOMEM : IMAGEDATA_EMODEL,
                             "%s", msg);
            goto done;
        }
    }
    for (size_t i = 0; i < P->nq; i++) {
        const struct pending *q = &P->q[i];
        struct imagedata_pred pr = {q->name, q->error, -1, NULL, q->resized, q->width, q->height};
        if (q->error == NULL) {
            pr.proba = P->proba + q->slot * (size_t)P->K;
            pr.cls = 0;
            for (int k = 1; k < P->K; k++)
                if (pr.proba[k] > pr.proba[pr.cls]) pr.cls = k;
        }
        if (P->fn(P->fn_ctx, &pr) != 0) {
            status = set_err(P->err, P->errlen, IMAGEDATA_EMODEL, "stopped");
            goto done;
        }
    }
done:
    pending_clear(P);
    return status;
}

/* Queue one image (px NULL: unreadable, with error). */
static int pred_add(struct pred_ctx *P, const char *name, const struct image_pixels *px,
                    const char *error)
{
    if (P->o && P->o->max_images && P->count >= P->o->max_images)
        return set_err(P->err, P->errlen, IMAGEDATA_ELIMIT,
                       "more than %zu images to predict", P->o->max_images);
    P->count++;
    struct pending *q = &P->q[P->nq];
    memset(q, 0, sizeof *q);
    if ((q->name = strdup(name ? name : "")) == NULL)
        return set_err(P->err, P->errlen, IMAGEDATA_ENOMEM, "out of memory");
    P->nq++;
    if (px == NULL) {
        if ((q->error = strdup(error ? error : "not a readable image")) == NULL)
            return set_err(P->err, P->errlen, IMAGEDATA_ENOMEM, "out of memory");
    } else {
        const struct schema *s = &P->m->schema;
        q->width = px->width;
        q->height = px->height;
        q->resized = px->width != s->image_width || px->height != s->image_height;
        char msg[256];
        int rc = imagedata_convert(px, s->image_channels, s->image_height, s->image_width,
                                   P->x + P->nx * P->dim, msg, sizeof msg);
        if (rc == IMAGEDATA_ENOMEM) return set_err(P->err, P->errlen, rc, "out of memory");
        if (rc != 0) {
            if ((q->error = strdup(msg)) == NULL)
                return set_err(P->err, P->errlen, IMAGEDATA_ENOMEM, "out of memory");
        } else {
            q->slot = P->nx++;
        }
    }
    if (P->nq == PRED_BATCH) return flush(P);
    return 0;
}

static int pred_item(void *ctx, const struct imageset_item *it)
{
    struct pred_ctx *P = ctx;
    int rc = pred_add(P, it->name, it->pixels, it->error);
    if (rc != 0) {
        P->status = rc;
        return -1;
    }
    return 0;
}

static int pred_init(struct pred_ctx *P, const struct modelfile *m,
                     const struct imagedata_predict_opts *o, imagedata_pred_fn fn, void *ctx,
                     char *err, size_t errlen)
{
    memset(P, 0, sizeof *P);
    P->m = m;
    P->o = o;
    P->fn = fn;
    P->fn_ctx = ctx;
    P->err = err;
    P->errlen = errlen;
    if (!imagedata_is_image_model(m) || m->task.kind != PD_TASK_CLASSIFICATION)
        return set_err(err, errlen, IMAGEDATA_EMODEL,
                       "the model was trained on a table, not on images: send CSV rows");
    P->K = m->task.n_classes;
    P->dim = (size_t)m->schema.image_channels * m->schema.image_height * m->schema.image_width;
    if (P->dim != m->schema.n_cols)
        return set_err(err, errlen, IMAGEDATA_EMODEL, "the model's image schema is inconsistent");
    P->x = malloc(PRED_BATCH * P->dim * sizeof *P->x);
    P->proba = malloc(PRED_BATCH * (size_t)P->K * sizeof *P->proba);
    if (P->x == NULL || P->proba == NULL)
        return set_err(err, errlen, IMAGEDATA_ENOMEM, "out of memory");
    return 0;
}

static void pred_free(struct pred_ctx *P)
{
    pending_clear(P);
    free(P->x);
    free(P->proba);
}

/* One PNG/JPEG in memory. */
static int pred_single(struct pred_ctx *P, const void *buf, size_t len, const char *name)
{
    struct image_pixels px;
    char msg[256];
    int rc = image_decode(buf, len, P->o ? &P->o->image : NULL, NULL, &px, msg, sizeof msg);
    if (rc == IMAGE_ENOMEM) return set_err(P->err, P->errlen, IMAGEDATA_ENOMEM, "out of memory");
    if (rc != 0) return set_err(P->err, P->errlen, IMAGEDATA_EIMAGE, "%s: %s", name, msg);
    rc = pred_add(P, name, &px, NULL);
    image_pixels_free(&px);
    return rc ? rc : flush(P);
}

static int pred_archive_done(struct pred_ctx *P, int rc, const struct imageset_error *ie)
{
    if (rc == IMAGESET_ESTOPPED && P->status) return P->status;
    if (rc != 0) return archive_status(ie, P->err, P->errlen);
    return flush(P);
}

/* The archive limits, with the per-image limits of the options. */
static struct imageset_limits archive_limits(const struct imagedata_predict_opts *o)
{
    struct imageset_limits lim = o ? o->limits : (struct imageset_limits){0};
    if (o) lim.image = o->image;
    return lim;
}

int imagedata_predict_buffer(const struct modelfile *m, const void *buf, size_t len,
                             const char *name, const struct imagedata_predict_opts *o,
                             imagedata_pred_fn fn, void *ctx, char *err, size_t errlen)
{
    struct pred_ctx P;
    int rc = pred_init(&P, m, o, fn, ctx, err, errlen);
    if (rc == 0) {
        if (image_sniff(buf, len) != IMAGE_UNKNOWN) {
            rc = pred_single(&P, buf, len, name ? name : "image");
        } else {
            struct imageset_error ie;
            struct imageset_limits lim = archive_limits(o);
            rc = imageset_visit_buffer(buf, len, &lim, IMAGESET_VISIT_FLAT, pred_item, &P, NULL,
                                       &ie);
            rc = pred_archive_done(&P, rc, &ie);
        }
    }
    pred_free(&P);
    return rc;
}

int imagedata_predict_file(const struct modelfile *m, const char *path,
                           const struct imagedata_predict_opts *o, imagedata_pred_fn fn,
                           void *ctx, char *err, size_t errlen)
{
    struct pred_ctx P;
    unsigned char *buf = NULL;
    int fd = -1;
    int rc = pred_init(&P, m, o, fn, ctx, err, errlen);
    if (rc != 0) goto out;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        rc = set_err(err, errlen, IMAGEDATA_EIMAGE, "%s: %s", path, strerror(errno));
        goto out;
    }
    unsigned char head[8];
    ssize_t got = read(fd, head, sizeof head);
    if (got < 0) {
        rc = set_err(err, errlen, IMAGEDATA_EIMAGE, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (image_sniff(head, (size_t)got) == IMAGE_UNKNOWN) {
        close(fd);
        fd = -1;
        struct imageset_error ie;
        struct imageset_limits lim = archive_limits(o);
        rc = imageset_visit_file(path, &lim, IMAGESET_VISIT_FLAT, pred_item, &P, NULL, &ie);
        rc = pred_archive_done(&P, rc, &ie);
        goto out;
    }
    /* one image: read it whole, bounded like an archive entry */
    uint64_t max = o && o->limits.max_entry_bytes ? o->limits.max_entry_bytes
                                                  : IMAGESET_DEFAULT_MAX_ENTRY_BYTES;
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
        rc = set_err(err, errlen, IMAGEDATA_EIMAGE, "%s: not a regular file of at most %llu bytes",
                     path, (unsigned long long)max);
        goto out;
    }
    size_t len = (size_t)st.st_size;
    if ((buf = malloc(len + 1)) == NULL) {
        rc = set_err(err, errlen, IMAGEDATA_ENOMEM, "out of memory");
        goto out;
    }
    memcpy(buf, head, (size_t)got);
    size_t have = (size_t)got;
    while (have < len) {
        ssize_t n = read(fd, buf + have, len - have);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        have += (size_t)n;
    }
    const char *base = strrchr(path, '/');
    rc = pred_single(&P, buf, have, base ? base + 1 : path);
out:
    if (fd >= 0) close(fd);
    free(buf);
    pred_free(&P);
    return rc;
}
