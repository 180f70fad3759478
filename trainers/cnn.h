/*
 * cnn.h - the "cnn" model family: a DARTS network of a given genotype
 * (trainers/cnnnet.h) trained from scratch on image rows with DARTS'
 * retraining recipe, and the model, batch and training pieces the "darts"
 * family (trainers/darts.h) shares.
 *
 * Parameters ("model": {"family": "cnn", "params": {...}}):
 *   genotype       DARTS JSON genotype (lib/genotype.h)     DARTS_V2 of the paper
 *   cells          2..20                                    5
 *   channels       4..128 (C of the first cells)            16
 *   epochs         1..600                                   10
 *   batch_size     8..1024                                  64
 *   learning_rate  a number in (0, 10], or "auto"           0.025
 *   augment        random crop, padding max(1, H/8)         true
 *   hflip          random horizontal flips (with augment)   false
 *   seed           0..2^31-1: weights and batches           the spec's cv seed
 *   from_search    the darts trial a genotype came from (kept, unused)
 *   drop_path      0..0.9: the last epoch's drop-path rate  0 (off)
 *   cutout         0..1: cutout hole side / shorter side    0 (off)
 *   auxiliary_weight  0..1: auxiliary head's loss weight    0 (off)
 *
 * Training: SGD momentum 0.9, weight decay 3e-4 on every weight, learning
 * rate annealed by a cosine from learning_rate to 0 over all steps (one
 * per batch), gradient clipping at global norm 5; batches drawn without
 * replacement each epoch (the last partial batch is dropped when there is
 * more than one batch: batch norm on a handful of images is noise).
 * Inputs are normalized per channel with the mean and standard deviation
 * of the training rows (kept in the model). "auto" runs the learning-rate
 * range test (nn/lrfind.h) first on the same batches, from the same
 * initial weights and optimizer state (saved and restored around it), and
 * trains at its "valley" suggestion (0.025 when it has none).
 *
 * The training extras of the DARTS paper's evaluation (Liu et al. 2019,
 * their train.py), each off at 0 and each for training only:
 *   drop_path  every op on a cell edge but the identity is dropped per
 *              sample (nn_drop_path: zeroed, or scaled by 1/keep) with a
 *              probability that rises linearly over the epochs, DARTS'
 *              drop_path * e / epochs for epoch e counted from 0 (so the
 *              first epoch and the range test drop nothing); DARTS: 0.2.
 *   cutout     one square hole per training image (nn/augment.h's
 *              aug_cutout, after the crop, the flip and the normalization,
 *              so it is the mean colour), of side round(cutout * the
 *              shorter image side), at least 1 pixel; DARTS' 16 px at
 *              32x32 is 0.5 (4 px at 8x8, 14 at 28x28).
 *   auxiliary_weight  DARTS' auxiliary classifier after the second
 *              reduction cell (trainers/cnnnet.h: sized for small maps;
 *              none when the map there is under 2x2), its cross-entropy
 *              added to the loss with this weight (DARTS: 0.4); trained by
 *              the same SGD, weight decay and clipping. It is not part of
 *              the model: not saved, not in param_count or flops, never
 *              used to predict; a saved model loads and predicts exactly
 *              as one trained without it. "train_loss" stays the main
 *              head's loss, comparable with and without it.
 * With all three at 0 a fit runs exactly the recipe above, bit for bit
 * (tests/unit/test_cnn.c replays it). Defaults: all off, so a trial
 * trains as before unless asked. From bench/nas.py --extras (DARTS_V2,
 * same seeds, split and epochs, with and without each): on digits8x8 over
 * 30 epochs (3 seeds, 360 held-out images) the auxiliary head at 0.4
 * raised the mean held-out accuracy from 0.9861 to 0.9935, better on
 * every seed, while drop-path 0.2 (0.9851) and cutout 0.5 (0.9879) stayed
 * within the seeds' spread; on short runs nothing helped: a 2000-image
 * mnist10k subset over 4 epochs gave 0.9425 plain, 0.9400 with the head
 * and 0.8725 with all three, and the head cost test_cnn's 4-epoch toy run
 * two images of 60. The search's trials are short (10 epochs by default),
 * so the head stays opt-in: set auxiliary_weight 0.4 for long retrains
 * (30 epochs and more); drop-path and cutout are regularizers for DARTS'
 * 600-epoch CIFAR runs and did nothing measurable at our sizes.
 *
 * Progress: one report per epoch, "train_loss" (the epoch's mean), then
 * "valid_accuracy" when fit is given a validation set.
 *
 * The family needs the image shape of the rows (pd_fit_opts.image_*; the
 * driver fills it for image data) and normalizes by itself
 * (needs_scaling 0). Fits on the backend opts->device names (nn/device.h:
 * "cpu" with opts->threads threads, the default; "cuda", "cuda:N" or
 * "auto"); a device that cannot be had (no GPU visible, a build without
 * CUDA) is PD_EPARAM with a message "device: ..." (the spec's field). A
 * training step stays on the backend: the batch (cropped, flipped and
 * normalized on the host) goes up once, the loss comes down once, and the
 * optimizer (nn/optim.h's optim_new_on: SGD, clipping) runs through the
 * backend's table; the range test's save/restore and the epoch's
 * validation accuracy cross to the host between steps. A fitted model
 * predicts on the backend it was trained on; a loaded one on the CPU.
 *
 * Model file weights section (docs/model-format.md): "CNN1", the mode,
 * the image shape, classes, cells, channels, the genotype, the
 * normalization, then nn_params_save's blob of the weights (and, for a
 * supernet, of the alphas).
 */
