/*
 * linear.c - see linear.h. Runs on the caller's thread; the BLAS calls may
 * use OpenBLAS's own threads.
 *
 * Layout of the parameter vector theta for logistic regression: the d*k
 * coefficients row-major (feature j, output c), then k intercepts. All
 * objectives are divided by the total sample weight W so that tol means
 * the same for any n.
 */
#include "trainers/linear.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainers/params.h"

enum { PEN_L2, PEN_L1, PEN_EN, PEN_NONE };
static const char *const pen_names[] = {"l2", "l1", "elasticnet", "none", NULL};

struct linear_params {
    enum pd_task_kind kind;
    int penalty;
    double C, l1_ratio, alpha, tol;
    long max_iter;
    int fit_intercept;
};

struct linear_model {
    uint32_t kind, n_classes, d, k;
    double *coef;       /* d*k */
    double *intercept;  /* k */
};

#define LINEAR_MAGIC 0x314e494cu /* "LIN1" */
#define LINEAR_MAX_D (1u << 24)
#define LINEAR_MAX_CLASSES (1u << 16)
/* Ridge / least squares above this many features use coordinate descent
 * instead of the O(d³) Cholesky solve on a d*d matrix. */
#define LINEAR_MAX_DENSE_D 2048

/* ---- parameters ---------------------------------------------------------- */

static int linear_params_parse(const cJSON *params, const struct pd_task *task,
                               void **out, char *err, size_t errlen)
{
    *out = NULL;
    struct params_ctx pc = {"linear", PARAMS_BOUNDS, err, errlen};
    if (task == NULL || (task->kind != PD_TASK_CLASSIFICATION && task->kind != PD_TASK_REGRESSION))
        return params_fail(err, errlen, "task: unknown kind");
    if (params_object(&pc, params) != 0) return PD_EPARAM;
    struct linear_params *p = calloc(1, sizeof *p);
    if (p == NULL) {
        params_fail(err, errlen, "params: out of memory");
        return PD_ENOMEM;
    }
    int cls = task->kind == PD_TASK_CLASSIFICATION;
    p->kind = task->kind;
    p->penalty = PEN_L2;
    p->C = 1.0;
    p->l1_ratio = cls ? 0.5 : 0.0;
    p->alpha = 1e-3;
    p->tol = 1e-4;
    p->max_iter = 1000;
    p->fit_intercept = 1;
    const cJSON *it;
    int rc = 0;
    const cJSON *obj = cJSON_IsObject(params) ? params : NULL;
    cJSON_ArrayForEach(it, obj) {
        const char *k = it->string;
        if (strcmp(k, "tol") == 0) rc = params_num(&pc, it, 0, 1, INFINITY, 0, &p->tol);
        else if (strcmp(k, "max_iter") == 0) rc = params_int(&pc, it, 1, 1000000, &p->max_iter);
        else if (strcmp(k, "fit_intercept") == 0) rc = params_bool(&pc, it, &p->fit_intercept);
        else if (strcmp(k, "l1_ratio") == 0) rc = params_num(&pc, it, 0, 0, 1, 0, &p->l1_ratio);
        else if (cls && strcmp(k, "C") == 0) rc = params_num(&pc, it, 0, 1, INFINITY, 0, &p->C);
        else if (cls && strcmp(k, "penalty") == 0) rc = params_enum(&pc, it, pen_names, &p->penalty);
        else if (!cls && strcmp(k, "alpha") == 0) rc = params_num(&pc, it, 0, 0, INFINITY, 0, &p->alpha);
        else if (!cls && (strcmp(k, "C") == 0 || strcmp(k, "penalty") == 0))
            rc = params_fail(err, errlen, "%s: not a regression parameter (use alpha and l1_ratio)", k);
        else if (cls && strcmp(k, "alpha") == 0)
            rc = params_fail(err, errlen, "alpha: not a classification parameter (use C and penalty)");
        else rc = params_unknown(&pc, it);
        if (rc != 0) {
            free(p);
            return rc;
        }
    }
    *out = p;
    return PD_OK;
}

