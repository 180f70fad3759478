/*
 * predict_main.c - podium-predict: apply a model file written by
 * podium-train to raw CSV rows.
 *
 *   podium-predict MODEL [ROWS.csv] < rows.csv > predictions.csv
 *
 * Columns are matched by name in any order; the target and any extra
 * column are ignored; a training column that is missing is an error naming
 * it. Unseen categories and missing values are handled as in training
 * (preprocess.h). Output: a header "prediction" (+ "proba_<class>" per
 * class for classification), then one line per input row, numbers with
 * 17 significant digits (they read back to the same double).
 * Image models (trained on an image archive, trainers/imagedata.h):
 *
 *   podium-predict MODEL IMAGE.png|IMAGE.jpg|ARCHIVE [< same] > predictions.csv
 *
 * The input is one PNG/JPEG or an archive of them (zip, tar, tar.gz; class
 * folders or flat: folder names are ignored). Output: a header "name",
 * "prediction", "proba_<class>" per class, "error"; one line per image in
 * archive order: a readable image gets its class and probabilities and an
 * empty error, an unreadable one empty predictions and the decoder's
 * message. An image of another size than the model's is resized as in
 * training (a note on stderr says so). A single image that does not decode,
 * an archive that is refused (unsafe path, size limits, damage), or an
 * archive with no readable image: exit 2 with the message on stderr.
 *
 * Exit: 0 ok; 2 bad model file or bad input rows; 3 internal failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "lib/csv.h"
#include "lib/image.h"
#include "trainers/imagedata.h"
#include "trainers/modelfile.h"
#include "trainers/schema.h"

enum { EXIT_BAD_INPUT = 2, EXIT_INTERNAL = 3 };

static char *read_stream(FILE *f, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (buf == NULL) return NULL;
    for (;;) {
        if (n == cap) {
            char *b = cap < ((size_t)4 << 30) ? realloc(buf, cap * 2) : NULL;
            if (b == NULL) {
                free(buf);
                return NULL;
            }
            buf = b;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

static void put_field(FILE *f, const char *s)
{
    if (strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

struct img_out {
    const struct modelfile *m;
    size_t predicted, failed, resized;
    int header_done;
};

/* The header, written with the first image (nothing on stdout when the
 * input fails as a whole). */
static void image_header(struct img_out *o)
{
    if (o->header_done++) return;
    fputs("name,prediction", stdout);
    for (int k = 0; k < o->m->task.n_classes; k++) {
        char name[1100];
        snprintf(name, sizeof name, "proba_%s", o->m->schema.classes[k]);
        fputc(',', stdout);
        put_field(stdout, name);
    }
    fputs(",error\n", stdout);
}

static int on_image(void *ctx, const struct imagedata_pred *p)
{
    struct img_out *o = ctx;
    image_header(o);
    put_field(stdout, p->name);
    fputc(',', stdout);
    int K = o->m->task.n_classes;
    if (p->error) {
        for (int k = 0; k < K; k++) fputc(',', stdout);
        fputc(',', stdout);
        put_field(stdout, p->error);
        o->failed++;
    } else {
        put_field(stdout, o->m->schema.classes[p->cls]);
        for (int k = 0; k < K; k++) printf(",%.17g", p->proba[k]);
        fputc(',', stdout);
        o->predicted++;
        if (p->resized && o->resized++ < 10)
            fprintf(stderr, "podium-predict: %s: %ux%u, resized to the model's %ux%u as in training\n",
                    p->name, (unsigned)p->width, (unsigned)p->height, o->m->schema.image_width,
                    o->m->schema.image_height);
    }
    fputc('\n', stdout);
    return ferror(stdout) ? -1 : 0;
}

/* An image model: one image or an archive (a path, or stdin read whole). */
static int predict_images(const struct modelfile *m, const char *path)
{
    struct img_out o = {m, 0, 0, 0, 0};
    struct imagedata_predict_opts po;
    memset(&po, 0, sizeof po);
    po.threads = 1;
    char err[1024];
    int rc;
    if (path) {
        rc = imagedata_predict_file(m, path, &po, on_image, &o, err, sizeof err);
    } else {
        size_t len = 0;
        char *buf = read_stream(stdin, &len);
        if (buf == NULL) {
            fprintf(stderr, "podium-predict: cannot read the images from stdin\n");
            return EXIT_BAD_INPUT;
        }
        rc = imagedata_predict_buffer(m, buf, len, "stdin", &po, on_image, &o, err, sizeof err);
        free(buf);
    }
    if (o.resized > 10)
        fprintf(stderr, "podium-predict: %zu images in all were resized to %ux%u\n", o.resized,
                m->schema.image_width, m->schema.image_height);
    if (rc == IMAGEDATA_EARCHIVE) {
        fprintf(stderr, "podium-predict: %s: %s (the model takes a PNG or JPEG image, or a zip, "
                "tar or tar.gz archive of them)\n", path ? path : "stdin", err);
        return EXIT_BAD_INPUT;
    }
    if (rc == IMAGEDATA_EIMAGE || rc == IMAGEDATA_ELIMIT) {
        fprintf(stderr, "podium-predict: %s\n", err);
        return EXIT_BAD_INPUT;
    }
    if (rc != 0) {
        fprintf(stderr, "podium-predict: %s\n", err);
        return EXIT_INTERNAL;
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "podium-predict: write error\n");
        return EXIT_INTERNAL;
    }
    if (o.predicted == 0) {
        fprintf(stderr, "podium-predict: %s: no readable image (%zu could not be decoded)\n",
                path ? path : "stdin", o.failed);
        return EXIT_BAD_INPUT;
    }
    return 0;
}

