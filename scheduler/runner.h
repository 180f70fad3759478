/*
 * runner.h - one podium-train child process on the libuv loop.
 *
 * The runner writes the spec to the child's stdin and closes it, splits
 * stdout into JSON Lines (each parsed line goes to on_event; the "result"
 * and "error" events are also kept), keeps the last 4 KiB of stderr, and
 * reports once, through on_exit, when the process has exited and both
 * pipes are closed. runner_kill sends SIGTERM and, after a grace period,
 * SIGKILL, remembering why (timeout, cancel, ...) so the outcome names it.
 *
 * Ownership: the runner frees itself after on_exit returns; the caller
 * must not use it after that. Loop thread only.
 */
#ifndef PODIUM_SCHEDULER_RUNNER_H
#define PODIUM_SCHEDULER_RUNNER_H

#include <stddef.h>
#include <sys/types.h>

#include <cjson/cJSON.h>
#include <uv.h>

enum runner_kill_reason {
    RUNNER_NOT_KILLED = 0,
    RUNNER_KILL_TIMEOUT,     /* the trial's timeout */
    RUNNER_KILL_BUDGET,      /* the job's time budget plus one trial timeout */
    RUNNER_KILL_CANCEL,      /* the job was cancelled */
    RUNNER_KILL_LEASE,       /* our lease on the trial was lost */
    RUNNER_KILL_SHUTDOWN,    /* the scheduler is stopping */
};

struct runner_outcome {
    int exit_status;         /* the exit code, or -1 when killed by a signal */
    int term_signal;         /* 0 unless killed by a signal */
    int kill_reason;         /* enum runner_kill_reason */
    const cJSON *result;     /* the result event, or NULL */
    const cJSON *error;      /* the last error event, or NULL */
    const char *stderr_tail; /* last 4 KiB of stderr, NUL-terminated */
};

struct runner_callbacks {
    void (*on_event)(void *ctx, const cJSON *event);   /* may be NULL */
    void (*on_exit)(void *ctx, const struct runner_outcome *o);
    void *ctx;
};

struct runner;

/* Start program with no arguments, spec (text) on its stdin, and env
 * entries "NAME=value" (NULL-terminated, may be NULL) added to ours.
 * NULL with err when the process cannot be started. */
struct runner *runner_start(uv_loop_t *loop, const char *program, const char *spec,
                            const char *const *env_extra, const struct runner_callbacks *cb,
                            char *err, size_t errlen);
pid_t runner_pid(const struct runner *r);
/* SIGTERM now, SIGKILL after grace_ms unless it exited. The first reason
 * given is the one reported. */
void runner_kill(struct runner *r, int reason, unsigned grace_ms);
/* Human words for a kill reason. */
const char *runner_kill_reason_str(int reason);

#endif
