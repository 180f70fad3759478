/*
 * optim.c - see optim.h. Each optimizer kind is a small table entry (how
 * many state floats per parameter, and the update of one group); the
 * object holds the groups, one state block per group, the lr and the step
 * count. Runs on the caller's thread. The update rules themselves are
 * nn/optim_math.h's (host arrays) or the backend's sgd_step/adam_step
 * entries (optim_new_on), whose CPU versions are the same functions.
 *
 * State layout: for each group in order, state_per_param blocks of n
 * floats (SGD: the momentum buffer; AdamW: m then v). The saved buffer is
 * a fixed header, the group sizes, then those floats.
 */
#include "nn/optim.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/optim_math.h"

struct optim_ops {
    const char *name;
    /* Floats of state per parameter for this configuration. */
    int (*state_per_param)(const struct optim_config *cfg);
    /* Update one group; t is the 1-based step, wd already 0 for no_decay. */
    void (*step_group)(const struct optim_config *cfg, double lr, double wd,
                       uint64_t t, const struct optim_group *g, float *state);
    /* The same through a backend's table (optim_new_on). */
    void (*step_group_on)(struct nn_backend *be, const struct optim_config *cfg, double lr,
                          double wd, uint64_t t, const struct optim_group *g, float *state);
};

struct optim {
    struct optim_config cfg;
    const struct optim_ops *ops;
    struct optim_group *groups;
    size_t n_groups;
    size_t n_params;
    int per_param;          /* state floats per parameter */
    float *state;           /* n_params * per_param (backend memory when be) */
    uint64_t steps;
    struct nn_backend *be;  /* NULL: groups and state are host arrays */
    const float **gs;       /* be: the groups' gradients, for sumsq */
    size_t *ns;             /*     and their sizes */
};

