/*
 * fuzz_json_spec.c - libFuzzer entry point for the training job spec:
 * cJSON parsing then trainers/driver's driver_spec_parse, which checks
 * every member (data, target, task, model.family/params with each family's
 * own parameter checks through the registry, cv, metric, threads,
 * artifact). Not built by the Makefile; tests/fuzz/run.sh builds, seeds
 * and runs it. By hand, from the repository root:
 *
 *   P="libcjson openblas"
 *   clang -std=c11 -D_GNU_SOURCE -I. $(pkg-config --cflags $P) -g -O1 \
 *       -fsanitize=fuzzer,address,undefined tests/fuzz/fuzz_json_spec.c \
 *       $(ls trainers/[a-z]*.c | grep -v main.c) lib/csv.c lib/log.c \
 *       $(pkg-config --libs $P) -lpthread -lm -o build/fuzz/fuzz_json_spec
 *   ./build/fuzz/fuzz_json_spec -max_len=4096 -max_total_time=60 build/fuzz-corpus/json_spec
 *
 * The input is the spec's JSON text. A spec that parses has its
 * model.params checked by the family's params_parse (as driver_run does)
 * for each task the family supports.
 *
 * Besides memory safety and UB it checks the contract: success gives a
 * spec with data, target and family set, folds >= 2 or a holdout in (0, 1),
 * threads in 1..256; failure is DRIVER_EBADSPEC with a message, and the
 * error event built from it prints. driver_spec_free runs after both.
 * Params that a family accepts give effective params (params_json) that
 * it accepts again; params it refuses give a message.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "lib/log.h"
#include "trainers/driver.h"
#include "trainers/family.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property that failed: say which, then abort (libFuzzer saves the input). */
#define REQUIRE(c) do { if (!(c)) { fprintf(stderr, "%s:%d: property failed: %s\n", \
                                            __FILE__, __LINE__, #c); abort(); } } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    log_init("fuzz", LOG_ERROR); /* no "ignoring unknown member" warnings */
    return 0;
}

/* The family's own parameter checks, as driver_run does them, for both tasks. */
static void parse_params(const struct pd_family *fam, const cJSON *params)
{
    static const struct pd_task tasks[2] = {{PD_TASK_CLASSIFICATION, 3},
                                            {PD_TASK_REGRESSION, 0}};
    for (int i = 0; i < 2; i++) {
        if (i == 0 ? !fam->supports_classification : !fam->supports_regression) continue;
        void *p = NULL;
        char err[256];
        err[0] = '\0';
        if (fam->params_parse(params, &tasks[i], &p, err, sizeof err) == 0) {
            REQUIRE(p != NULL);
            cJSON *j = fam->params_json(p);
            REQUIRE(j != NULL);
            char *txt = cJSON_PrintUnformatted(j);
            REQUIRE(txt != NULL);
            /* the effective params must parse again (a retrain uses them) */
            void *p2 = NULL;
            REQUIRE(fam->params_parse(j, &tasks[i], &p2, err, sizeof err) == 0);
            fam->params_free(p2);
            free(txt);
            cJSON_Delete(j);
            fam->params_free(p);
        } else {
            REQUIRE(err[0] != '\0' && memchr(err, 0, sizeof err) != NULL);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *j = cJSON_ParseWithLength((const char *)data, size);
    if (j == NULL) return 0;
    struct driver_spec s;
    memset(&s, 0, sizeof s);
    struct driver_error e;
    memset(&e, 0, sizeof e);
    int rc = driver_spec_parse(j, &s, &e);
    if (rc == 0) {
        REQUIRE(s.data != NULL && s.target != NULL && s.family != NULL);
        REQUIRE((s.folds >= 2 && s.folds <= 1000) ||
                (s.folds == 0 && s.holdout > 0 && s.holdout < 1));
        REQUIRE(s.threads >= 1 && s.threads <= 256);
        if (s.metric >= 0) REQUIRE(driver_metric_name(s.metric) != NULL);
        parse_params(s.family, s.params);
    } else {
        REQUIRE(rc == DRIVER_EBADSPEC && e.status == rc && e.message[0] != '\0');
        REQUIRE(memchr(e.message, 0, sizeof e.message) != NULL);
        REQUIRE(memchr(e.field, 0, sizeof e.field) != NULL);
        cJSON *ev = driver_error_event(&e);
        REQUIRE(ev != NULL);
        char *txt = cJSON_PrintUnformatted(ev);
        REQUIRE(txt != NULL);
        free(txt);
        cJSON_Delete(ev);
    }
    driver_spec_free(&s);
    cJSON_Delete(j);
    return 0;
}
