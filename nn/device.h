/*
 * device.h - choosing the CNN engine's compute backend from a trainer
 * spec's "device" ("cpu" | "cuda" | "auto") and describing the device a
 * trial ran on, for its results.
 *
 *   "cpu"     the CPU backend (OpenBLAS) with `threads` threads
 *   "cuda"    the CUDA backend on the first visible GPU ("cuda:N": the
 *             N-th); an error when none is visible or the build has no
 *             CUDA backend
 *   "auto"    CUDA when a GPU is visible (and the build has the backend),
 *             else the CPU; a visible GPU that fails to start is an error,
 *             not a silent fall-back
 *
 * The scheduler gives a GPU trial one GPU through CUDA_VISIBLE_DEVICES,
 * so "cuda" (device 0 of those visible) is the usual choice.
 */
#ifndef PODIUM_NN_DEVICE_H
#define PODIUM_NN_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "nn/backend.h"

/* 0 when device names a valid choice (above), else -1 with a message
 * fit for a 4xx ("device must be \"cpu\", \"cuda\" or \"auto\""). Does
 * not look for GPUs: a spec check can run anywhere. */
int nn_device_check(const char *device, char *err, size_t errlen);

enum nn_device_kind {
    NN_DEVICE_CPU = 0,
    NN_DEVICE_CUDA = 1,
};

/* Where device (NULL means "cpu") would run, decided without starting
 * anything: NN_DEVICE_CPU, NN_DEVICE_CUDA, or -1 with a message that
 * names it ('device "cuda": no CUDA GPU is visible (...)', 'device
 * "cuda": this build has no CUDA backend (...)', 'device "cuda:3": CUDA
 * device 3 does not exist (1 visible)', or nn_device_check's). "auto"
 * without a visible GPU is NN_DEVICE_CPU. Cheap (no CUDA context), so a
 * trainer asks it before it reports anything; nn_backend_for_device
 * decides the same way. */
int nn_device_resolve(const char *device, char *err, size_t errlen);

/* The backend for device (NULL means "cpu"); cuda_flags are nn/cuda.h's
 * NN_CUDA_* (0: fp32). NULL with a message on failure; free the result
 * with nn_backend_free. */
struct nn_backend *nn_backend_for_device(const char *device, int threads, int cuda_flags,
                                         char *err, size_t errlen);

/* What trial results record. kind: "cpu" or "cuda". name: the GPU's name,
 * or the CPU's from /proc/cpuinfo (nn_device_cpu_name; never "").
 * peak_memory_bytes: CUDA: the most device memory the backend held at
 * once (nn_cuda_peak_bytes); CPU: the process's peak resident set
 * (getrusage), the nearest thing to a device's memory there. */
struct nn_device_info {
    char kind[8];
    char name[256];
    uint64_t peak_memory_bytes;
};

void nn_device_describe(const struct nn_backend *be, struct nn_device_info *out);

/* {"kind": ..., "name": ..., "peak_memory_bytes": ...} as a new cJSON
 * object (the caller cJSON_Deletes it), NULL when out of memory. */
cJSON *nn_device_to_json(const struct nn_device_info *info);

/* The CPU's name from the text of /proc/cpuinfo (NULL: none) and the
 * machine's architecture (uname's machine, e.g. "aarch64"; NULL or "":
 * "unknown"), into buf (never empty when len > 1). The first of: x86's
 * (and some ARM kernels') "model name"; ARM's "Hardware" (the SoC); its
 * "Model" (the board); the core from "CPU implementer" and "CPU part"
 * ("ARM Neoverse-V2", else e.g. "Ampere CPU part 0xac3"); POWER's "cpu";
 * else "<machine> CPU". Keys match whole ("cpu" is not "cpu family");
 * each key's first non-empty line counts. */
void nn_device_cpu_name(const char *cpuinfo, const char *machine, char *buf, size_t len);

#endif