static cJSON *linear_params_json(const void *params)
{
    const struct linear_params *p = params;
    cJSON *o = cJSON_CreateObject();
    if (o == NULL || p == NULL) return o;
    if (p->kind == PD_TASK_CLASSIFICATION) {
        cJSON_AddStringToObject(o, "penalty", pen_names[p->penalty]);
        cJSON_AddNumberToObject(o, "C", p->C);
    } else {
        cJSON_AddNumberToObject(o, "alpha", p->alpha);
    }
    cJSON_AddNumberToObject(o, "l1_ratio", p->l1_ratio);
    cJSON_AddNumberToObject(o, "tol", p->tol);
    cJSON_AddNumberToObject(o, "max_iter", p->max_iter);
    cJSON_AddBoolToObject(o, "fit_intercept", p->fit_intercept);
    return o;
}

static void linear_params_free(void *params) { free(params); }

/* ---- model ------------------------------------------------------------- */

static void linear_model_free(void *model)
{
    struct linear_model *m = model;
    if (m == NULL) return;
    free(m->coef);
    free(m->intercept);
    free(m);
}

static struct linear_model *model_new(uint32_t kind, uint32_t n_classes,
                                      uint32_t d, uint32_t k)
{
    struct linear_model *m = calloc(1, sizeof *m);
    if (m == NULL) return NULL;
    m->kind = kind;
    m->n_classes = n_classes;
    m->d = d;
    m->k = k;
    m->coef = calloc((size_t)d * k + 1, sizeof *m->coef);
    m->intercept = calloc(k, sizeof *m->intercept);
    if (m->coef == NULL || m->intercept == NULL) {
        linear_model_free(m);
        return NULL;
    }
    return m;
}

int pd_linear_coef(const void *model, size_t *d, size_t *k,
                   const double **coef, const double **intercept)
{
    const struct linear_model *m = model;
    if (m == NULL) return PD_EPARAM;
    *d = m->d;
    *k = m->k;
    *coef = m->coef;
    *intercept = m->intercept;
    return PD_OK;
}

static int cancelled(const struct pd_fit_opts *o)
{
    return o != NULL && o->cancel != NULL && *o->cancel;
}

static void report(const struct pd_fit_opts *o, int it, int total,
                   const char *metric, double v)
{
    if (o == NULL || o->progress == NULL) return;
    struct pd_progress p = {it, total, metric, v};
    o->progress(o->progress_ctx, &p);
}

/* Shared input checks; fills the normalized weights sw (sum 1). */
static int check_data(const struct pd_task *task, const struct pd_data *tr,
                      double *sw, char *err, size_t errlen)
{
    double W = 0;
    for (size_t i = 0; i < tr->n; i++) {
        double w = tr->w ? tr->w[i] : 1.0;
        if (!(w >= 0) || !isfinite(w)) {
            params_fail(err, errlen, "row %zu: weight must be finite and >= 0", i);
            return PD_EDATA;
        }
        double y = tr->y[i];
        if (!isfinite(y) || (task->kind == PD_TASK_CLASSIFICATION &&
                             (y < 0 || y >= task->n_classes || y != floor(y)))) {
            params_fail(err, errlen, "row %zu: target %g is not valid for this task", i, y);
            return PD_EDATA;
        }
        for (size_t j = 0; j < tr->d; j++)
            if (!isfinite(tr->x[i * tr->d + j])) {
                params_fail(err, errlen, "row %zu feature %zu: missing or infinite value", i, j);
                return PD_EDATA;
            }
        sw[i] = w;
        W += w;
    }
    if (!(W > 0)) {
        params_fail(err, errlen, "weights: sum to zero");
        return PD_EDATA;
    }
    for (size_t i = 0; i < tr->n; i++) sw[i] /= W;
    return PD_OK;
}

/* ---- logistic regression ------------------------------------------------ */

struct lr_ctx {
    size_t n, d, k;       /* k = columns: 1 (binary) or n_classes */
    const double *x;      /* n*d */
    const double *y;      /* class indices */
    const double *sw;     /* n, sums to 1 */
    double lam2;          /* weight of ||coef||²/2 */
    int fit_intercept;
    double *z;            /* n*k scratch */
};

