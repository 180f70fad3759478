/*
 * train_main.c - podium-train: train and evaluate one model from a JSON
 * spec, reporting JSON Lines on stdout (see --help for the contract).
 *
 * This entry point reads and checks the spec; the model families
 * (trainers/family.h) are wired in by the trainers work.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

enum { EXIT_BAD_SPEC = 2, EXIT_INTERNAL = 3 };

static void usage(FILE *out)
{
    fprintf(out,
            "usage: podium-train SPEC.json\n"
            "       podium-train < SPEC.json\n\n"
            "Trains and cross-validates one model as the spec says, e.g.\n"
            "  {\"data\": \"iris.csv\", \"target\": \"species\", \"task\": \"classification\",\n"
            "   \"model\": {\"family\": \"gbm\", \"params\": {\"n_estimators\": 200}},\n"
            "   \"cv\": {\"folds\": 5, \"seed\": 0}, \"metric\": \"logloss\", \"threads\": 2,\n"
            "   \"artifact\": \"model.pdm\"}\n\n"
            "stdout: JSON Lines, progress events then one {\"event\": \"result\", ...}.\n"
            "stderr: log text.\n"
            "exit status: 0 success; 2 bad spec or data (with an {\"event\": \"error\"}\n"
            "line saying what and where); 3 internal failure.\n");
}

static int fail(int code, const char *where, const char *msg)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "event", "error");
    cJSON_AddStringToObject(e, "kind", code == EXIT_BAD_SPEC ? "bad_spec" : "internal");
    if (where) cJSON_AddStringToObject(e, "field", where);
    cJSON_AddStringToObject(e, "message", msg);
    char *text = cJSON_PrintUnformatted(e);
    if (text) {
        puts(text);
        free(text);
    }
    cJSON_Delete(e);
    return code;
}

static char *read_all(FILE *f, size_t limit, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (buf == NULL) return NULL;
    for (;;) {
        if (n + 1 >= cap) {
            if (cap >= limit) break;
            char *b = realloc(buf, cap * 2);
            if (b == NULL) break;
            buf = b;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) {
            buf[n] = '\0';
            *len = n;
            return buf;
        }
    }
    free(buf);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc > 2) {
        usage(stderr);
        return EXIT_BAD_SPEC;
    }
    FILE *in = stdin;
    if (argc == 2 && (in = fopen(argv[1], "rb")) == NULL)
        return fail(EXIT_BAD_SPEC, NULL, "cannot open the spec file");
    size_t len = 0;
    char *text = read_all(in, 1 << 20, &len);
    if (in != stdin) fclose(in);
    if (text == NULL) return fail(EXIT_BAD_SPEC, NULL, "the spec is unreadable or over 1 MiB");
    cJSON *spec = cJSON_ParseWithLength(text, len);
    free(text);
    if (!cJSON_IsObject(spec)) {
        cJSON_Delete(spec);
        return fail(EXIT_BAD_SPEC, NULL, "the spec is not a JSON object");
    }
    const char *required[] = {"data", "target", "model"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        if (cJSON_GetObjectItemCaseSensitive(spec, required[i]) == NULL) {
            cJSON_Delete(spec);
            return fail(EXIT_BAD_SPEC, required[i], "is required");
        }
    }
    cJSON_Delete(spec);
    return fail(EXIT_INTERNAL, "model.family", "no model family is built into this trainer yet");
}
