/*
 * linear.h - the "linear" model family: logistic regression for
 * classification, least squares with elastic-net penalties for regression.
 *
 * Parameters (scikit-learn names; params_json lists the effective values):
 *   classification (LogisticRegression)
 *     penalty   "l2" | "l1" | "elasticnet" | "none"          default "l2"
 *     C         > 0, inverse strength: minimizes
 *               sum_i w_i loss_i + pen(coef) / C                   1.0
 *               with pen = ||coef||²/2 (l2), ||coef||_1 (l1),
 *               l1_ratio ||coef||_1 + (1 - l1_ratio) ||coef||²/2 (elasticnet)
 *     l1_ratio  in [0, 1], used by elasticnet                       0.5
 *   regression (ElasticNet's objective; Ridge/Lasso/OLS as special cases)
 *     alpha     >= 0: minimizes 1/(2W) sum_i w_i (y_i - x_i·coef - b)²
 *               + alpha l1_ratio ||coef||_1
 *               + alpha (1 - l1_ratio) ||coef||²/2;                 1e-3
 *               alpha = 0 is ordinary least squares. Note the scaling:
 *               scikit-learn's Ridge(alpha=a) is alpha = a / n here.
 *     l1_ratio  in [0, 1]; 0 = ridge (closed form), 1 = lasso      0.0
 *   both
 *     tol           > 0                                             1e-4
 *     max_iter      >= 1 solver iterations                          1000
 *     fit_intercept true | false (the intercept is never penalized) true
 *
 * Binary classification fits one coefficient vector (sigmoid), k > 2
 * classes a multinomial (softmax) model with k vectors. Solvers: L-BFGS
 * for smooth penalties (stops when the largest gradient entry of the
 * weight-averaged objective is <= tol), FISTA with backtracking and
 * adaptive restart for l1/elasticnet (gradient mapping <= tol), the
 * closed form through a Cholesky solve for ridge / least squares (up to
 * 2048 features; beyond, coordinate descent stopping on the relative
 * coefficient change), and cyclic coordinate descent with scikit-learn's
 * duality-gap test for lasso / elastic net. Progress reports one event per
 * solver iteration ("train_objective" for logistic regression). Works in double; x (float) is copied once.
 */
#ifndef PODIUM_TRAINERS_LINEAR_H
#define PODIUM_TRAINERS_LINEAR_H

#include <stddef.h>

#include "trainers/family.h"

extern const struct pd_family pd_family_linear;

/* A fitted model's coefficients, for tests and feature importances:
 * coef is d*k row-major (feature j, output c), intercept has k entries;
 * k = 1 for regression and binary classification (the positive class's
 * logit), n_classes otherwise. Pointers stay owned by the model.
 * 0, or PD_EPARAM for a NULL model. */
int pd_linear_coef(const void *model, size_t *d, size_t *k,
                   const double **coef, const double **intercept);

#endif
