/*
 * sched.c - the scheduler's trials, slots and timers (sched.h). Loop thread,
 * except the uv_queue_work bodies (fetch_work, store_work), which touch only
 * their own trial's strings and a workdb connection.
 */
#include "scheduler/sched.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "lib/log.h"
#include "scheduler/artifact.h"
#include "scheduler/cache.h"
#include "scheduler/claim.h"
#include "scheduler/pgloop.h"
#include "scheduler/runner.h"
#include "scheduler/slots.h"
#include "scheduler/space.h"
#include "scheduler/workdb.h"

#define CURVE_MAX 200
#define TICK_MS 200
#define CANCEL_GRACE_MS 1000
#define SHUTDOWN_MAX_MS 10000

enum phase { T_FETCH, T_RUN, T_STORE, T_STORE_WAIT, T_FINISH };

struct trial {
    struct trial *next;
    struct sched *s;
    struct claim_trial *c;
    struct slot slot;          /* the CPU or GPU slot it holds */
    enum phase phase;
    struct runner *runner;
    char data_path[1200];
    char artifact[1200];
    char oof[1300];
    uint64_t timeout_at, budget_kill_at, retry_at, last_write;
    cJSON *progress, *curve;
    int dirty, writing;
    int lease_lost, cancel;
    /* thread-pool work */
    uv_work_t work;
    int work_rc;
    char work_err[512];
    struct artifact_store store;
    char *store_vals[10];
    char *stderr_tail;
    char finish_state[16];     /* what trial_finish wrote, for its fallback */
    int finish_bare;           /* the fallback (no texts) has been sent */
    unsigned store_tries;
    unsigned heartbeat_gen;
    /* an 'ensemble' trial: its members' trial ids (from params), copied
     * out of the database into trial_dir before the child starts */
    int n_members;
    int members_ready;
    char (*member_ids)[40];
};

struct sched {
    uv_loop_t *loop;
    struct sched_config cfg;
    struct pgloop *pl;
    struct workdb *wdb;
    struct claim_config claim_cfg;
    uv_timer_t tick, heartbeat, sweep;
    struct trial *trials;
    int n_trials;
    struct slots slots;
    int claiming;
    int heartbeat_busy;
    unsigned heartbeat_gen;
    int stopping;
    int closed;
    uint64_t stop_at;
    char trial_dir[1100];
};

static void kick(struct sched *s);
static void trial_finish(struct trial *t, const char *state, const char *reason,
                         const char *stderr_tail);

static uint64_t now_ms(struct sched *s) { return uv_now(s->loop); }

/* --- trial list ------------------------------------------------------------------ */

static int is_ensemble(const struct trial *t)
{
    return t->c->family && strcmp(t->c->family, "ensemble") == 0;
}

/* Where member i of an ensemble trial is copied to (oof: its OOF file). */
static void member_path(const struct trial *t, int i, int oof, char *out, size_t len)
{
    snprintf(out, len, "%s/%s-%d-m%d.pdm%s", t->s->trial_dir, t->c->id, t->c->attempts, i,
             oof ? ".oof.csv" : "");
}

/* The trial's data set is an image archive. */
static int is_images(const struct trial *t)
{
    return t->c->kind && strcmp(t->c->kind, "images") == 0;
}

/* The trial's family can train on a GPU (space.h). */
static int wants_gpu(const struct trial *t)
{
    return space_family_uses_gpu(t->c->family);
}

static void remove_files(struct trial *t)
{
    if (t->artifact[0]) unlink(t->artifact);
    if (t->oof[0]) unlink(t->oof);
    for (int i = 0; i < t->n_members; i++) {
        char p[1300];
        member_path(t, i, 0, p, sizeof p);
        unlink(p);
        member_path(t, i, 1, p, sizeof p);
        unlink(p);
    }
}

/* The trial leaves our hands (stored, finished, handed back or lost). */
static void trial_drop(struct trial *t, int complete_job)
{
    struct sched *s = t->s;
    for (struct trial **p = &s->trials; *p; p = &(*p)->next)
        if (*p == t) {
            *p = t->next;
            break;
        }
    s->n_trials--;
    slots_put(&s->slots, &t->slot);
    remove_files(t);
    if (complete_job && !s->closed) claim_complete_jobs(s->pl, t->c->job_id);
    claim_trial_free(t->c);
    cJSON_Delete(t->progress);
    cJSON_Delete(t->curve);
    for (int i = 0; i < 10; i++) free(t->store_vals[i]);
    free(t->stderr_tail);
    free(t->member_ids);
    free(t);
    kick(s);
}

static char *print(const cJSON *j)
{
    return j ? cJSON_PrintUnformatted(j) : NULL;
}

/* The outcome without the trial's own texts (its tail, progress and
 * curve): what is written when the database refused those, so the trial
 * never stays "running" because of what it printed. */
static int finish_bare(struct trial *t, const char *why);

static void on_finished(void *ctx, PGresult *res)
{
    struct trial *t = ctx;
    if (res != NULL && !pgloop_ok(res)) {
        const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        log_msg(LOG_WARN, "trial %s: finishing: %s", t->c->id, PQresultErrorMessage(res));
        /* a data error (class 22) cannot pass on a retry */
        if (!t->finish_bare && code && strncmp(code, "22", 2) == 0 &&
            finish_bare(t, PQresultErrorMessage(res)) == 0)
            return;
    }
    trial_drop(t, 1);
}

