/*
 * slots.h - the scheduler's trial slots: CPU slots (one trial each, default
 * one per core) and one slot per GPU.
 *
 * GPUs are configured (--gpus=0,1 or PODIUM_GPUS) or detected (--gpus=auto,
 * the default): a CUDA_VISIBLE_DEVICES set for the scheduler itself names
 * the GPUs it may use; otherwise every GPU the NVIDIA driver lists under
 * /proc/driver/nvidia/gpus. --gpus=none turns them off.
 *
 * Placement: a trial of a family that can use a GPU (space_family_uses_gpu) takes a
 * free GPU slot, its child seeing only that GPU (CUDA_VISIBLE_DEVICES=<id>);
 * with no GPU slot free it runs in a CPU slot, seeing none
 * (CUDA_VISIBLE_DEVICES=""). Other families take CPU slots only, and never
 * see a GPU. What the scheduler may claim follows from what is free
 * (slots_claim_mask): with only GPU slots free it asks for GPU families
 * only.
 *
 * Pure bookkeeping (no I/O besides detection): any thread, not shared.
 */
#ifndef PODIUM_SCHEDULER_SLOTS_H
#define PODIUM_SCHEDULER_SLOTS_H

#include <stddef.h>

#define SLOTS_MAX_GPUS 64

struct slots {
    int n_cpu, cpu_used;
    int n_gpu;
    char gpu_ids[SLOTS_MAX_GPUS][16];   /* as CUDA_VISIBLE_DEVICES names them */
    unsigned char gpu_busy[SLOTS_MAX_GPUS];
};

/* A slot held by one trial: gpu < 0 for a CPU slot, else the GPU's index
 * in gpu_ids. */
struct slot {
    int gpu;
};

/* CPU slots n_cpu; gpus: "auto", "none", or a comma list of device ids
 * (digits, or GPU-/MIG- UUIDs). 0, or -1 with err for a bad list. */
int slots_init(struct slots *s, int n_cpu, const char *gpus, char *err, size_t errlen);

/* Detect GPUs into ids (at most max): CUDA_VISIBLE_DEVICES if set (empty
 * or "-1": none), else /proc/driver/nvidia/gpus. Returns the count. */
int slots_detect_gpus(char ids[][16], int max);

enum { SLOTS_CPU = 1, SLOTS_GPU = 2 };

/* What could start now: SLOTS_CPU when a CPU slot is free (any trial
 * fits), SLOTS_GPU when a GPU slot is free; 0 when full. */
unsigned slots_claim_mask(const struct slots *s);

/* Take a slot for a trial; wants_gpu: its family can use a GPU. 0, or -1
 * when none fits (the caller claimed something slots_claim_mask did not
 * allow). */
int slots_take(struct slots *s, int wants_gpu, struct slot *out);
void slots_put(struct slots *s, const struct slot *sl);

/* The CUDA_VISIBLE_DEVICES value for a child in sl ("" for a CPU slot). */
const char *slots_visible_devices(const struct slots *s, const struct slot *sl);

#endif
