/*
 * knn.h - the "knn" model family: k nearest neighbours under Euclidean
 * distance, for classification (class probabilities = weighted vote
 * shares) and regression (weighted mean of the neighbours' targets).
 *
 * Parameters (scikit-learn names):
 *   n_neighbors  >= 1, at most the training rows                  5
 *   weights      "uniform" | "distance" (1/distance; neighbours at
 *                distance 0, if any, share all the weight)   "uniform"
 *
 * The model stores the training set (x as float, y, and the row weights,
 * which multiply each neighbour's vote). Distances are computed block by
 * block through one SGEMM per block (|a|² + |b|² - 2 a·b), the k nearest
 * kept in a bounded max-heap per query (ties go to the lower training
 * row), and the chosen neighbours' distances recomputed exactly in double
 * for the weights. predict splits the queries over `threads` threads;
 * every query is computed the same way whatever the thread count.
 */
#ifndef PODIUM_TRAINERS_KNN_H
#define PODIUM_TRAINERS_KNN_H

#include "trainers/family.h"

extern const struct pd_family pd_family_knn;

#endif