static void trial_finish(struct trial *t, const char *state, const char *reason,
                         const char *stderr_tail)
{
    struct sched *s = t->s;
    t->phase = T_FINISH;
    if (s->closed) {
        trial_drop(t, 0);
        return;
    }
    log_msg(strcmp(state, "failed") == 0 ? LOG_WARN : LOG_INFO, "trial %s %s%s%s", t->c->id,
            state, reason ? ": " : "", reason ? reason : "");
    snprintf(t->finish_state, sizeof t->finish_state, "%s", state);
    char *progress = print(t->progress), *curve = print(t->curve);
    const char *v[] = {t->c->id, s->cfg.id, state, reason, stderr_tail, progress, curve};
    /* PGQ_RETRY: idempotent (state = 'running' guard), so it may run again
     * after a reconnection; the outcome is written once the database is back. */
    if (pgloop_query(s->pl,
                     "UPDATE trials SET state = $3, failure_reason = $4, "
                     "stderr_tail = coalesce($5, stderr_tail), "
                     "progress = coalesce($6::jsonb, progress), "
                     "learning_curve = coalesce($7::jsonb, learning_curve), "
                     "finished_at = now(), lease_expires_at = NULL "
                     "WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
                     7, v, PGQ_RETRY, on_finished, t) < 0)
        trial_drop(t, 0);
    cJSON_free(progress);
    cJSON_free(curve);
}

static int finish_bare(struct trial *t, const char *why)
{
    char reason[700];
    snprintf(reason, sizeof reason, "the trial's output could not be stored: %s", why);
    t->finish_bare = 1;
    const char *v[] = {t->c->id, t->s->cfg.id, t->finish_state, reason};
    return pgloop_query(t->s->pl,
                        "UPDATE trials SET state = $3, failure_reason = $4, "
                        "finished_at = now(), lease_expires_at = NULL "
                        "WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
                        4, v, PGQ_RETRY, on_finished, t) < 0 ? -1 : 0;
}

static void on_released(void *ctx, PGresult *res)
{
    struct trial *t = ctx;
    (void)res;
    log_msg(LOG_INFO, "trial %s handed back for takeover", t->c->id);
    trial_drop(t, 0);
}

/* Shutdown: the lease expires now, so any scheduler resumes the trial. */
static void trial_release(struct trial *t)
{
    struct sched *s = t->s;
    t->phase = T_FINISH;
    if (s->closed) {
        trial_drop(t, 0);
        return;
    }
    const char *v[] = {t->c->id, s->cfg.id};
    if (pgloop_query(s->pl,
                     "UPDATE trials SET lease_expires_at = now() "
                     "WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
                     2, v, PGQ_RETRY, on_released, t) < 0)
        trial_drop(t, 0);
}

/* --- progress -------------------------------------------------------------------- */

static void on_progress_written(void *ctx, PGresult *res)
{
    struct trial *t = ctx;
    (void)res;
    t->writing = 0;
}

static void flush_progress(struct trial *t)
{
    struct sched *s = t->s;
    if (!t->dirty || t->writing || t->phase != T_RUN) return;
    if (now_ms(s) - t->last_write < 1000 || !pgloop_connected(s->pl)) return;
    char *progress = print(t->progress), *curve = print(t->curve);
    const char *v[] = {t->c->id, s->cfg.id, progress, curve};
    if (progress && curve &&
        pgloop_query(s->pl,
                     "UPDATE trials SET progress = $3::jsonb, learning_curve = $4::jsonb "
                     "WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
                     4, v, 0, on_progress_written, t) == 0) {
        t->writing = 1;
        t->dirty = 0;
        t->last_write = now_ms(s);
    }
    cJSON_free(progress);
    cJSON_free(curve);
}

static void on_event(void *ctx, const cJSON *ev)
{
    struct trial *t = ctx;
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(ev, "event");
    if (!cJSON_IsString(kind)) return;
    if (strcmp(kind->valuestring, "result") == 0) return;   /* stored as columns */
    cJSON *copy = cJSON_Duplicate(ev, 1);
    if (copy) {
        cJSON_Delete(t->progress);
        t->progress = copy;
        t->dirty = 1;
    }
    if (strcmp(kind->valuestring, "iteration") != 0 || t->curve == NULL) return;
    cJSON *pt = cJSON_CreateObject();
    if (pt == NULL) return;
    static const char *const keys[] = {"stage", "fold", "iteration", "total", "metric", "value"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(ev, keys[i]);
        if (v) cJSON_AddItemToObject(pt, keys[i], cJSON_Duplicate(v, 1));
    }
    cJSON_AddItemToArray(t->curve, pt);
    /* Bounded: past CURVE_MAX points drop every other older one, so the
     * curve keeps its whole span at half the resolution. */
    if (cJSON_GetArraySize(t->curve) > CURVE_MAX)
        for (int i = 1; i < cJSON_GetArraySize(t->curve) - 1; i++)
            cJSON_DeleteItemFromArray(t->curve, i);
}

/* --- storing a success -------------------------------------------------------------- */

static void store_work(uv_work_t *w)
{
    struct trial *t = w->data;
    t->work_err[0] = '\0';
    PGconn *db = workdb_get(t->s->wdb, t->work_err, sizeof t->work_err);
    if (db == NULL) {
        t->work_rc = ARTIFACT_EDB;
        return;
    }
    t->work_rc = artifact_store(db, &t->store, t->work_err, sizeof t->work_err);
    workdb_put(t->s->wdb, db, t->work_rc >= 0);
}

/* Attempts at storing a success before the trial fails instead (the wait
 * grows to 8 s, so about two minutes). */
#define STORE_MAX_TRIES 16