/* Smooth part: sum_i sw_i loss_i + lam2/2 ||coef||². grad may be NULL. */
static double lr_objective(const struct lr_ctx *c, const double *theta,
                           double *grad)
{
    size_t n = c->n, d = c->d, k = c->k;
    const double *b = theta + d * k;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)k,
                (int)d, 1.0, c->x, (int)d, theta, (int)k, 0.0, c->z, (int)k);
    double f = 0;
    for (size_t i = 0; i < n; i++) {
        double *z = c->z + i * k;
        int yi = (int)c->y[i];
        if (k == 1) {
            double t = z[0] + b[0], yy = yi == 1;
            /* log(1 + e^t) - y t, stably */
            double lse = t > 0 ? t + log1p(exp(-t)) : log1p(exp(t));
            f += c->sw[i] * (lse - yy * t);
            double p = t >= 0 ? 1 / (1 + exp(-t)) : exp(t) / (1 + exp(t));
            z[0] = c->sw[i] * (p - yy);
        } else {
            double mx = -INFINITY;
            for (size_t j = 0; j < k; j++) {
                z[j] += b[j];
                if (z[j] > mx) mx = z[j];
            }
            double s = 0;
            for (size_t j = 0; j < k; j++) s += exp(z[j] - mx);
            double lse = mx + log(s);
            f += c->sw[i] * (lse - z[yi]);
            for (size_t j = 0; j < k; j++)
                z[j] = c->sw[i] * (exp(z[j] - lse) - (j == (size_t)yi));
        }
    }
    double reg = 0;
    for (size_t j = 0; j < d * k; j++) reg += theta[j] * theta[j];
    f += 0.5 * c->lam2 * reg;
    if (grad != NULL) {
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d, (int)k,
                    (int)n, 1.0, c->x, (int)d, c->z, (int)k, 0.0, grad, (int)k);
        for (size_t j = 0; j < d * k; j++) grad[j] += c->lam2 * theta[j];
        for (size_t j = 0; j < k; j++) {
            double g = 0;
            for (size_t i = 0; i < n; i++) g += c->z[i * k + j];
            grad[d * k + j] = c->fit_intercept ? g : 0;
        }
    }
    return f;
}

static double inf_norm(const double *v, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(v[i]) > m) m = fabs(v[i]);
    return m;
}

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

enum { LBFGS_M = 10 };

/* Minimize the smooth objective from theta (in/out) with L-BFGS and an
 * Armijo backtracking line search. */
static int lr_lbfgs(const struct lr_ctx *c, double *theta, double tol,
                    int max_iter, const struct pd_fit_opts *opts)
{
    size_t np = c->d * c->k + c->k;
    double *buf = calloc(np * (2 * LBFGS_M + 4), sizeof *buf);
    if (buf == NULL) return PD_ENOMEM;
    double *g = buf, *dir = g + np, *xn = dir + np, *gn = xn + np;
    double *S = gn + np, *Y = S + np * LBFGS_M;
    double rho[LBFGS_M], alp[LBFGS_M];
    int mem = 0, head = 0, rc = PD_OK;
    double f = lr_objective(c, theta, g);
    for (int it = 1; it <= max_iter; it++) {
        if (inf_norm(g, np) <= tol) break;
        if (cancelled(opts)) { rc = PD_ECANCELLED; break; }
        /* two-loop recursion: dir = -H g */
        for (size_t j = 0; j < np; j++) dir[j] = -g[j];
        for (int m = 0; m < mem; m++) {
            int s = (head - 1 - m + LBFGS_M) % LBFGS_M;
            alp[s] = rho[s] * dot(S + s * np, dir, np);
            for (size_t j = 0; j < np; j++) dir[j] -= alp[s] * Y[s * np + j];
        }
        if (mem > 0) {
            int s = (head - 1 + LBFGS_M) % LBFGS_M;
            double gamma = dot(S + s * np, Y + s * np, np) / dot(Y + s * np, Y + s * np, np);
            for (size_t j = 0; j < np; j++) dir[j] *= gamma;
        }
        for (int m = mem - 1; m >= 0; m--) {
            int s = (head - 1 - m + LBFGS_M) % LBFGS_M;
            double beta = rho[s] * dot(Y + s * np, dir, np);
            for (size_t j = 0; j < np; j++) dir[j] += (alp[s] - beta) * S[s * np + j];
        }
        double gd = dot(g, dir, np);
        if (!(gd < 0)) {  /* not a descent direction: restart from -g */
            mem = 0;
            for (size_t j = 0; j < np; j++) dir[j] = -g[j];
            gd = -dot(g, g, np);
        }
        double step = mem == 0 ? fmin(1.0, 1.0 / sqrt(-gd)) : 1.0, fn = f;
        int ok = 0;
        for (int ls = 0; ls < 60; ls++) {
            for (size_t j = 0; j < np; j++) xn[j] = theta[j] + step * dir[j];
            fn = lr_objective(c, xn, gn);
            if (fn <= f + 1e-4 * step * gd) { ok = 1; break; }
            step *= 0.5;
        }
        if (!ok) break;  /* no decrease left at double precision */
        int s = head;
        for (size_t j = 0; j < np; j++) {
            S[s * np + j] = xn[j] - theta[j];
            Y[s * np + j] = gn[j] - g[j];
        }
        double sy = dot(S + s * np, Y + s * np, np);
        if (sy > 1e-16 * dot(Y + s * np, Y + s * np, np) && sy > 0) {
            rho[s] = 1 / sy;
            head = (head + 1) % LBFGS_M;
            if (mem < LBFGS_M) mem++;
        }
        memcpy(theta, xn, np * sizeof *theta);
        memcpy(g, gn, np * sizeof *g);
        int flat = f - fn <= 1e-16 * fmax(fabs(f), 1.0);
        f = fn;
        report(opts, it, max_iter, "train_objective", f);
        if (flat && inf_norm(g, np) <= sqrt(tol)) break;
    }
    free(buf);
    return rc;
}

