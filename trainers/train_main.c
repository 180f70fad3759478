/*
 * train_main.c - podium-train: train and evaluate one model from a JSON
 * spec, reporting JSON Lines on stdout (see --help and trainers/driver.h
 * for the contract). A thin main over trainers/driver: read the spec, set
 * up signals and BLAS threads, run, print events, map the status to the
 * exit code. Log lines go to stderr.
 *
 * SIGTERM/SIGINT set a flag that the driver polls and hands to every fit
 * as opts.cancel; the families check it between iterations. As a backstop
 * for a step that does not poll (a long predict, a huge CSV load), a
 * watchdog thread gives the cooperative path 0.8 s, then removes the
 * temporary files itself and exits 4, so a cancelled run always ends
 * within a second and never leaves a partial artifact.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/prctl.h>
#include <sys/resource.h>

#include <cblas.h>
#include <cjson/cJSON.h>

#include "lib/log.h"
#include "trainers/driver.h"
#include "trainers/ensemble.h"

static volatile sig_atomic_t cancel_flag;

static void on_signal(int sig)
{
    (void)sig;
    cancel_flag = 1;
}

static char tmp_model[4096], tmp_oof[4096];

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {}
}

static void *watchdog(void *arg)
{
    (void)arg;
    while (!cancel_flag) sleep_ms(20);
    sleep_ms(800);
    if (tmp_model[0]) unlink(tmp_model);
    if (tmp_oof[0]) unlink(tmp_oof);
    static const char line[] =
        "{\"event\":\"error\",\"kind\":\"cancelled\",\"message\":\"cancelled (forced after 0.8 s)\"}\n";
    /* no fflush: it could wait on a lock the main thread holds; every
     * event is flushed as it is printed, so the buffer is empty anyway */
    ssize_t w = write(STDOUT_FILENO, line, sizeof line - 1);
    (void)w;
    _exit(4);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: podium-train SPEC.json\n"
            "       podium-train < SPEC.json\n\n"
            "Trains and cross-validates one model as the spec says, e.g.\n"
            "  {\"data\": \"iris.csv\", \"target\": \"species\", \"task\": \"classification\",\n"
            "   \"model\": {\"family\": \"gbm\", \"params\": {\"n_estimators\": 200}},\n"
            "   \"cv\": {\"folds\": 5, \"seed\": 0}, \"metric\": \"logloss\", \"threads\": 2,\n"
            "   \"artifact\": \"model.pdm\"}\n"
            "task: auto | classification | regression; cv may be {\"holdout\": 0.2, \"seed\": 0}.\n"
            "families: linear rf extratrees gbm knn nb mlp (scikit-learn parameter names).\n"
            "An ensemble of trained models (Caruana selection over their OOF predictions):\n"
            "  {\"ensemble\": {\"members\": [{\"artifact\": \"a.pdm\", \"oof\": \"a.pdm.oof.csv\"}, ...],\n"
            "   \"rounds\": 50}, \"metric\": \"logloss\", \"artifact\": \"ens.pdm\"}\n\n"
            "stdout: JSON Lines: start, fold, iteration, fold_done, refit events, then one\n"
            "{\"event\": \"result\", ...}; the out-of-fold predictions go to ARTIFACT.oof.csv.\n"
            "stderr: log lines.\n"
            "exit status: 0 success; 2 bad spec or data (an {\"event\": \"error\"} line says\n"
            "what and where); 3 internal failure; 4 cancelled (SIGTERM/SIGINT; no artifact\n"
            "is left behind).\n");
}

static void print_event(void *ctx, const cJSON *ev)
{
    (void)ctx;
    char *text = cJSON_PrintUnformatted(ev);
    if (text) {
        fputs(text, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        free(text);
    }
}

static int fail(const struct driver_error *e)
{
    cJSON *ev = driver_error_event(e);
    if (ev) print_event(NULL, ev);
    cJSON_Delete(ev);
    log_msg(e->status == DRIVER_ECANCELLED ? LOG_INFO : LOG_ERROR, "%s%s%s", e->field,
            e->field[0] ? ": " : "", e->message);
    return driver_exit_code(e->status);
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
            if (ferror(f)) break;
            buf[n] = '\0';
            *len = n;
            return buf;
        }
    }
    free(buf);
    return NULL;
}

