/*
 * darts.h - the "darts" model family: first-order DARTS (Liu et al.,
 * "DARTS: Differentiable Architecture Search", ICLR 2019) on image rows.
 * The supernet (trainers/cnnnet.h, CNNNET_SEARCH) trains its weights on
 * one half of the training rows and its architecture (the alphas) on the
 * other, and the genotype is derived from the alphas at the end.
 *
 * Parameters ("model": {"family": "darts", "params": {...}}):
 *   cells          2..20                                    5
 *   channels       4..128                                   16
 *   epochs         1..600 (of the search)                   5
 *   batch_size     8..1024                                  64
 *   learning_rate  a number in (0, 10] for the weights, or
 *                  "auto" (DARTS' own 0.025: no range test
 *                  on a supernet)                           0.025
 *   augment        random crop, padding max(1, H/8)         true
 *   hflip          random horizontal flips (with augment)   false
 *   seed           0..2^31-1: weights, alphas, split        the spec's cv seed
 *
 * The search: the rows are split in two stratified halves (seeded). Each
 * step is one Adam step on the alphas (lr 3e-4, betas (0.5, 0.999),
 * weight decay 1e-3 added to the gradient, as torch.optim.Adam) on a
 * batch of the second half, the weights held fixed, then one SGD step on
 * the weights (momentum 0.9, weight decay 3e-4, gradient clipping at 5,
 * the rate annealed by a cosine from learning_rate to 0.001) on a batch
 * of the first half, the alphas held fixed; an epoch is as many steps as
 * the smaller half has full batches. Progress: "train_loss" (the weight
 * steps' mean) per epoch, and "valid_accuracy" when fit gets a
 * validation set.
 *
 * The model is the trained supernet: it predicts with its mixed ops, so a
 * search's score is the held-out accuracy of the supernet itself, not of
 * the derived network (retrain that as a "cnn" trial). Its details:
 *   {"genotype": derived (cnnnet_derive: DARTS' rule),
 *    "alphas": {"normal": [[8 weights] x 14 edges], "reduce": [...]}
 *             (softmaxed; columns in lib/genotype.h's op order),
 *    "param_count", "flops" (the supernet's), "derived": {"param_count",
 *    "flops"} (the network of the derived genotype at the same cells and
 *    channels), "device"}.
 */
#ifndef PODIUM_TRAINERS_DARTS_H
#define PODIUM_TRAINERS_DARTS_H

#include "trainers/family.h"

extern const struct pd_family pd_family_darts;

#endif