static void store_after(uv_work_t *w, int status)
{
    struct trial *t = w->data;
    struct sched *s = t->s;
    if (status != 0) t->work_rc = ARTIFACT_EDB;
    switch (t->work_rc) {
    case ARTIFACT_STORED:
        log_msg(LOG_INFO, "trial %s succeeded (score %s)", t->c->id,
                t->store.score ? t->store.score : "null");
        trial_drop(t, 1);
        return;
    case ARTIFACT_LEASE_LOST:
        log_msg(LOG_WARN, "trial %s: lease lost before its result was stored; dropped",
                t->c->id);
        trial_drop(t, 0);
        return;
    case ARTIFACT_EFILE:
        trial_finish(t, "failed", t->work_err, t->stderr_tail);
        return;
    case ARTIFACT_EDB:
        if (t->store_tries >= STORE_MAX_TRIES) {
            /* A result that cannot be stored for minutes must not keep its
             * trial "running": fail it (the write waits for the database
             * like every other) and let the job go on. */
            char why[600];
            snprintf(why, sizeof why, "storing the result kept failing: %s", t->work_err);
            log_msg(LOG_ERROR, "trial %s: %s", t->c->id, why);
            trial_finish(t, "failed", why, t->stderr_tail);
            return;
        }
        goto retry;
    case ARTIFACT_EDATA: {
        /* The values were refused: retrying would keep the trial "running"
         * forever. It fails, with the reason, and the job goes on. */
        char why[600];
        snprintf(why, sizeof why, "storing the result failed: %s", t->work_err);
        log_msg(LOG_ERROR, "trial %s: %s", t->c->id, why);
        /* Whatever was refused must not be sent again with the failure. */
        cJSON_Delete(t->progress);
        t->progress = NULL;
        cJSON_Delete(t->curve);
        t->curve = cJSON_CreateArray();
        trial_finish(t, "failed", why, t->stderr_tail);
        return;
    }
    default:
    retry: {
        unsigned delay = 500u << (t->store_tries < 4 ? t->store_tries : 4);
        t->store_tries++;
        log_msg(LOG_WARN, "trial %s: storing the result failed (%s); retrying in %u ms",
                t->c->id, t->work_err, delay);
        t->phase = T_STORE_WAIT;
        t->retry_at = now_ms(s) + delay;
    }
    }
}

static void store_start(struct trial *t)
{
    t->phase = T_STORE;
    t->work.data = t;
    if (uv_queue_work(t->s->loop, &t->work, store_work, store_after) != 0) {
        t->phase = T_STORE_WAIT;
        t->retry_at = now_ms(t->s) + 1000;
    }
}

static char *num_str(const cJSON *j)
{
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble)) return NULL;
    char buf[64];
    snprintf(buf, sizeof buf, "%.17g", j->valuedouble);
    return strdup(buf);
}

/* Prepare the values artifact_store writes. 0, or -1 with why. */
static int store_prepare(struct trial *t, const cJSON *result, char *why, size_t len)
{
    const cJSON *metrics = cJSON_GetObjectItemCaseSensitive(result, "metrics");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(metrics, t->c->metric);
    if (m == NULL && strcmp(t->c->metric, "log_loss") == 0)
        m = cJSON_GetObjectItemCaseSensitive(metrics, "logloss");
    const cJSON *mean = cJSON_GetObjectItemCaseSensitive(m, "mean");
    /* an lr_find result (trainers/lrtest.h): the curve in details, no
     * score and no model file */
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive(result, "mode");
    int lr_find = cJSON_IsString(mode) && strcmp(mode->valuestring, "lr_find") == 0 &&
                  cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(
                      cJSON_GetObjectItemCaseSensitive(result, "details"), "lr_find"));
    if (!cJSON_IsObject(metrics) || (!lr_find && !cJSON_IsNumber(mean))) {
        snprintf(why, len, "the result has no metric '%s'", t->c->metric);
        return -1;
    }
    const cJSON *oof = cJSON_GetObjectItemCaseSensitive(result, "oof_path");
    if (cJSON_IsString(oof)) snprintf(t->oof, sizeof t->oof, "%s", oof->valuestring);
    char **v = t->store_vals;
    v[0] = print(metrics);
    v[1] = lr_find ? NULL : num_str(mean);
    v[2] = num_str(cJSON_GetObjectItemCaseSensitive(m, "std"));
    v[3] = num_str(cJSON_GetObjectItemCaseSensitive(result, "fit_seconds"));
    v[4] = num_str(cJSON_GetObjectItemCaseSensitive(result, "predict_us_per_row"));
    const cJSON *mb = cJSON_GetObjectItemCaseSensitive(result, "model_bytes");
    if (cJSON_IsNumber(mb)) {
        char buf[32];
        snprintf(buf, sizeof buf, "%.0f", mb->valuedouble);
        v[5] = strdup(buf);
    }
    v[6] = print(t->progress);
    v[7] = print(t->curve);
    v[8] = print(cJSON_GetObjectItemCaseSensitive(result, "details"));
    t->store = (struct artifact_store){
        .trial_id = t->c->id, .owner = t->s->cfg.id, .model_path = lr_find ? NULL : t->artifact,
        .oof_path = t->oof[0] ? t->oof : NULL, .metrics = v[0], .score = v[1],
        .score_std = v[2], .fit_seconds = v[3], .predict_us_per_row = v[4],
        .model_bytes = v[5], .progress = v[6], .learning_curve = v[7],
        .stderr_tail = t->stderr_tail, .details = v[8],
    };
    return v[0] && (v[1] || lr_find) ? 0 : -1;
}

/* --- the child ----------------------------------------------------------------------- */

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGKILL: return "SIGKILL";
    case SIGTERM: return "SIGTERM";
    case SIGSEGV: return "SIGSEGV";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGINT: return "SIGINT";
    case SIGXCPU: return "SIGXCPU";
    default: return "signal";
    }
}

