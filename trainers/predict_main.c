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
 * Exit: 0 ok; 2 bad model file or bad input rows; 3 internal failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "lib/csv.h"
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

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fprintf(argc >= 2 ? stdout : stderr,
                "usage: podium-predict MODEL [ROWS.csv] [< ROWS.csv] > predictions.csv\n"
                "Writes \"prediction\" and, for classification, one proba_<class> column per class.\n"
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