#ifndef PODIUM_TRAINERS_CNN_H
#define PODIUM_TRAINERS_CNN_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "nn/backend.h"
#include "nn/device.h"
#include "nn/graph.h"
#include "nn/lrfind.h"
#include "nn/optim.h"
#include "trainers/cnnnet.h"
#include "trainers/family.h"
#include "trainers/params.h"

extern const struct pd_family pd_family_cnn;

/* The training settings "cnn" and "darts" share (their params' common
 * members, with the ranges and defaults above). */
struct cnn_train_params {
    long cells, channels, epochs, batch_size;
    double lr;               /* 0 = "auto" */
    int augment, hflip;
    long seed;               /* -1 = the spec's */
};

/* Parse it (a member of a family's params) into t: 0 when it is one of
 * the shared settings and valid, PD_EPARAM with pc's message when invalid,
 * 1 when it is no shared setting (the family's own, or unknown). */
int cnn_train_param(struct params_ctx *pc, const cJSON *it, struct cnn_train_params *t);
/* The shared settings into o (effective values). */
void cnn_train_params_json(const struct cnn_train_params *t, cJSON *o);

/* The range test for a cnn spec (pd_family_cnn.lr_find): from the
 * initialization fit would start from, with fit's optimizer and batches,
 * the rate growing from cfg->start_lr to cfg->end_lr over
 * cfg->iterations steps (cfg NULL: lrfind_config_init's defaults). *out
 * gets lrfind_to_json's object (the caller deletes it); each step is
 * reported through opts->progress as metric "lr_find_loss". PD_* codes
 * as fit. */
int cnn_lr_find(const void *params, const struct pd_task *task, const struct pd_data *train,
                const struct pd_fit_opts *opts, const struct lrfind_config *cfg, cJSON **out,
                char *err, size_t errlen);

/* ---- shared with the darts family ----------------------------------------- */

/* A trained network and what predicting with it needs. */
struct cnn_model {
    struct cnnnet_config cfg;
    float mean[3], std[3];   /* per input channel */
    struct nn_backend *be;
    struct cnnnet *net;
    double macs;             /* of one forward pass on one image */
    double learning_rate;    /* the peak rate trained with (0: unknown) */
    cJSON *lr_find;          /* the range test's curve when "auto" ran; or NULL */
    int threads;
    struct nn_device_info device;   /* where it was trained (cnn_model_note_device);
                                     * kind "" until then */
};

/* Backend (for device: nn/device.h's names, NULL = "cpu") and network
 * for cfg. 0, or a PD_* code with a message: PD_EPARAM "device: ..." when
 * the device cannot be had. */
int cnn_model_new(const struct cnnnet_config *cfg, int threads, const char *device,
                  struct cnn_model **out, char *err, size_t errlen);
/* Record the device the model trained on (kind, name, peak memory so
 * far), for its details; call at the end of a fit. */
void cnn_model_note_device(struct cnn_model *m);
void cnn_model_free(void *model);

/* The image shape of the rows from opts, checked against train->d.
 * PD_OK, or PD_EDATA with a message. */
int cnn_image_shape(const struct pd_fit_opts *opts, const struct pd_data *train, int *c, int *h,
                    int *w, char *err, size_t errlen);

/* Per-channel mean and standard deviation of rows[0..n) of x into m. */
void cnn_model_set_norm(struct cnn_model *m, const float *x, const size_t *rows, size_t n);

/* Batches: images rows idx[0..b) of x (n x C*H*W, in [0, 1]), each
 * randomly cropped (pad > 0) and flipped (hflip) from a generator seeded
 * by (seed, slot), then normalized; labels from y. (The cnn family's own
 * batches then cut a hole out with the same generator: "cutout".) */
struct cnn_feed {
    const float *x;
    const double *y;
    int c, h, w;
    uint32_t pad;
    int hflip;
};
void cnn_feed_batch(const struct cnn_model *m, const struct cnn_feed *f, const size_t *idx,
                    size_t b, uint64_t seed, float *out, int *labels);
/* The cutout hole's side for the parameter "cutout" (a fraction of the
 * shorter side) on h x w images: round(fraction * min(h, w)), at least 1
 * when the fraction is above 0; 0 for 0. */
uint32_t cnn_cutout_length(double fraction, int h, int w);

/* One recorded training forward and backward pass on a batch (b images
 * of bx, normalized) on graph g: the gradients of the parameters that
 * need one accumulate. 0 with the mean loss in *loss, or -1 with err. */
int cnn_model_backward(struct cnn_model *m, struct nn_graph *g, const float *bx, const int *labels,
                       int b, double *loss, char *err, size_t errlen);

/* Optimizer groups over the trainable tensors of ps: their data and grad,
 * backend memory (for optim_new_on on the set's backend; on the CPU
 * backend they are host arrays too). Returns the count (0: none); *out is
 * malloc'd (the caller frees). -1 when out of memory. */
int cnn_optim_groups(struct nn_params *ps, struct optim_group **out);

/* Accuracy of the model on rows[0..n) of (x, y). NaN on failure. */
double cnn_model_accuracy(const struct cnn_model *m, const float *x, const double *y,
                          const size_t *rows, size_t n);

/* pd_family entries both families use. */
int cnn_predict(const void *model, const float *x, size_t n, size_t d, int threads, double *out);
int cnn_model_save(const void *model, struct pd_buf *out);
int cnn_model_load(struct pd_reader *in, int mode, void **out_model, char *err, size_t errlen);
void cnn_shape(const void *model, size_t *inputs, size_t *outputs);
/* {"param_count", "flops", "device": {"kind", "name", "peak_memory_bytes"
 * (nn_device_to_json), and "threads" on the CPU}} and the learning rate
 * facts; the callers add the rest. The device is the one noted at the end
 * of the fit, else the model's backend now. */
cJSON *cnn_details_common(const struct cnn_model *m);

#endif