static void on_child_exit(void *ctx, const struct runner_outcome *o)
{
    struct trial *t = ctx;
    struct sched *s = t->s;
    t->runner = NULL;
    free(t->stderr_tail);
    t->stderr_tail = o->stderr_tail[0] ? strdup(o->stderr_tail) : NULL;
    if (t->lease_lost || o->kill_reason == RUNNER_KILL_LEASE) {
        log_msg(LOG_WARN, "trial %s: our lease was lost; child stopped, trial dropped", t->c->id);
        trial_drop(t, 0);
        return;
    }
    if (o->kill_reason == RUNNER_KILL_SHUTDOWN || (s->stopping && o->exit_status != 0)) {
        trial_release(t);
        return;
    }
    if (t->cancel || o->kill_reason == RUNNER_KILL_CANCEL) {
        trial_finish(t, "cancelled", "the job was cancelled", t->stderr_tail);
        return;
    }
    char why[1024];
    if (o->exit_status == 0 && o->result != NULL) {
        if (store_prepare(t, o->result, why, sizeof why) == 0) {
            store_start(t);
            return;
        }
        trial_finish(t, "failed", why, t->stderr_tail);
        return;
    }
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(o->error, "message");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(o->error, "kind");
    if (o->kill_reason == RUNNER_KILL_TIMEOUT) {
        snprintf(why, sizeof why, "timed out after %d s (trial_timeout_seconds)%s%s",
                 t->c->trial_timeout, o->term_signal ? "; killed by " : "",
                 o->term_signal ? signal_name(o->term_signal) : "");
    } else if (o->kill_reason == RUNNER_KILL_BUDGET) {
        snprintf(why, sizeof why, "stopped at the job's time budget plus one trial timeout");
    } else if (o->term_signal) {
        snprintf(why, sizeof why, "podium-train was killed by signal %d (%s)", o->term_signal,
                 signal_name(o->term_signal));
    } else if (cJSON_IsString(msg)) {
        snprintf(why, sizeof why, "podium-train exited with status %d: %s%s%.900s",
                 o->exit_status, cJSON_IsString(kind) ? kind->valuestring : "",
                 cJSON_IsString(kind) ? ": " : "", msg->valuestring);
    } else if (o->exit_status == 0) {
        snprintf(why, sizeof why, "podium-train exited 0 without a result event");
    } else {
        snprintf(why, sizeof why, "podium-train exited with status %d", o->exit_status);
    }
    trial_finish(t, "failed", why, t->stderr_tail);
}

static char *build_spec(struct trial *t)
{
    const struct claim_trial *c = t->c;
    cJSON *spec = cJSON_CreateObject();
    cJSON *cv = cJSON_Parse(c->cv ? c->cv : "{}");
    cJSON *params = cJSON_Parse(c->params ? c->params : "{}");
    cJSON *model = cJSON_CreateObject();
    char *text = NULL;
    if (!spec || !cJSON_IsObject(cv) || !params || !model) goto out;
    if (!cJSON_GetObjectItemCaseSensitive(cv, "seed"))
        cJSON_AddNumberToObject(cv, "seed", (double)c->seed);
    cJSON_AddStringToObject(spec, "data", t->data_path);
    if (is_images(t)) {
        /* the archive as uploaded; the size images become (jobs.options) */
        cJSON *opts = cJSON_Parse(c->options ? c->options : "{}");
        cJSON *image = cJSON_DetachItemFromObjectCaseSensitive(opts, "image");
        cJSON_Delete(opts);
        cJSON_AddStringToObject(spec, "kind", "images");
        if (image) cJSON_AddItemToObject(spec, "image", image);
    } else {
        cJSON_AddStringToObject(spec, "target", c->target);
    }
    cJSON_AddStringToObject(spec, "task", c->task);
    cJSON_AddStringToObject(spec, "metric", c->metric);
    cJSON_AddStringToObject(model, "family", c->family);
    /* an lr_find trial (lrfind_strategy.c): its settings ride in the
     * params and go to the spec's top level (trainers/lrtest.h) */
    cJSON *lr_find = cJSON_DetachItemFromObjectCaseSensitive(params, "lr_find");
    if (lr_find) cJSON_AddItemToObject(spec, "lr_find", lr_find);
    cJSON_AddItemToObject(model, "params", params);
    params = NULL;
    cJSON_AddItemToObject(spec, "model", model);
    model = NULL;
    cJSON_AddItemToObject(spec, "cv", cv);
    cv = NULL;
    cJSON_AddNumberToObject(spec, "threads", 1);
    cJSON_AddStringToObject(spec, "artifact", t->artifact);
    if (wants_gpu(t)) cJSON_AddStringToObject(spec, "device", t->slot.gpu >= 0 ? "cuda" : "cpu");
    text = cJSON_PrintUnformatted(spec);
out:
    cJSON_Delete(spec);
    cJSON_Delete(cv);
    cJSON_Delete(params);
    cJSON_Delete(model);
    return text;
}