/* FISTA for smooth + lam1 ||coef||_1 (intercepts not penalized). */
static int lr_fista(const struct lr_ctx *c, double *theta, double lam1,
                    double tol, int max_iter, const struct pd_fit_opts *opts)
{
    size_t np = c->d * c->k + c->k, nw = c->d * c->k;
    double *buf = calloc(np * 4, sizeof *buf);
    if (buf == NULL) return PD_ENOMEM;
    double *yk = buf, *gy = yk + np, *xn = gy + np, *diff = xn + np;
    memcpy(yk, theta, np * sizeof *yk);
    double L = 1.0, t = 1.0, Fprev = INFINITY;
    double fy = lr_objective(c, yk, gy);
    int rc = PD_OK;
    for (int it = 1; it <= max_iter; it++) {
        if (cancelled(opts)) { rc = PD_ECANCELLED; break; }
        double fx = 0;
        for (int bt = 0; bt < 80; bt++) {
            for (size_t j = 0; j < np; j++) {
                double v = yk[j] - gy[j] / L;
                if (j < nw) {
                    double th = lam1 / L;
                    v = v > th ? v - th : v < -th ? v + th : 0.0;
                }
                xn[j] = v;
                diff[j] = xn[j] - yk[j];
            }
            fx = lr_objective(c, xn, NULL);
            if (fx <= fy + dot(gy, diff, np) + 0.5 * L * dot(diff, diff, np) + 1e-14 * fabs(fy))
                break;
            L *= 2;
        }
        double gmap = L * inf_norm(diff, np);
        double l1 = 0;
        for (size_t j = 0; j < nw; j++) l1 += fabs(xn[j]);
        double F = fx + lam1 * l1;
        report(opts, it, max_iter, "train_objective", F);
        double tn;
        if (F > Fprev) {  /* adaptive restart: drop the momentum */
            tn = 1;
            memcpy(yk, xn, np * sizeof *yk);
        } else {
            tn = 0.5 * (1 + sqrt(1 + 4 * t * t));
            for (size_t j = 0; j < np; j++)
                yk[j] = xn[j] + ((t - 1) / tn) * (xn[j] - theta[j]);
        }
        memcpy(theta, xn, np * sizeof *theta);
        t = tn;
        Fprev = F;
        if (gmap <= tol) break;
        fy = lr_objective(c, yk, gy);
        L *= 0.9;  /* let the step grow back after a backtrack */
    }
    free(buf);
    return rc;
}

