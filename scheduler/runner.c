/*
 * runner.c - podium-train children (runner.h). Loop thread.
 *
 * Handles: the process, three pipes and the SIGKILL timer; the runner is
 * freed when the last of them is closed (libuv frees nothing before its
 * close callback).
 */
#include "scheduler/runner.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/utf8.h"

#define LINE_MAX_BYTES (4u << 20)
#define TAIL_BYTES 4096

extern char **environ;

struct runner {
    uv_loop_t *loop;
    uv_process_t proc;
    uv_pipe_t in, out, err;
    uv_timer_t kill_timer;
    uv_write_t wreq;
    struct runner_callbacks cb;
    char *spec;
    char *line;               /* the stdout line being assembled */
    size_t line_len, line_cap;
    int line_skip;            /* the current line is too long: drop it */
    char tail[TAIL_BYTES];
    size_t tail_len;
    int tail_cut;             /* bytes were dropped from its front */
    cJSON *result, *error;
    int exited, out_eof, err_eof, reported;
    int64_t exit_status;
    int term_signal;
    int kill_reason;
    int open_handles;
    char **env;
};

pid_t runner_pid(const struct runner *r) { return r->proc.pid; }

const char *runner_kill_reason_str(int reason)
{
    switch (reason) {
    case RUNNER_KILL_TIMEOUT: return "trial timeout";
    case RUNNER_KILL_BUDGET: return "the job's time budget";
    case RUNNER_KILL_CANCEL: return "cancelled";
    case RUNNER_KILL_LEASE: return "lease lost";
    case RUNNER_KILL_SHUTDOWN: return "scheduler shutdown";
    default: return "not killed";
    }
}

/* open_handles counts handles being closed plus one reference the runner
 * holds on itself until it has reported; the last one out frees. */
static void release(struct runner *r)
{
    if (--r->open_handles > 0) return;
    cJSON_Delete(r->result);
    cJSON_Delete(r->error);
    free(r->line);
    free(r->spec);
    if (r->env) {
        for (char **e = r->env; *e; e++) free(*e);
        free(r->env);
    }
    free(r);
}

static void on_closed(uv_handle_t *h) { release(h->data); }

static void close_handle(struct runner *r, uv_handle_t *h)
{
    if (!uv_is_closing(h)) {
        r->open_handles++;
        uv_close(h, on_closed);
    }
}

static void maybe_report(struct runner *r)
{
    if (r->reported || !r->exited || !r->out_eof || !r->err_eof) return;
    r->reported = 1;
    uv_timer_stop(&r->kill_timer);
    /* The tail goes to PostgreSQL as text: valid UTF-8 even when the cut
     * fell inside a character or the trainer printed other bytes. */
    char *tail = utf8_scrub_dup(r->tail, r->tail_len, r->tail_cut);
    struct runner_outcome o = {
        .exit_status = r->term_signal ? -1 : (int)r->exit_status,
        .term_signal = r->term_signal,
        .kill_reason = r->kill_reason,
        .result = r->result,
        .error = r->error,
        .stderr_tail = tail ? tail : "",
    };
    r->cb.on_exit(r->cb.ctx, &o);
    free(tail);
    close_handle(r, (uv_handle_t *)&r->proc);
    close_handle(r, (uv_handle_t *)&r->in);
    close_handle(r, (uv_handle_t *)&r->out);
    close_handle(r, (uv_handle_t *)&r->err);
    close_handle(r, (uv_handle_t *)&r->kill_timer);
    release(r);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    struct runner *r = p->data;
    r->exited = 1;
    r->exit_status = status;
    r->term_signal = sig;
    maybe_report(r);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(suggested);
    buf->len = buf->base ? suggested : 0;
}

/* Every string of a parsed event (keys too) made valid UTF-8: cJSON does
 * not check, and one bad byte in a progress event would make PostgreSQL
 * refuse the trial's result. 0, or -1 when out of memory. */
static int scrub_json(cJSON *j)
{
    for (; j != NULL; j = j->next) {
        char **strs[] = {&j->valuestring, (j->type & cJSON_StringIsConst) ? NULL : &j->string};
        for (size_t i = 0; i < 2; i++) {
            char **p = strs[i];
            if (p == NULL || *p == NULL || utf8_length(*p) != (size_t)-1) continue;
            char *fixed = utf8_scrub_dup(*p, strlen(*p), 0);
            if (fixed == NULL) return -1;
            cJSON_free(*p);
            *p = fixed;
        }
        if (scrub_json(j->child) != 0) return -1;
    }
    return 0;
}

static void handle_line(struct runner *r, char *line)
{
    cJSON *ev = cJSON_Parse(line);
    if (ev == NULL) return;   /* not ours: podium-train prints only JSON */
    if (scrub_json(ev) != 0) {
        cJSON_Delete(ev);
        return;
    }
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(ev, "event");
    if (r->cb.on_event) r->cb.on_event(r->cb.ctx, ev);
    if (cJSON_IsString(kind) && strcmp(kind->valuestring, "result") == 0) {
        cJSON_Delete(r->result);
        r->result = ev;
    } else if (cJSON_IsString(kind) && strcmp(kind->valuestring, "error") == 0) {
        cJSON_Delete(r->error);
        r->error = ev;
    } else {
        cJSON_Delete(ev);
    }
}