/* The ensemble spec (trainers/ensemble.h) over the members' copies. */
static char *build_ensemble_spec(struct trial *t)
{
    const struct claim_trial *c = t->c;
    cJSON *spec = cJSON_CreateObject();
    cJSON *params = cJSON_Parse(c->params ? c->params : "{}");
    char *text = NULL;
    if (!spec || !params) goto out;
    cJSON *ens = cJSON_AddObjectToObject(spec, "ensemble");
    cJSON *members = cJSON_AddArrayToObject(ens, "members");
    for (int i = 0; i < t->n_members; i++) {
        char p[1300];
        cJSON *m = cJSON_CreateObject();
        member_path(t, i, 0, p, sizeof p);
        cJSON_AddStringToObject(m, "artifact", p);
        member_path(t, i, 1, p, sizeof p);
        cJSON_AddStringToObject(m, "oof", p);
        cJSON_AddItemToArray(members, m);
    }
    const cJSON *rounds = cJSON_GetObjectItemCaseSensitive(params, "rounds");
    if (cJSON_IsNumber(rounds)) cJSON_AddNumberToObject(ens, "rounds", rounds->valuedouble);
    cJSON_AddStringToObject(spec, "task", c->task);
    cJSON_AddStringToObject(spec, "metric", c->metric);
    cJSON_AddStringToObject(spec, "data", t->data_path);
    cJSON_AddNumberToObject(spec, "threads", 1);
    cJSON_AddStringToObject(spec, "artifact", t->artifact);
    text = cJSON_PrintUnformatted(spec);
out:
    cJSON_Delete(spec);
    cJSON_Delete(params);
    return text;
}

static void members_start(struct trial *t);

static void trial_spawn(struct trial *t)
{
    struct sched *s = t->s;
    char err[512];
    if (is_ensemble(t) && !t->members_ready) {
        members_start(t);
        return;
    }
    snprintf(t->artifact, sizeof t->artifact, "%s/%s-%d.pdm", s->trial_dir, t->c->id,
             t->c->attempts);
    char *spec = is_ensemble(t) ? build_ensemble_spec(t) : build_spec(t);
    if (spec == NULL) {
        trial_finish(t, "failed", "could not build the trainer spec", NULL);
        return;
    }
    /* PODIUM_TRIAL tells podium-train it runs under a scheduler: it then
     * stops (SIGTERM) if the scheduler dies, instead of running on. */
    /* CUDA_VISIBLE_DEVICES: the one GPU of a GPU slot, none otherwise. */
    char mem[64], gpu[64];
    snprintf(gpu, sizeof gpu, "CUDA_VISIBLE_DEVICES=%s", slots_visible_devices(&s->slots, &t->slot));
    const char *env[4] = {"PODIUM_TRIAL=1", gpu, NULL, NULL};
    /* The limit is on address space (RLIMIT_AS), which a CUDA context
     * reserves by the gigabyte without using it: GPU trials go without. */
    if (s->cfg.memory_limit_mb > 0 && slots_visible_devices(&s->slots, &t->slot)[0] == '\0') {
        snprintf(mem, sizeof mem, "PODIUM_MEMORY_LIMIT_MB=%d", s->cfg.memory_limit_mb);
        env[2] = mem;
    }
    struct runner_callbacks cb = {on_event, on_child_exit, t};
    t->phase = T_RUN;
    t->runner = runner_start(s->loop, s->cfg.trainer, spec, env, &cb, err, sizeof err);
    cJSON_free(spec);
    if (t->runner == NULL) {
        trial_finish(t, "failed", err, NULL);
        return;
    }
    uint64_t now = now_ms(s);
    t->timeout_at = now + (uint64_t)t->c->trial_timeout * 1000;
    double b = t->c->budget_left + t->c->trial_timeout;
    t->budget_kill_at = now + (uint64_t)(b > 0 ? b * 1000 : 0);
    log_msg(LOG_DEBUG, "trial %s: podium-train pid %d", t->c->id, (int)runner_pid(t->runner));
}

/* --- the data set ---------------------------------------------------------------------- */

/* Where the trial's data set comes from (cache.h). */
static void cache_src_of(const struct claim_trial *c, struct cache_src *src)
{
    *src = (struct cache_src){c->sha256_hex, c->lo, c->zstd,
                              c->format && strcmp(c->format, "csv.gz") == 0, c->size};
}

static void fetch_work(uv_work_t *w)
{
    struct trial *t = w->data;
    t->work_err[0] = '\0';
    PGconn *db = workdb_get(t->s->wdb, t->work_err, sizeof t->work_err);
    if (db == NULL) {
        t->work_rc = -1;
        return;
    }
    struct cache_src src;
    cache_src_of(t->c, &src);
    t->work_rc = cache_fetch(db, t->s->cfg.cache_dir, &src, t->work_err, sizeof t->work_err);
    workdb_put(t->s->wdb, db, t->work_rc == 0);
}

/* After off-loop work: 1 when the trial was lost, handed back or
 * cancelled meanwhile (and has been dealt with), 0 to carry on. */
static int work_interrupted(struct trial *t)
{
    if (t->lease_lost) {
        trial_drop(t, 0);
        return 1;
    }
    if (t->s->stopping) {
        trial_release(t);
        return 1;
    }
    if (t->cancel) {
        trial_finish(t, "cancelled", "the job was cancelled", NULL);
        return 1;
    }
    return 0;
}

static void fetch_after(uv_work_t *w, int status)
{
    struct trial *t = w->data;
    if (work_interrupted(t)) return;
    if (status != 0 || t->work_rc != 0) {
        char why[700];
        snprintf(why, sizeof why, "could not copy the data set: %s",
                 t->work_err[0] ? t->work_err : "cancelled");
        trial_finish(t, "failed", why, NULL);
        return;
    }
    trial_spawn(t);
}

/* --- an ensemble's members --------------------------------------------------------------- */

static void members_work(uv_work_t *w)
{
    struct trial *t = w->data;
    t->work_err[0] = '\0';
    PGconn *db = workdb_get(t->s->wdb, t->work_err, sizeof t->work_err);
    if (db == NULL) {
        t->work_rc = ARTIFACT_EDB;
        return;
    }
    t->work_rc = 0;
    for (int i = 0; i < t->n_members && t->work_rc == 0; i++) {
        char model[1300], oof[1300];
        member_path(t, i, 0, model, sizeof model);
        member_path(t, i, 1, oof, sizeof oof);
        t->work_rc = artifact_fetch(db, t->member_ids[i], model, oof, t->work_err,
                                    sizeof t->work_err);
    }
    workdb_put(t->s->wdb, db, t->work_rc != ARTIFACT_EDB);
}