static void set_err(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t err_size, const char *fmt, ...)
{
    if (!err || err_size == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

/* --- SGD ------------------------------------------------------------------ */

static int sgd_state(const struct optim_config *cfg)
{
    return cfg->momentum != 0.0 ? 1 : 0;
}

static void sgd_step(const struct optim_config *cfg, double lr, double wd,
                     uint64_t t, const struct optim_group *g, float *state)
{
    (void)t;
    optim_math_sgd(g->w, g->g, cfg->momentum != 0.0 ? state : NULL, 0, g->n, lr, cfg->momentum,
                   wd, cfg->nesterov);
}

static void sgd_step_on(struct nn_backend *be, const struct optim_config *cfg, double lr,
                        double wd, uint64_t t, const struct optim_group *g, float *state)
{
    (void)t;
    be->sgd_step(be, g->w, g->g, cfg->momentum != 0.0 ? state : NULL, g->n, lr, cfg->momentum,
                 wd, cfg->nesterov);
}

/* --- AdamW ---------------------------------------------------------------- */

static int adamw_state(const struct optim_config *cfg)
{
    (void)cfg;
    return 2;
}

static void adamw_step(const struct optim_config *cfg, double lr, double wd,
                       uint64_t t, const struct optim_group *g, float *state)
{
    struct optim_math_adam a = optim_math_adam_consts(lr, cfg->beta1, cfg->beta2, cfg->eps, wd, t);
    optim_math_adam(g->w, g->g, state, state + g->n, 0, g->n, &a);
}

static void adamw_step_on(struct nn_backend *be, const struct optim_config *cfg, double lr,
                          double wd, uint64_t t, const struct optim_group *g, float *state)
{
    be->adam_step(be, g->w, g->g, state, state + g->n, g->n, lr, cfg->beta1, cfg->beta2, cfg->eps,
                  wd, t);
}

static const struct optim_ops ops_table[] = {
    [OPTIM_SGD] = {"sgd", sgd_state, sgd_step, sgd_step_on},
    [OPTIM_ADAMW] = {"adamw", adamw_state, adamw_step, adamw_step_on},
};

/* --- configuration -------------------------------------------------------- */

void optim_config_init(struct optim_config *cfg, int kind)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = kind;
    if (kind == OPTIM_ADAMW) {
        cfg->lr = 1e-3;
        cfg->beta1 = 0.9;
        cfg->beta2 = 0.999;
        cfg->eps = 1e-8;
        cfg->weight_decay = 1e-2;
    } else {
        cfg->lr = 0.01;
    }
}

static int finite_in(double x, double lo, double hi)
{
    return isfinite(x) && x >= lo && x < hi;
}

static int config_check(const struct optim_config *c, char *err, size_t err_size)
{
    if (c->kind != OPTIM_SGD && c->kind != OPTIM_ADAMW) {
        set_err(err, err_size, "unknown optimizer kind %d", c->kind);
        return OPTIM_EARG;
    }
    if (!isfinite(c->lr) || c->lr < 0) {
        set_err(err, err_size, "lr must be finite and >= 0, got %g", c->lr);
        return OPTIM_EARG;
    }
    if (!isfinite(c->weight_decay) || c->weight_decay < 0) {
        set_err(err, err_size, "weight_decay must be finite and >= 0, got %g", c->weight_decay);
        return OPTIM_EARG;
    }
    if (c->kind == OPTIM_SGD) {
        if (!finite_in(c->momentum, 0.0, 1.0)) {
            set_err(err, err_size, "momentum must be in [0, 1), got %g", c->momentum);
            return OPTIM_EARG;
        }
        if (c->nesterov && c->momentum <= 0) {
            set_err(err, err_size, "nesterov needs momentum > 0");
            return OPTIM_EARG;
        }
    } else {
        if (!finite_in(c->beta1, 0.0, 1.0) || !finite_in(c->beta2, 0.0, 1.0)) {
            set_err(err, err_size, "betas must be in [0, 1), got (%g, %g)", c->beta1, c->beta2);
            return OPTIM_EARG;
        }
        if (!isfinite(c->eps) || c->eps <= 0) {
            set_err(err, err_size, "eps must be finite and > 0, got %g", c->eps);
            return OPTIM_EARG;
        }
    }
    return 0;
}

/* --- object ----------------------------------------------------------------- */

static int optim_make(struct nn_backend *be, const struct optim_config *cfg,
                      const struct optim_group *groups, size_t n_groups, struct optim **out,
                      char *err, size_t err_size)
{
    struct optim *o = NULL;
    int rc;
    if (out) *out = NULL;
    if (!cfg || !out || (n_groups > 0 && !groups)) {
        set_err(err, err_size, "NULL argument");
        return OPTIM_EARG;
    }
    if ((rc = config_check(cfg, err, err_size)) != 0) return rc;
    if (n_groups == 0 || n_groups > OPTIM_MAX_GROUPS) {
        set_err(err, err_size, "need 1..%d parameter groups, got %zu", OPTIM_MAX_GROUPS, n_groups);
        return OPTIM_EARG;
    }
    size_t total = 0;
    for (size_t i = 0; i < n_groups; i++) {
        if (groups[i].n > 0 && (!groups[i].w || !groups[i].g)) {
            set_err(err, err_size, "group %zu has NULL weights or gradients", i);
            return OPTIM_EARG;
        }
        if (groups[i].n > OPTIM_MAX_PARAMS - total) {
            set_err(err, err_size, "more than %llu parameters",
                    (unsigned long long)OPTIM_MAX_PARAMS);
            return OPTIM_EARG;
        }
        total += groups[i].n;
    }

    rc = OPTIM_ENOMEM;
    o = calloc(1, sizeof *o);
    if (!o) goto fail;
    o->cfg = *cfg;
    o->ops = &ops_table[cfg->kind];
    o->n_groups = n_groups;
    o->n_params = total;
    o->per_param = o->ops->state_per_param(cfg);
    o->groups = malloc(n_groups * sizeof *o->groups);
    if (!o->groups) goto fail;
    memcpy(o->groups, groups, n_groups * sizeof *groups);
    size_t floats = total * (size_t)o->per_param;
    if (be) {
        o->gs = malloc(n_groups * sizeof *o->gs);
        o->ns = malloc(n_groups * sizeof *o->ns);
        if (!o->gs || !o->ns) goto fail;
        for (size_t i = 0; i < n_groups; i++) {
            o->gs[i] = groups[i].g;
            o->ns[i] = groups[i].n;
        }
        if (floats > 0) {
            if (!(o->state = be->alloc(be, floats))) goto fail;
            be->fill(be, o->state, 0.0f, floats);
        }
        o->be = be;   /* set last: optim_free frees state through it */
    } else if (floats > 0) {
        o->state = calloc(floats, sizeof *o->state);
        if (!o->state) goto fail;
    }
    *out = o;
    return 0;

fail:
    set_err(err, err_size, "out of %smemory for %zu parameters", be ? "backend " : "", total);
    if (o && be && o->state) {
        be->free(be, o->state);
        o->state = NULL;
    }
    optim_free(o);
    return rc;
}

int optim_new(const struct optim_config *cfg, const struct optim_group *groups,
              size_t n_groups, struct optim **out, char *err, size_t err_size)
{
    return optim_make(NULL, cfg, groups, n_groups, out, err, err_size);
}

int optim_new_on(struct nn_backend *be, const struct optim_config *cfg,
                 const struct optim_group *groups, size_t n_groups, struct optim **out,
                 char *err, size_t err_size)
{
    if (out) *out = NULL;
    if (!be || !be->sgd_step || !be->adam_step || !be->sumsq) {
        set_err(err, err_size, "backend %s has no optimizer entries", be ? be->name : "(NULL)");
        return OPTIM_EARG;
    }
    return optim_make(be, cfg, groups, n_groups, out, err, err_size);
}

void optim_free(struct optim *o)
{
    if (!o) return;
    if (o->be) o->be->free(o->be, o->state);
    else free(o->state);
    free(o->gs);
    free(o->ns);
    free(o->groups);
    free(o);
}

void optim_step(struct optim *o)
{
    o->steps++;
    float *state = o->state;
    for (size_t i = 0; i < o->n_groups; i++) {
        const struct optim_group *g = &o->groups[i];
        double wd = g->no_decay ? 0.0 : o->cfg.weight_decay;
        if (o->be) o->ops->step_group_on(o->be, &o->cfg, o->cfg.lr, wd, o->steps, g, state);
        else o->ops->step_group(&o->cfg, o->cfg.lr, wd, o->steps, g, state);
        if (state) state += g->n * (size_t)o->per_param;
    }
}

void optim_zero_grad(struct optim *o)
{
    for (size_t i = 0; i < o->n_groups; i++) {
        if (!o->groups[i].n) continue;
        if (o->be) o->be->fill(o->be, o->groups[i].g, 0.0f, o->groups[i].n);
        else memset(o->groups[i].g, 0, o->groups[i].n * sizeof(float));
    }
}

int optim_set_lr(struct optim *o, double lr)
{
    if (!isfinite(lr) || lr < 0) return OPTIM_EARG;
    o->cfg.lr = lr;
    return 0;
}

double optim_lr(const struct optim *o) { return o->cfg.lr; }
uint64_t optim_steps(const struct optim *o) { return o->steps; }
size_t optim_n_params(const struct optim *o) { return o->n_params; }

/* The clipping rule once the norm is known: the factor, or 1 for none. */
static double clip_coef(double norm, double max_norm)
{
    if (!isfinite(norm) || !(max_norm > 0)) return 1.0;
    double coef = max_norm / (norm + 1e-6);
    return coef < 1.0 ? coef : 1.0;
}

double optim_clip_groups(const struct optim_group *groups, size_t n_groups, double max_norm)
{
    double ss = 0.0;
    for (size_t i = 0; i < n_groups; i++) optim_math_sumsq(groups[i].g, groups[i].n, &ss);
    double norm = sqrt(ss), coef = clip_coef(norm, max_norm);
    if (coef < 1.0) {
        float c = (float)coef;
        for (size_t i = 0; i < n_groups; i++)
            for (size_t k = 0; k < groups[i].n; k++) groups[i].g[k] *= c;
    }
    return norm;
}

double optim_clip_grad_norm(struct optim *o, double max_norm)
{
    if (!o->be) return optim_clip_groups(o->groups, o->n_groups, max_norm);
    struct nn_backend *be = o->be;
    /* k is at most OPTIM_MAX_GROUPS, which fits an int */
    double norm = sqrt(be->sumsq(be, o->gs, o->ns, (int)o->n_groups));
    double coef = clip_coef(norm, max_norm);
    if (coef < 1.0)
        for (size_t i = 0; i < o->n_groups; i++)
            be->scale(be, o->groups[i].g, (float)coef, o->groups[i].g, o->groups[i].n);
    return norm;
}

/* --- state save/restore ------------------------------------------------------ */

#define OPTIM_STATE_MAGIC 0x4d54504fu   /* "OPTM" */

struct state_header {
    uint32_t magic;
    uint32_t kind;
    uint32_t per_param;
    uint32_t n_groups;
    uint64_t n_params;
    uint64_t steps;
    double lr;
};

static size_t state_floats(const struct optim *o)
{
    return o->n_params * (size_t)o->per_param;
}

size_t optim_state_bytes(const struct optim *o)
{
    return sizeof(struct state_header) + o->n_groups * sizeof(uint64_t)
           + state_floats(o) * sizeof(float);
}

int optim_state_save(const struct optim *o, void *buf, size_t size)
{
    if (!buf || size < optim_state_bytes(o)) return OPTIM_EARG;
    struct state_header h = {OPTIM_STATE_MAGIC, (uint32_t)o->cfg.kind, (uint32_t)o->per_param,
                             (uint32_t)o->n_groups, (uint64_t)o->n_params, o->steps, o->cfg.lr};
    unsigned char *p = buf;
    memcpy(p, &h, sizeof h);
    p += sizeof h;
    for (size_t i = 0; i < o->n_groups; i++) {
        uint64_t n = (uint64_t)o->groups[i].n;
        memcpy(p, &n, sizeof n);
        p += sizeof n;
    }
    if (state_floats(o)) {
        if (o->be) o->be->download(o->be, (float *)(void *)p, o->state, state_floats(o));
        else memcpy(p, o->state, state_floats(o) * sizeof(float));
    }
    return 0;
}

int optim_state_load(struct optim *o, const void *buf, size_t size, char *err, size_t err_size)
{
    struct state_header h;
    const unsigned char *p = buf;
    if (!buf || size < sizeof h) {
        set_err(err, err_size, "optimizer state: %zu bytes is too short", size);
        return OPTIM_ESTATE;
    }
    memcpy(&h, p, sizeof h);
    p += sizeof h;
    if (h.magic != OPTIM_STATE_MAGIC) {
        set_err(err, err_size, "optimizer state: bad magic");
        return OPTIM_ESTATE;
    }
    if (h.kind != (uint32_t)o->cfg.kind || h.per_param != (uint32_t)o->per_param
        || h.n_groups != (uint32_t)o->n_groups || h.n_params != (uint64_t)o->n_params) {
        set_err(err, err_size, "optimizer state is for %s over %llu parameters in %u groups, "
                "not %s over %zu in %zu", h.kind < 2 ? ops_table[h.kind].name : "?",
                (unsigned long long)h.n_params, h.n_groups, o->ops->name, o->n_params, o->n_groups);
        return OPTIM_ESTATE;
    }
    if (size != optim_state_bytes(o)) {
        set_err(err, err_size, "optimizer state: %zu bytes, expected %zu", size, optim_state_bytes(o));
        return OPTIM_ESTATE;
    }
    for (size_t i = 0; i < o->n_groups; i++) {
        uint64_t n;
        memcpy(&n, p, sizeof n);
        p += sizeof n;
        if (n != (uint64_t)o->groups[i].n) {
            set_err(err, err_size, "optimizer state: group %zu has %llu parameters, expected %zu",
                    i, (unsigned long long)n, o->groups[i].n);
            return OPTIM_ESTATE;
        }
    }
    if (!isfinite(h.lr) || h.lr < 0) {
        set_err(err, err_size, "optimizer state: bad lr");
        return OPTIM_ESTATE;
    }
    o->steps = h.steps;
    o->cfg.lr = h.lr;
    if (state_floats(o)) {
        if (o->be) o->be->upload(o->be, o->state, (const float *)(const void *)p, state_floats(o));
        else memcpy(o->state, p, state_floats(o) * sizeof(float));
    }
    return 0;
}

/* --- schedule ------------------------------------------------------------------ */

int optim_sched_check(const struct optim_sched *s, char *err, size_t err_size)
{
    if (s->kind != OPTIM_SCHED_CONSTANT && s->kind != OPTIM_SCHED_COSINE) {
        set_err(err, err_size, "unknown schedule kind %d", s->kind);
        return OPTIM_EARG;
    }
    if (!isfinite(s->lr_max) || s->lr_max < 0) {
        set_err(err, err_size, "lr_max must be finite and >= 0, got %g", s->lr_max);
        return OPTIM_EARG;
    }
    if (s->kind == OPTIM_SCHED_COSINE) {
        if (!isfinite(s->lr_min) || s->lr_min < 0 || s->lr_min > s->lr_max) {
            set_err(err, err_size, "lr_min must be in [0, lr_max], got %g", s->lr_min);
            return OPTIM_EARG;
        }
        if (s->total == 0 || s->warmup >= s->total) {
            set_err(err, err_size, "need warmup < total steps, got %llu and %llu",
                    (unsigned long long)s->warmup, (unsigned long long)s->total);
            return OPTIM_EARG;
        }
    }
    return 0;
}

double optim_sched_lr(const struct optim_sched *s, uint64_t step)
{
    if (s->kind != OPTIM_SCHED_COSINE) return s->lr_max;
    if (step < s->warmup) return s->lr_max * (double)(step + 1) / (double)(s->warmup + 1);
    if (step >= s->total) return s->lr_min;
    double pos = (double)(step - s->warmup) / (double)(s->total - s->warmup);
    return s->lr_min + (s->lr_max - s->lr_min) * (1.0 + cos(M_PI * pos)) / 2.0;
}