static int fit_logistic(const struct linear_params *p, const struct pd_task *task,
                        const struct pd_data *tr, const double *sw,
                        const struct pd_fit_opts *opts, struct linear_model **out,
                        char *err, size_t errlen)
{
    size_t n = tr->n, d = tr->d;
    int K = task->n_classes;
    size_t k = K == 2 ? 1 : (size_t)K;
    int *seen = calloc((size_t)K, sizeof *seen), present = 0;
    if (seen == NULL) return PD_ENOMEM;
    for (size_t i = 0; i < n; i++) seen[(int)tr->y[i]] |= sw[i] > 0;
    for (int c = 0; c < K; c++) present += seen[c];
    free(seen);
    if (present < 2) {
        params_fail(err, errlen, "target: needs rows of at least 2 classes");
        return PD_EDATA;
    }
    struct linear_model *m = model_new(PD_TASK_CLASSIFICATION, (uint32_t)K, (uint32_t)d, (uint32_t)k);
    double *x = malloc(n * d * sizeof *x);
    double *z = malloc(n * k * sizeof *z);
    double *theta = calloc(d * k + k, sizeof *theta);
    int rc = PD_ENOMEM;
    if (m == NULL || x == NULL || z == NULL || theta == NULL) goto done;
    for (size_t i = 0; i < n * d; i++) x[i] = tr->x[i];
    double W = tr->w ? 0 : (double)n;  /* total weight, for the penalty scaling */
    for (size_t i = 0; tr->w && i < n; i++) W += tr->w[i];
    double scale = 1.0 / (p->C * W), lam1 = 0, lam2 = 0;
    switch (p->penalty) {
    case PEN_L2: lam2 = scale; break;
    case PEN_L1: lam1 = scale; break;
    case PEN_EN: lam1 = p->l1_ratio * scale; lam2 = (1 - p->l1_ratio) * scale; break;
    default: break;
    }
    struct lr_ctx c = {n, d, k, x, tr->y, sw, lam2, p->fit_intercept, z};
    if (lam1 > 0) rc = lr_fista(&c, theta, lam1, p->tol, p->max_iter, opts);
    else rc = lr_lbfgs(&c, theta, p->tol, p->max_iter, opts);
    if (rc != PD_OK) goto done;
    for (size_t j = 0; j < d * k + k; j++)
        if (!isfinite(theta[j])) {
            params_fail(err, errlen, "linear: the solver diverged");
            rc = PD_EINTERNAL;
            goto done;
        }
    memcpy(m->coef, theta, d * k * sizeof *theta);
    memcpy(m->intercept, theta + d * k, k * sizeof *theta);
    *out = m;
    m = NULL;
done:
    if (rc == PD_ENOMEM) params_fail(err, errlen, "linear: out of memory");
    if (rc == PD_ECANCELLED) params_fail(err, errlen, "linear: cancelled");
    linear_model_free(m);
    free(x);
    free(z);
    free(theta);
    return rc;
}

/* ---- least squares ------------------------------------------------------ */

/* In-place Cholesky of the d*d SPD matrix a (lower triangle used) and a
 * solve of a x = b into b. -1 when a is not positive definite. */
static int cholesky_solve(double *a, double *b, size_t d)
{
    for (size_t j = 0; j < d; j++) {
        double s = a[j * d + j];
        for (size_t k = 0; k < j; k++) s -= a[j * d + k] * a[j * d + k];
        if (!(s > 0)) return -1;
        double l = sqrt(s);
        a[j * d + j] = l;
        for (size_t i = j + 1; i < d; i++) {
            double t = a[i * d + j];
            for (size_t k = 0; k < j; k++) t -= a[i * d + k] * a[j * d + k];
            a[i * d + j] = t / l;
        }
    }
    for (size_t i = 0; i < d; i++) {  /* L y = b */
        double t = b[i];
        for (size_t k = 0; k < i; k++) t -= a[i * d + k] * b[k];
        b[i] = t / a[i * d + i];
    }
    for (size_t i = d; i-- > 0;) {    /* L' x = y */
        double t = b[i];
        for (size_t k = i + 1; k < d; k++) t -= a[k * d + i] * b[k];
        b[i] = t / a[i * d + i];
    }
    return 0;
}

/* (X'X + n l2 I) w = X'y on the transformed (centered, weight-scaled) data.
 * A singular X'X (alpha = 0, collinear columns) gets a growing diagonal
 * jitter, which picks a near-minimum-norm solution. */
static int ridge_solve(const double *x, const double *y, size_t n, size_t d,
                       double l2, double *w)
{
    double *a = malloc(d * d * sizeof *a), *a0 = malloc(d * d * sizeof *a0);
    if (a == NULL || a0 == NULL) {
        free(a);
        free(a0);
        return PD_ENOMEM;
    }
    cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, (int)d, (int)n, 1.0,
                x, (int)d, 0.0, a0, (int)d);
    cblas_dgemv(CblasRowMajor, CblasTrans, (int)n, (int)d, 1.0, x, (int)d, y,
                1, 0.0, w, 1);
    double maxdiag = 0;
    for (size_t j = 0; j < d; j++) {
        a0[j * d + j] += (double)n * l2;
        if (a0[j * d + j] > maxdiag) maxdiag = a0[j * d + j];
    }
    double *rhs = malloc(d * sizeof *rhs);
    int rc = PD_ENOMEM;
    if (rhs == NULL) goto done;
    double jitter = 0;
    for (int tries = 0; tries < 12; tries++) {
        memcpy(a, a0, d * d * sizeof *a);
        for (size_t j = 0; j < d; j++) a[j * d + j] += jitter;
        memcpy(rhs, w, d * sizeof *rhs);
        if (cholesky_solve(a, rhs, d) == 0) {
            memcpy(w, rhs, d * sizeof *w);
            rc = PD_OK;
            goto done;
        }
        jitter = jitter == 0 ? 1e-12 * fmax(maxdiag, 1e-300) : jitter * 10;
    }
    rc = PD_EINTERNAL;