static void members_after(uv_work_t *w, int status)
{
    struct trial *t = w->data;
    if (work_interrupted(t)) return;
    if (status != 0 || t->work_rc != 0) {
        char why[700];
        snprintf(why, sizeof why, "could not copy the ensemble's members: %s",
                 t->work_err[0] ? t->work_err : "cancelled");
        trial_finish(t, "failed", why, NULL);
        return;
    }
    t->members_ready = 1;
    trial_spawn(t);
}

/* Read the member ids from params and copy their files (thread pool). */
static void members_start(struct trial *t)
{
    cJSON *params = cJSON_Parse(t->c->params ? t->c->params : "{}");
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(params, "members");
    int n = cJSON_IsArray(ids) ? cJSON_GetArraySize(ids) : 0;
    if (n < 1 || n > 64 || (t->member_ids = calloc((size_t)n, sizeof *t->member_ids)) == NULL) {
        cJSON_Delete(params);
        trial_finish(t, "failed", "the ensemble trial's params name no members", NULL);
        return;
    }
    for (int i = 0; i < n; i++) {
        const cJSON *id = cJSON_GetArrayItem(ids, i);
        snprintf(t->member_ids[i], sizeof t->member_ids[i], "%s",
                 cJSON_IsString(id) ? id->valuestring : "");
    }
    t->n_members = n;
    cJSON_Delete(params);
    t->phase = T_FETCH;
    t->work.data = t;
    if (uv_queue_work(t->s->loop, &t->work, members_work, members_after) != 0)
        trial_finish(t, "failed", "could not queue the copy of the ensemble's members", NULL);
}

static void trial_start(struct sched *s, struct claim_trial *c)
{
    struct trial *t = calloc(1, sizeof *t);
    if (t == NULL) {
        claim_trial_free(c);   /* its lease expires; another claim takes it over */
        return;
    }
    t->s = s;
    t->c = c;
    if (slots_take(&s->slots, wants_gpu(t), &t->slot) < 0) {
        /* claimed what no free slot fits (cannot happen: kick asks by
         * slots_claim_mask); the lease expires and it is taken over */
        log_msg(LOG_ERROR, "trial %s: no free slot fits it; leaving it to its lease", c->id);
        claim_trial_free(c);
        free(t);
        return;
    }
    t->curve = cJSON_CreateArray();
    t->next = s->trials;
    s->trials = t;
    s->n_trials++;
    if (s->stopping) {
        trial_release(t);
        return;
    }
    if (c->finish_state) {
        trial_finish(t, c->finish_state, c->finish_reason, NULL);
        return;
    }
    if (c->kind == NULL || (strcmp(c->kind, "tabular") != 0 && !is_images(t))) {
        trial_finish(t, "failed", "the data set is of no kind a trainer knows", NULL);
        return;
    }
    struct cache_src src;
    cache_src_of(c, &src);
    if (cache_path(s->cfg.cache_dir, &src, t->data_path, sizeof t->data_path) < 0) {
        trial_finish(t, "failed", "the data set's blob has no valid hash", NULL);
        return;
    }
    if (cache_has(t->data_path)) {
        trial_spawn(t);
        return;
    }
    t->phase = T_FETCH;
    t->work.data = t;
    if (uv_queue_work(s->loop, &t->work, fetch_work, fetch_after) != 0)
        trial_finish(t, "failed", "could not queue the data set copy", NULL);
}

/* --- claiming -------------------------------------------------------------------------- */

static void on_claimed(void *ctx, struct claim_trial *c)
{
    struct sched *s = ctx;
    s->claiming = 0;
    if (c == NULL) return;   /* nothing to do now: wait for an event */
    trial_start(s, c);
    kick(s);
}

static void kick(struct sched *s)
{
    if (s->stopping || s->closed || s->claiming) return;
    unsigned free_slots = slots_claim_mask(&s->slots);
    if (free_slots == 0 || !pgloop_connected(s->pl)) return;
    int gpu_only = !(free_slots & SLOTS_CPU);
    if (claim_next(s->pl, &s->claim_cfg, gpu_only, on_claimed, s) == 0) s->claiming = 1;
}

/* --- cancellation, heartbeat, sweep ------------------------------------------------------ */

static void kill_trial(struct trial *t, int reason, unsigned grace)
{
    if (t->runner) runner_kill(t->runner, reason, grace);
}

static void on_cancel_check(void *ctx, PGresult *res)
{
    struct sched *s = ctx;
    if (!pgloop_ok(res)) return;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *job = PQgetvalue(res, i, 0);
        for (struct trial *t = s->trials; t; t = t->next) {
            if (strcmp(t->c->job_id, job) != 0 || t->cancel) continue;
            if (t->phase != T_RUN && t->phase != T_FETCH) continue;
            t->cancel = 1;
            log_msg(LOG_INFO, "trial %s: job %s cancelled; stopping it", t->c->id, job);
            kill_trial(t, RUNNER_KILL_CANCEL, CANCEL_GRACE_MS);
        }
    }
}

