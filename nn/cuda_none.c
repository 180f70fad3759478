/*
 * cuda_none.c - nn/cuda.h for a build without the CUDA backend (make
 * CUDA=0, or no nvcc/cuDNN found): no device is visible and the
 * constructor says why. The Makefile compiles this file only then, so
 * nothing above nn/cuda.h needs an #ifdef.
 */
#include "nn/cuda.h"

#include <stdio.h>

struct nn_backend *nn_backend_cuda_new(int device, int flags, char *err, size_t errlen)
{
    (void)device;
    (void)flags;
    if (err && errlen) snprintf(err, errlen, "this build has no CUDA backend (built with CUDA=0 or without nvcc/cuDNN)");
    return NULL;
}

int nn_cuda_probe(int device, char *err, size_t errlen)
{
    return nn_backend_cuda_new(device, 0, err, errlen) ? 0 : -1;
}

int nn_cuda_device_count(void) { return 0; }

int nn_cuda_device_name(int device, char *buf, size_t len)
{
    (void)device;
    if (buf && len) buf[0] = 0;
    return -1;
}

int nn_cuda_backend_device_name(const struct nn_backend *be, char *buf, size_t len)
{
    (void)be;
    if (buf && len) buf[0] = 0;
    return -1;
}

size_t nn_cuda_peak_bytes(const struct nn_backend *be)
{
    (void)be;
    return 0;
}