/* 1 when the first bytes of a file look like an image or an archive, not CSV. */
static int looks_binary(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) return 0;
    unsigned char h[8];
    size_t n = fread(h, 1, sizeof h, f);
    fclose(f);
    return image_sniff(h, n) != IMAGE_UNKNOWN || (n >= 2 && h[0] == 0x1f && h[1] == 0x8b) ||
           (n >= 4 && memcmp(h, "PK\x03\x04", 4) == 0);
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fprintf(argc >= 2 ? stdout : stderr,
                "usage: podium-predict MODEL [ROWS.csv] [< ROWS.csv] > predictions.csv\n"
                "       podium-predict IMAGE_MODEL IMAGE|ARCHIVE [< same] > predictions.csv\n"
                "Writes \"prediction\" and, for classification, one proba_<class> column per class;\n"
                "for an image model \"name\" first and \"error\" last, one line per image.\n"
                "exit status: 0 ok, 2 bad model file or input rows, 3 internal failure.\n");
        return argc >= 2 ? 0 : EXIT_BAD_INPUT;
    }
    openblas_set_num_threads(1);
    char err[1024];
    struct modelfile m;
    int rc = modelfile_load(argv[1], &m, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "podium-predict: %s\n", err);
        return rc == PD_ENOMEM ? EXIT_INTERNAL : EXIT_BAD_INPUT;
    }

    if (imagedata_is_image_model(&m)) {
        int status = predict_images(&m, argc == 3 ? argv[2] : NULL);
        modelfile_free(&m);
        return status;
    }
    if (argc == 3 && looks_binary(argv[2])) {
        fprintf(stderr, "podium-predict: %s: the model was trained on a table and takes CSV rows, "
                "not images or archives\n", argv[2]);
        modelfile_free(&m);
        return EXIT_BAD_INPUT;
    }

    struct csv_table t;
    struct csv_error ce;
    memset(&ce, 0, sizeof ce);
    struct csv_opts co = {0}; /* header: auto, as podium-train reads */
    if (argc == 3) {
        rc = csv_table_load_file(argv[2], &co, &t, &ce);
    } else {
        size_t len = 0;
        char *buf = read_stream(stdin, &len);
        if (buf == NULL) {
            fprintf(stderr, "podium-predict: cannot read the rows from stdin\n");
            modelfile_free(&m);
            return EXIT_BAD_INPUT;
        }
        rc = csv_table_load_buffer(buf, len, &co, &t, &ce);
        free(buf);
    }
    if (rc != 0) {
        fprintf(stderr, "podium-predict: input rows: %s\n", ce.message);
        modelfile_free(&m);
        return rc == CSV_ENOMEM ? EXIT_INTERNAL : EXIT_BAD_INPUT;
    }

    struct schema_frame f;
    if (schema_frame_build(&m.schema, &t, &f, err, sizeof err) < 0) {
        fprintf(stderr, "podium-predict: input rows: %s\n", err);
        csv_table_free(&t);
        modelfile_free(&m);
        return EXIT_BAD_INPUT;
    }
    int K = m.task.kind == PD_TASK_CLASSIFICATION ? m.task.n_classes : 1;
    double *out = malloc((t.n_rows * (size_t)K + 1) * sizeof *out);
    int status = 0;
    if (out == NULL) {
        fprintf(stderr, "podium-predict: out of memory\n");
        status = EXIT_INTERNAL;
    } else if ((rc = modelfile_predict(&m, &f, 1, out, err, sizeof err)) != 0) {
        fprintf(stderr, "podium-predict: %s\n", err);
        status = EXIT_INTERNAL;
    } else {
        fputs("prediction", stdout);
        for (int k = 0; K > 1 && k < K; k++) {
            char name[1100];
            snprintf(name, sizeof name, "proba_%s", m.schema.classes[k]);
            fputc(',', stdout);
            put_field(stdout, name);
        }
        fputc('\n', stdout);
        for (size_t i = 0; i < t.n_rows; i++) {
            const double *p = out + i * (size_t)K;
            if (m.task.kind == PD_TASK_CLASSIFICATION) {
                int best = 0;
                for (int k = 1; k < K; k++) if (p[k] > p[best]) best = k;
                put_field(stdout, m.schema.classes[best]);
                for (int k = 0; k < K; k++) printf(",%.17g", p[k]);
            } else {
                printf("%.17g", p[0]);
            }
            fputc('\n', stdout);
        }
        if (fflush(stdout) != 0 || ferror(stdout)) {
            fprintf(stderr, "podium-predict: write error\n");
            status = EXIT_INTERNAL;
        }
    }
    free(out);
    schema_frame_free(&f);
    csv_table_free(&t);
    modelfile_free(&m);
    return status;
}