/* {a,b,...} of the ids (trial or job) of our trials; NULL when none. */
static char *id_array(struct sched *s, int jobs, int phases_mask)
{
    size_t cap = (size_t)s->n_trials * 40 + 3, len = 0;
    char *a = malloc(cap);
    if (a == NULL) return NULL;
    a[len++] = '{';
    int n = 0;
    for (struct trial *t = s->trials; t; t = t->next) {
        if (!(phases_mask & (1 << t->phase))) continue;
        len += (size_t)snprintf(a + len, cap - len, "%s%s", n++ ? "," : "",
                                jobs ? t->c->job_id : t->c->id);
    }
    snprintf(a + len, cap - len, "}");
    if (n == 0) {
        free(a);
        return NULL;
    }
    return a;
}

static void check_cancel(struct sched *s, const char *one_job)
{
    char *arr = NULL;
    char buf[48];
    if (one_job) {
        snprintf(buf, sizeof buf, "{%s}", one_job);
    } else if ((arr = id_array(s, 1, 1 << T_RUN | 1 << T_FETCH)) == NULL) {
        return;
    }
    const char *v[] = {arr ? arr : buf};
    pgloop_query(s->pl,
                 "SELECT id FROM jobs WHERE id = ANY($1::uuid[]) "
                 "AND (cancel_requested OR state NOT IN ('queued', 'running'))",
                 1, v, 0, on_cancel_check, s);
    free(arr);
}

static void on_heartbeat_done(void *ctx, PGresult *res)
{
    struct sched *s = ctx;
    s->heartbeat_busy = 0;
    if (!pgloop_ok(res)) {
        if (res) log_msg(LOG_WARN, "heartbeat: %s", PQresultErrorMessage(res));
        return;
    }
    for (struct trial *t = s->trials; t; t = t->next) {
        if (t->phase != T_RUN && t->phase != T_FETCH) continue;
        if (t->heartbeat_gen != s->heartbeat_gen) continue;   /* claimed after it was sent */
        int found = 0;
        for (int i = 0; i < PQntuples(res) && !found; i++)
            found = strcmp(PQgetvalue(res, i, 0), t->c->id) == 0;
        if (found || t->lease_lost) continue;
        t->lease_lost = 1;
        log_msg(LOG_WARN, "trial %s: the lease is no longer ours; stopping it", t->c->id);
        kill_trial(t, RUNNER_KILL_LEASE, 1000);
    }
}

static void on_heartbeat(uv_timer_t *h)
{
    struct sched *s = h->data;
    if (s->heartbeat_busy || s->closed) return;
    char *arr = id_array(s, 0, 1 << T_RUN | 1 << T_FETCH | 1 << T_STORE | 1 << T_STORE_WAIT);
    if (arr == NULL) return;
    char lease[16];
    snprintf(lease, sizeof lease, "%d", s->cfg.lease_seconds);
    s->heartbeat_gen++;
    for (struct trial *t = s->trials; t; t = t->next) t->heartbeat_gen = s->heartbeat_gen;
    const char *v[] = {s->cfg.id, lease, arr};
    if (pgloop_query(s->pl,
                     "UPDATE trials SET lease_expires_at = now() + $2::int * interval '1 second' "
                     "WHERE id = ANY($3::uuid[]) AND lease_owner = $1 AND state = 'running' "
                     "RETURNING id",
                     3, v, 0, on_heartbeat_done, s) == 0)
        s->heartbeat_busy = 1;
    free(arr);
}

static void on_sweep(uv_timer_t *h)
{
    struct sched *s = h->data;
    if (s->stopping || s->closed || !pgloop_connected(s->pl)) return;
    check_cancel(s, NULL);
    claim_complete_jobs(s->pl, NULL);
    kick(s);
}

static void close_all(struct sched *s);

static void on_tick(uv_timer_t *h)
{
    struct sched *s = h->data;
    uint64_t now = now_ms(s);
    for (struct trial *t = s->trials, *next; t; t = next) {
        next = t->next;
        if (t->phase == T_RUN && t->runner) {
            if (now >= t->timeout_at) kill_trial(t, RUNNER_KILL_TIMEOUT, (unsigned)s->cfg.kill_grace_ms);
            else if (now >= t->budget_kill_at)
                kill_trial(t, RUNNER_KILL_BUDGET, (unsigned)s->cfg.kill_grace_ms);
            flush_progress(t);
        } else if (t->phase == T_STORE_WAIT && now >= t->retry_at) {
            store_start(t);
        }
    }
    if (s->stopping && !s->closed &&
        ((s->trials == NULL && pgloop_idle(s->pl)) || now >= s->stop_at)) {
        if (s->trials) log_msg(LOG_WARN, "shutdown: giving up on %d trial(s)", s->n_trials);
        close_all(s);
    }
}

/* --- database events --------------------------------------------------------------------- */

static int looks_like_uuid(const char *p)
{
    if (p == NULL || strlen(p) != 36) return 0;
    for (int i = 0; i < 36; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? p[i] != '-' : !strchr("0123456789abcdefABCDEF", p[i])) return 0;
    }
    return 1;
}

/* A job's budget changed (PATCH): move its running trials' hard end
 * (started_at + max_seconds + one trial timeout) to the new one. */
struct budget_check {
    struct sched *s;
    char job_id[40];
};

static void on_budget_read(void *ctx, PGresult *res)
{
    struct budget_check *b = ctx;
    struct sched *s = b->s;
    if (pgloop_ok(res) && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0) && !s->closed) {
        double left = strtod(PQgetvalue(res, 0, 0), NULL);
        uint64_t at = now_ms(s) + (uint64_t)(left > 0 ? left * 1000 : 0);
        for (struct trial *t = s->trials; t; t = t->next)
            if (t->phase == T_RUN && strcmp(t->c->job_id, b->job_id) == 0 &&
                t->budget_kill_at != at) {
                t->budget_kill_at = at;
                log_msg(LOG_INFO, "trial %s: the job's budget changed; its hard end is now "
                        "in %.0f s", t->c->id, left);
            }
    }
    free(b);
}