done:
    free(a);
    free(a0);
    free(rhs);
    return rc;
}

/* Cyclic coordinate descent for 1/(2n)||y - Xw||² + l1 ||w||_1 + l2/2 ||w||²
 * (scikit-learn's enet_coordinate_descent, duality-gap stop when l1 > 0;
 * largest relative coefficient change < tol when l1 = 0). xc is the
 * column-major copy (d columns of n). */
static int enet_cd(const double *xc, const double *y, size_t n, size_t d,
                   double l1, double l2, double tol, int max_iter,
                   const struct pd_fit_opts *opts, double *w)
{
    double *r = malloc(n * sizeof *r), *z = malloc(d * sizeof *z);
    if (r == NULL || z == NULL) {
        free(r);
        free(z);
        return PD_ENOMEM;
    }
    double nn = (double)n, L1 = l1 * nn, L2 = l2 * nn;  /* n-scaled form */
    memcpy(r, y, n * sizeof *r);
    for (size_t j = 0; j < d; j++) {
        z[j] = dot(xc + j * n, xc + j * n, n);
        w[j] = 0;
    }
    double gap_tol = tol * dot(y, y, n);
    int rc = PD_OK;
    for (int it = 1; it <= max_iter; it++) {
        if (cancelled(opts)) { rc = PD_ECANCELLED; break; }
        double dmax = 0, wmax = 0;
        for (size_t j = 0; j < d; j++) {
            if (z[j] == 0) continue;
            const double *col = xc + j * n;
            double wj = w[j];
            double rho = dot(col, r, n) + z[j] * wj;
            double v = fabs(rho) > L1 ? copysign(fabs(rho) - L1, rho) / (z[j] + L2) : 0.0;
            if (v != wj) {
                cblas_daxpy((int)n, wj - v, col, 1, r, 1);
                w[j] = v;
            }
            if (fabs(v - wj) > dmax) dmax = fabs(v - wj);
            if (fabs(v) > wmax) wmax = fabs(v);
        }
        double gap = NAN;
        if (L1 > 0 && (wmax == 0 || dmax / wmax < tol || it == max_iter)) {
            /* duality gap, as in scikit-learn */
            double dual = 0;
            for (size_t j = 0; j < d; j++) {
                double a = fabs(dot(xc + j * n, r, n) - L2 * w[j]);
                if (a > dual) dual = a;
            }
            double rn2 = dot(r, r, n), wn2 = dot(w, w, d), cst;
            if (dual > L1) {
                cst = L1 / dual;
                gap = 0.5 * (rn2 + rn2 * cst * cst);
            } else {
                cst = 1.0;
                gap = rn2;
            }
            double l1n = 0;
            for (size_t j = 0; j < d; j++) l1n += fabs(w[j]);
            gap += L1 * l1n - cst * dot(r, y, n) + 0.5 * L2 * (1 + cst * cst) * wn2;
        }
        report(opts, it, max_iter, "max_coef_change", dmax);
        /* without an l1 term the gap formula does not apply: the relative
         * coefficient change alone decides */
        if (L1 == 0 && (wmax == 0 || dmax / wmax < tol)) break;
        if (!isnan(gap) && gap < gap_tol) break;
    }
    free(r);
    free(z);
    return rc;
}