static void on_stdout(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct runner *r = s->data;
    for (ssize_t i = 0; i < n; i++) {
        char ch = buf->base[i];
        if (ch == '\n') {
            if (!r->line_skip && r->line) {
                r->line[r->line_len] = '\0';
                handle_line(r, r->line);
            }
            r->line_len = 0;
            r->line_skip = 0;
            continue;
        }
        if (r->line_skip) continue;
        if (r->line_len + 2 > r->line_cap) {
            size_t cap = r->line_cap ? r->line_cap * 2 : 4096;
            char *l = cap <= LINE_MAX_BYTES ? realloc(r->line, cap) : NULL;
            if (l == NULL) {
                r->line_skip = 1;
                continue;
            }
            r->line = l;
            r->line_cap = cap;
        }
        r->line[r->line_len++] = ch;
    }
    free(buf->base);
    if (n < 0) {
        uv_read_stop(s);
        r->out_eof = 1;
        maybe_report(r);
    }
}

static void on_stderr(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct runner *r = s->data;
    if (n > 0) {
        size_t k = (size_t)n;
        const char *p = buf->base;
        if (k >= TAIL_BYTES - 1) {
            p += k - (TAIL_BYTES - 1);
            k = TAIL_BYTES - 1;
            r->tail_len = 0;
            r->tail_cut = 1;
        }
        if (r->tail_len + k > TAIL_BYTES - 1) {
            size_t drop = r->tail_len + k - (TAIL_BYTES - 1);
            memmove(r->tail, r->tail + drop, r->tail_len - drop);
            r->tail_len -= drop;
            r->tail_cut = 1;
        }
        memcpy(r->tail + r->tail_len, p, k);
        r->tail_len += k;
    }
    free(buf->base);
    if (n < 0) {
        uv_read_stop(s);
        r->err_eof = 1;
        maybe_report(r);
    }
}

static void on_written(uv_write_t *w, int status)
{
    struct runner *r = w->data;
    (void)status;   /* a child that died early: its exit says why */
    close_handle(r, (uv_handle_t *)&r->in);
}

static void on_kill_timer(uv_timer_t *t)
{
    struct runner *r = t->data;
    if (!r->exited) uv_process_kill(&r->proc, SIGKILL);
}

void runner_kill(struct runner *r, int reason, unsigned grace_ms)
{
    if (r->exited || r->reported) return;
    if (r->kill_reason == RUNNER_NOT_KILLED) r->kill_reason = reason;
    uv_process_kill(&r->proc, SIGTERM);
    uint64_t due = uv_timer_get_due_in(&r->kill_timer);
    if (!uv_is_active((uv_handle_t *)&r->kill_timer) || due > grace_ms)
        uv_timer_start(&r->kill_timer, on_kill_timer, grace_ms, 0);
}

static char **make_env(const char *const *extra)
{
    size_t n = 0, m = 0;
    while (environ[n]) n++;
    while (extra && extra[m]) m++;
    char **env = calloc(n + m + 1, sizeof *env);
    if (env == NULL) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < m; i++) env[k++] = strdup(extra[i]);
    for (size_t i = 0; i < n; i++) {
        int shadowed = 0;
        for (size_t j = 0; j < m; j++) {
            size_t eq = strcspn(extra[j], "=");
            if (strncmp(environ[i], extra[j], eq + 1) == 0) shadowed = 1;
        }
        if (!shadowed) env[k++] = strdup(environ[i]);
    }
    for (size_t i = 0; i < k; i++)
        if (env[i] == NULL) {
            for (size_t j = 0; j < k; j++) free(env[j]);
            free(env);
            return NULL;
        }
    return env;
}

struct runner *runner_start(uv_loop_t *loop, const char *program, const char *spec,
                            const char *const *env_extra, const struct runner_callbacks *cb,
                            char *err, size_t errlen)
{
    struct runner *r = calloc(1, sizeof *r);
    if (r == NULL || (r->spec = strdup(spec)) == NULL || (r->env = make_env(env_extra)) == NULL) {
        if (r) {
            free(r->spec);
            free(r);
        }
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->loop = loop;
    r->cb = *cb;
    r->open_handles = 1;
    uv_pipe_init(loop, &r->in, 0);
    uv_pipe_init(loop, &r->out, 0);
    uv_pipe_init(loop, &r->err, 0);
    uv_timer_init(loop, &r->kill_timer);
    r->in.data = r->out.data = r->err.data = r->kill_timer.data = r->proc.data = r;

    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
    stdio[0].data.stream = (uv_stream_t *)&r->in;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&r->out;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&r->err;
    char *args[] = {(char *)program, NULL};
    uv_process_options_t opts;
    memset(&opts, 0, sizeof opts);
    opts.file = program;
    opts.args = args;
    opts.env = r->env;
    opts.exit_cb = on_exit_cb;
    opts.stdio_count = 3;
    opts.stdio = stdio;
    int rc = uv_spawn(loop, &r->proc, &opts);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start %s: %s", program, uv_strerror(rc));
        /* uv_spawn failing still leaves the handle to be closed */
        r->exited = r->out_eof = r->err_eof = r->reported = 1;
        close_handle(r, (uv_handle_t *)&r->proc);
        close_handle(r, (uv_handle_t *)&r->in);
        close_handle(r, (uv_handle_t *)&r->out);
        close_handle(r, (uv_handle_t *)&r->err);
        close_handle(r, (uv_handle_t *)&r->kill_timer);
        release(r);
        return NULL;
    }
    uv_read_start((uv_stream_t *)&r->out, alloc_cb, on_stdout);
    uv_read_start((uv_stream_t *)&r->err, alloc_cb, on_stderr);
    uv_buf_t b = uv_buf_init(r->spec, (unsigned)strlen(r->spec));
    r->wreq.data = r;
    if (uv_write(&r->wreq, (uv_stream_t *)&r->in, &b, 1, on_written) != 0)
        close_handle(r, (uv_handle_t *)&r->in);
    return r;
}