static void check_budget(struct sched *s, const char *job_id)
{
    int ours = 0;
    for (struct trial *t = s->trials; t && !ours; t = t->next)
        ours = t->phase == T_RUN && strcmp(t->c->job_id, job_id) == 0;
    struct budget_check *b = ours ? calloc(1, sizeof *b) : NULL;
    if (b == NULL) return;
    b->s = s;
    snprintf(b->job_id, sizeof b->job_id, "%s", job_id);
    const char *v[] = {b->job_id};
    if (pgloop_query(s->pl,
                     "SELECT extract(epoch from (started_at + (max_seconds + "
                     "trial_timeout_seconds) * interval '1 second' - now()))::float8 "
                     "FROM jobs WHERE id = $1",
                     1, v, 0, on_budget_read, b) < 0)
        free(b);
}

static void on_notify(void *ctx, const char *channel, const char *payload)
{
    struct sched *s = ctx;
    (void)channel;
    if (s->stopping || s->closed) return;
    log_msg(LOG_DEBUG, "notified: %s", payload ? payload : "");
    if (looks_like_uuid(payload)) {
        check_cancel(s, payload);
        check_budget(s, payload);
        claim_complete_jobs(s->pl, payload);
    }
    kick(s);
}

static void on_connect(void *ctx)
{
    struct sched *s = ctx;
    if (s->stopping || s->closed) return;
    /* notifications may have been missed while we were away */
    check_cancel(s, NULL);
    claim_complete_jobs(s->pl, NULL);
    kick(s);
}

static void on_disconnect(void *ctx)
{
    struct sched *s = ctx;
    /* the claim in flight got its NULL result already */
    s->heartbeat_busy = 0;
}

/* --- life cycle ----------------------------------------------------------------------------- */

struct sched *sched_new(uv_loop_t *loop, const struct sched_config *cfg, char *err,
                        size_t errlen)
{
    struct sched *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->loop = loop;
    s->cfg = *cfg;
    if (slots_init(&s->slots, cfg->slots, cfg->gpus, err, errlen) < 0) {
        free(s);
        return NULL;
    }
    snprintf(s->trial_dir, sizeof s->trial_dir, "%s/trials", cfg->cache_dir);
    if (cache_mkdirs(s->trial_dir, err, errlen) < 0) {
        free(s);
        return NULL;
    }
    s->claim_cfg.owner = s->cfg.id;
    s->claim_cfg.lease_seconds = cfg->lease_seconds;
    s->wdb = workdb_new(cfg->database_url);
    struct pgloop_events ev = {on_notify, on_connect, on_disconnect, s};
    s->pl = s->wdb ? pgloop_new(loop, cfg->database_url, "podium-scheduler", "podium_jobs", &ev)
                   : NULL;
    if (s->pl == NULL) {
        workdb_free(s->wdb);
        free(s);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    uv_timer_init(loop, &s->tick);
    uv_timer_init(loop, &s->heartbeat);
    uv_timer_init(loop, &s->sweep);
    s->tick.data = s->heartbeat.data = s->sweep.data = s;
    uv_timer_start(&s->tick, on_tick, TICK_MS, TICK_MS);
    uint64_t hb = (uint64_t)cfg->heartbeat_seconds * 1000;
    uv_timer_start(&s->heartbeat, on_heartbeat, hb, hb);
    uint64_t sw = (uint64_t)(cfg->sweep_seconds * 1000);
    uv_timer_start(&s->sweep, on_sweep, sw, sw);
    char gpus[SLOTS_MAX_GPUS * 17 + 8] = "";
    size_t gl = 0;
    for (int i = 0; i < s->slots.n_gpu; i++)
        gl += (size_t)snprintf(gpus + gl, sizeof gpus - gl, "%s%s", i ? "," : " (", s->slots.gpu_ids[i]);
    if (gl) snprintf(gpus + gl, sizeof gpus - gl, ")");
    log_msg(LOG_INFO, "scheduler %s: %d CPU slot(s), %d GPU slot(s)%s, cache %s, trainer %s",
            cfg->id, cfg->slots, s->slots.n_gpu, gpus, cfg->cache_dir, cfg->trainer);
    return s;
}

void sched_stop(struct sched *s)
{
    if (s->stopping) {
        /* a second signal: do not wait for anything */
        s->stop_at = now_ms(s);
        return;
    }
    s->stopping = 1;
    s->stop_at = now_ms(s) + SHUTDOWN_MAX_MS;
    uv_timer_stop(&s->sweep);
    for (struct trial *t = s->trials; t; t = t->next)
        kill_trial(t, RUNNER_KILL_SHUTDOWN, (unsigned)s->cfg.kill_grace_ms);
    log_msg(LOG_INFO, "stopping: %d trial(s) to hand back or store", s->n_trials);
}

static void close_all(struct sched *s)
{
    s->closed = 1;
    for (struct trial *t = s->trials; t; t = t->next)
        if (t->runner) runner_kill(t->runner, RUNNER_KILL_SHUTDOWN, 0);
    uv_close((uv_handle_t *)&s->tick, NULL);
    uv_close((uv_handle_t *)&s->heartbeat, NULL);
    uv_close((uv_handle_t *)&s->sweep, NULL);
    pgloop_close(s->pl);
    s->pl = NULL;
    if (s->trials) uv_stop(s->loop);   /* children still exiting: do not wait */
}

void sched_free(struct sched *s)
{
    if (s == NULL) return;
    workdb_free(s->wdb);
    free(s);
}