static int fit_regression(const struct linear_params *p, const struct pd_data *tr,
                          const double *sw, const struct pd_fit_opts *opts,
                          struct linear_model **out, char *err, size_t errlen)
{
    size_t n = tr->n, d = tr->d;
    struct linear_model *m = model_new(PD_TASK_REGRESSION, 0, (uint32_t)d, 1);
    double *x = malloc(n * d * sizeof *x), *y = malloc(n * sizeof *y);
    double *xm = calloc(d, sizeof *xm), *xc = NULL;
    int rc = PD_ENOMEM;
    if (m == NULL || x == NULL || y == NULL || xm == NULL) goto done;
    /* weighted centering, then rows scaled by sqrt(n sw_i): the weighted
     * objective becomes the unweighted one on (x, y) */
    double ym = 0;
    if (p->fit_intercept) {
        for (size_t i = 0; i < n; i++) {
            ym += sw[i] * tr->y[i];
            for (size_t j = 0; j < d; j++) xm[j] += sw[i] * tr->x[i * d + j];
        }
    }
    for (size_t i = 0; i < n; i++) {
        double s = sqrt((double)n * sw[i]);
        y[i] = s * (tr->y[i] - ym);
        for (size_t j = 0; j < d; j++) x[i * d + j] = s * (tr->x[i * d + j] - xm[j]);
    }
    double l1 = p->alpha * p->l1_ratio, l2 = p->alpha * (1 - p->l1_ratio);
    if (l1 == 0 && d <= LINEAR_MAX_DENSE_D) {
        rc = ridge_solve(x, y, n, d, l2, m->coef);
        if (rc == PD_OK) report(opts, 1, 1, NULL, 0);
        if (rc == PD_EINTERNAL) params_fail(err, errlen, "linear: X'X is not positive definite");
    } else {
        xc = malloc(n * d * sizeof *xc);
        if (xc == NULL) goto done;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < d; j++) xc[j * n + i] = x[i * d + j];
        rc = enet_cd(xc, y, n, d, l1, l2, p->tol, p->max_iter, opts, m->coef);
    }
    if (rc != PD_OK) goto done;
    double b = ym;
    for (size_t j = 0; j < d; j++) b -= xm[j] * m->coef[j];
    m->intercept[0] = b;
    for (size_t j = 0; j < d; j++)
        if (!isfinite(m->coef[j])) {
            rc = PD_EINTERNAL;
            params_fail(err, errlen, "linear: the solver diverged");
            goto done;
        }
    *out = m;
    m = NULL;
done:
    if (rc == PD_ENOMEM) params_fail(err, errlen, "linear: out of memory");
    if (rc == PD_ECANCELLED) params_fail(err, errlen, "linear: cancelled");
    linear_model_free(m);
    free(x);
    free(y);
    free(xm);
    free(xc);
    return rc;
}

static int linear_fit(const void *params, const struct pd_task *task,
                      const struct pd_data *train, const struct pd_data *valid,
                      const struct pd_fit_opts *opts, void **out_model,
                      char *err, size_t errlen)
{
    const struct linear_params *p = params;
    *out_model = NULL;
    if (p == NULL || task == NULL || train == NULL) return params_fail(err, errlen, "linear: missing argument");
    if (task->kind != p->kind) return params_fail(err, errlen, "task: params were parsed for another task kind");
    if (task->kind == PD_TASK_CLASSIFICATION &&
        (task->n_classes < 2 || (uint32_t)task->n_classes > LINEAR_MAX_CLASSES))
        return params_fail(err, errlen, "n_classes: must be between 2 and %u, got %d", LINEAR_MAX_CLASSES, task->n_classes);
    if (train->n == 0 || train->d == 0 || train->d > LINEAR_MAX_D ||
        train->n > (size_t)INT32_MAX || train->n * train->d > (size_t)INT32_MAX) {
        params_fail(err, errlen, "linear: cannot fit %zu rows of %zu features", train->n, train->d);
        return PD_EDATA;
    }
    double *sw = malloc(train->n * sizeof *sw);
    if (sw == NULL) {
        params_fail(err, errlen, "linear: out of memory");
        return PD_ENOMEM;
    }
    int rc = check_data(task, train, sw, err, errlen);
    struct linear_model *m = NULL;
    if (rc == PD_OK) {
        if (task->kind == PD_TASK_CLASSIFICATION)
            rc = fit_logistic(p, task, train, sw, opts, &m, err, errlen);
        else
            rc = fit_regression(p, train, sw, opts, &m, err, errlen);
    }
    free(sw);
    *out_model = m;
    return rc;
}

