/*
 * cuda.h - the CUDA/cuDNN/cuBLAS backend of the CNN engine (see
 * nn/backend.h for the table it fills) and what a trainer asks about the
 * GPUs.
 *
 * Memory is device memory from a caching pool (cudaMalloc'd blocks are
 * kept for reuse when freed, so a graph's arena settles into one block
 * allocated once); upload is a cudaMemcpy, download a cudaMemcpy that
 * waits for every earlier kernel (the contract's synchronisation point).
 * Convolutions, average pooling and training-mode batch norm run through
 * cuDNN (algorithms found once per shape and cached; one workspace grown
 * to the largest need), linear layers through cuBLAS, and the rest
 * (element-wise ops, max pooling with the CPU backend's first-maximum
 * rule, inference-mode batch norm, softmax, the loss, the mixed op's
 * weighted sum, dropout masks, channel copies) through small kernels in
 * nn/cuda/. Everything runs in order on the default stream of the device
 * chosen at creation; one calling thread, as the table says.
 *
 * fp32 by default: cuDNN is held to FMA kernels and cuBLAS to its default
 * (non-TF32) math. NN_CUDA_TF32 lets both use TF32 tensor cores (about
 * 1e-3 relative error instead of 1e-6).
 *
 * A build without CUDA (make CUDA=0, or no nvcc/cuDNN found) links
 * nn/cuda_none.c instead: the same functions, with no device and a
 * constructor that says the build has no CUDA backend.
 */
#ifndef PODIUM_NN_CUDA_H
#define PODIUM_NN_CUDA_H

#include <stddef.h>

#include "nn/backend.h"

enum {
    NN_CUDA_TF32 = 1,        /* TF32 tensor cores in cuDNN and cuBLAS */
};

/* A backend on CUDA device `device` (0 is the first visible one). NULL
 * with a message in err when the build has no CUDA backend, no such
 * device is visible, the build's kernels cannot run on the GPU (its
 * compute capability is not among CUDA_ARCHS), the cuDNN loaded is not
 * the major version built against, or a library fails to start. Free it with
 * nn_backend_free, after every tensor it owns. */
struct nn_backend *nn_backend_cuda_new(int device, int flags, char *err, size_t errlen);

/* Whether CUDA device `device` is visible, without starting it (no
 * context, no libraries): 0, or -1 with the reason in err ("no CUDA GPU
 * is visible (...)", "CUDA device 2 does not exist (1 visible)", "this
 * build has no CUDA backend (...)"). nn_backend_cuda_new checks this
 * first; a trainer asks it before it reports anything (nn/device.h). */
int nn_cuda_probe(int device, char *err, size_t errlen);

/* Visible CUDA devices (0 when none, or when the build has no CUDA). */
int nn_cuda_device_count(void);

/* The name of a device ("NVIDIA H100 80GB HBM3"): 0, or -1 with buf
 * holding "" when there is no such device. */
int nn_cuda_device_name(int device, char *buf, size_t len);

/* For a backend made by nn_backend_cuda_new: its device's name (as
 * above) and the most device memory it has held at once, in bytes
 * (tensors, the pool's cached blocks and the cuDNN workspace; cuDNN's
 * and cuBLAS's own allocations are not counted). 0 / -1 for any other
 * backend. */
int nn_cuda_backend_device_name(const struct nn_backend *be, char *buf, size_t len);
size_t nn_cuda_peak_bytes(const struct nn_backend *be);

#endif