/* What the scheduler asks of a trial's process, through its environment:
 * PODIUM_MEMORY_LIMIT_MB caps the address space (an allocation past it
 * fails, and the trial fails with that reason rather than taking the
 * machine down); PODIUM_TRIAL=1 makes the process receive SIGTERM when its
 * parent (the scheduler) dies, so no trainer outlives it. */
static int apply_limits(struct driver_error *e)
{
    const char *mb = getenv("PODIUM_MEMORY_LIMIT_MB");
    if (mb && *mb) {
        char *end;
        long v = strtol(mb, &end, 10);
        if (*end || v < 16) {
            snprintf(e->message, sizeof e->message,
                     "PODIUM_MEMORY_LIMIT_MB must be a number of megabytes >= 16");
            return -1;
        }
        struct rlimit rl = {(rlim_t)v << 20, (rlim_t)v << 20};
        if (setrlimit(RLIMIT_AS, &rl) < 0) {
            snprintf(e->message, sizeof e->message, "cannot apply the memory limit: %s",
                     strerror(errno));
            e->status = DRIVER_EINTERNAL;
            return -1;
        }
    }
    const char *trial = getenv("PODIUM_TRIAL");
    if (trial && strcmp(trial, "1") == 0) {
        pid_t parent = getppid();
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) raise(SIGTERM); /* it died before prctl */
    }
    return 0;
}

int main(int argc, char **argv)
{
    log_init("podium-train", LOG_INFO);
    struct driver_error e;
    memset(&e, 0, sizeof e);
    e.status = DRIVER_EBADSPEC;
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc > 2) {
        usage(stderr);
        snprintf(e.message, sizeof e.message, "expected one argument, the spec file");
        return fail(&e);
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    if (apply_limits(&e) < 0) return fail(&e);

    FILE *in = stdin;
    if (argc == 2 && strcmp(argv[1], "-") != 0 && (in = fopen(argv[1], "rb")) == NULL) {
        snprintf(e.message, sizeof e.message, "cannot open the spec file %.600s", argv[1]);
        return fail(&e);
    }
    size_t len = 0;
    char *text = read_all(in, 1 << 20, &len);
    if (in != stdin) fclose(in);
    if (text == NULL) {
        snprintf(e.message, sizeof e.message, "the spec is unreadable or over 1 MiB");
        return fail(&e);
    }
    const char *end = NULL;
    cJSON *json = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (json == NULL) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        snprintf(e.message, sizeof e.message, "the spec is not valid JSON (near byte %zu)", at);
        free(text);
        return fail(&e);
    }
    free(text);

    struct driver_opts opts = {
        .cancel = &cancel_flag, .emit = print_event, .emit_ctx = NULL, .progress_interval = 0.1,
    };
    pthread_t wd;
    if (cJSON_GetObjectItemCaseSensitive(json, "ensemble") != NULL) {
        /* ensemble selection over trained members (trainers/ensemble.h) */
        const cJSON *art = cJSON_GetObjectItemCaseSensitive(json, "artifact");
        if (cJSON_IsString(art) && art->valuestring[0] && strlen(art->valuestring) < 3900) {
            driver_temp_path(art->valuestring, 0, tmp_model, sizeof tmp_model);
            driver_temp_path(art->valuestring, 1, tmp_oof, sizeof tmp_oof);
        }
        if (pthread_create(&wd, NULL, watchdog, NULL) == 0) pthread_detach(wd);
        int st = ensemble_run(json, &opts, &e);
        cJSON_Delete(json);
        return st == DRIVER_OK ? 0 : fail(&e);
    }
    struct driver_spec spec;
    int status = driver_spec_parse(json, &spec, &e);
    cJSON_Delete(json);
    if (status != DRIVER_OK) {
        driver_spec_free(&spec);
        return fail(&e);
    }
    openblas_set_num_threads(spec.threads);
    if (spec.artifact) {
        driver_temp_path(spec.artifact, 0, tmp_model, sizeof tmp_model);
        driver_temp_path(spec.artifact, 1, tmp_oof, sizeof tmp_oof);
    }
    if (pthread_create(&wd, NULL, watchdog, NULL) == 0) pthread_detach(wd);

    status = driver_run(&spec, &opts, NULL, &e);
    driver_spec_free(&spec);
    if (status != DRIVER_OK) return fail(&e);
    return 0;
}