static int linear_predict(const void *model, const float *x, size_t n,
                          size_t d, int threads, double *out)
{
    const struct linear_model *m = model;
    if (m == NULL || d != m->d) return PD_EPARAM;
    size_t k = m->k;
    for (size_t i = 0; i < n; i++) {
        const float *row = x + i * d;
        if (m->kind == PD_TASK_REGRESSION || k == 1) {
            double t = m->intercept[0];
            for (size_t j = 0; j < d; j++) t += row[j] * m->coef[j];
            if (m->kind == PD_TASK_REGRESSION) {
                out[i] = t;
            } else {
                double p = t >= 0 ? 1 / (1 + exp(-t)) : exp(t) / (1 + exp(t));
                out[i * 2] = 1 - p;
                out[i * 2 + 1] = p;
            }
            continue;
        }
        double *o = out + i * k, mx = -INFINITY, s = 0;
        for (size_t c = 0; c < k; c++) o[c] = m->intercept[c];
        for (size_t j = 0; j < d; j++) {
            double v = row[j];
            const double *cj = m->coef + j * k;
            for (size_t c = 0; c < k; c++) o[c] += v * cj[c];
        }
        for (size_t c = 0; c < k; c++)
            if (o[c] > mx) mx = o[c];
        for (size_t c = 0; c < k; c++) s += (o[c] = exp(o[c] - mx));
        for (size_t c = 0; c < k; c++) o[c] /= s;
    }
    return PD_OK;
}

static int linear_save(const void *model, struct pd_buf *out)
{
    const struct linear_model *m = model;
    if (m == NULL) return PD_EPARAM;
    pd_buf_put_u32(out, LINEAR_MAGIC);
    pd_buf_put_u32(out, m->kind);
    pd_buf_put_u32(out, m->n_classes);
    pd_buf_put_u32(out, m->d);
    pd_buf_put_u32(out, m->k);
    pd_buf_put_f64s(out, m->coef, (size_t)m->d * m->k);
    pd_buf_put_f64s(out, m->intercept, m->k);
    return out->failed ? PD_ENOMEM : PD_OK;
}

static int linear_load(struct pd_reader *in, void **out_model, char *err,
                       size_t errlen)
{
    *out_model = NULL;
    uint32_t magic = 0, kind = 0, nc = 0, d = 0, k = 0;
    pd_reader_get_u32(in, &magic);
    pd_reader_get_u32(in, &kind);
    pd_reader_get_count(in, LINEAR_MAX_CLASSES, &nc);
    pd_reader_get_count(in, LINEAR_MAX_D, &d);
    pd_reader_get_count(in, LINEAR_MAX_CLASSES, &k);
    int shape_ok = kind == PD_TASK_REGRESSION ? (nc == 0 && k == 1)
                 : kind == PD_TASK_CLASSIFICATION ? (nc >= 2 && k == (nc == 2 ? 1 : nc))
                 : 0;
    if (in->failed || magic != LINEAR_MAGIC || !shape_ok || d == 0 ||
        ((size_t)d * k + k) > in->left / sizeof(double)) {
        params_fail(err, errlen, "linear: model data is truncated or not a linear model");
        return PD_EFORMAT;
    }
    struct linear_model *m = model_new(kind, nc, d, k);
    if (m == NULL) {
        params_fail(err, errlen, "linear: out of memory");
        return PD_ENOMEM;
    }
    pd_reader_get_f64s(in, m->coef, (size_t)d * k);
    pd_reader_get_f64s(in, m->intercept, k);
    int bad = in->failed;
    for (size_t j = 0; !bad && j < (size_t)d * k; j++) bad = !isfinite(m->coef[j]);
    for (size_t j = 0; !bad && j < k; j++) bad = !isfinite(m->intercept[j]);
    if (bad) {
        linear_model_free(m);
        params_fail(err, errlen, "linear: model data is truncated or holds non-finite weights");
        return PD_EFORMAT;
    }
    *out_model = m;
    return PD_OK;
}

/* See pd_family.shape. */
static void linear_shape(const void *model, size_t *inputs, size_t *outputs)
{
    const struct linear_model *m = model;
    *inputs = m->d;
    *outputs = m->kind == PD_TASK_CLASSIFICATION ? m->n_classes : 1;
}

const struct pd_family pd_family_linear = {
    .shape = linear_shape,
    .name = "linear",
    .handles_missing = 0,
    .needs_scaling = 1,
    .native_categorical = 0,
    .supports_classification = 1,
    .supports_regression = 1,
    .params_parse = linear_params_parse,
    .params_json = linear_params_json,
    .params_free = linear_params_free,
    .fit = linear_fit,
    .predict = linear_predict,
    .save = linear_save,
    .load = linear_load,
    .model_free = linear_model_free,
};
