/*
 * gpu_step.c - times the CNN engine on a DARTS network: the search
 * step (the supernet of mixed ops, forward + backward + momentum SGD over
 * the weights and the architecture weights together: a first-order step
 * without DARTS' separate architecture pass) and the retrained network
 * (DARTS_V2 cells) per step and per epoch, on the CPU or the CUDA
 * backend. bench/gpu_step.py runs it beside PyTorch on the same networks
 * and batches; tests/gpu/run.sh runs both on a GPU machine.
 *
 * Each step uploads a host batch (as a data loader would) and downloads
 * the loss (as a trainer logging it would): both are sync points, and
 * PyTorch's side does the same (.cuda() and .item()). Images are random,
 * the same batch every step; timing starts after WARMUP steps (cuDNN's
 * algorithm search and the arena's growth happen there).
 *
 * Build (after `make`; the Makefile prints whether it built CUDA):
 *   cc -O2 -std=c11 -D_GNU_SOURCE -I. bench/gpu_step.c tests/support/darts_net.c \
 *      build/release/libnn.a [build/release/libnncuda.a] $(pkg-config --libs openblas libcjson) \
 *      [-L/usr/local/cuda/lib64 -lcudnn -lcublas -lcudart -lstdc++] -lpthread -lm -o build/gpu_step
 * Run: build/gpu_step --device cuda|cpu [--tf32] [--mode search|retrain] [--batch N]
 *      [--steps N] [--c C] [--cells L] [--size S] [--threads T] [--epoch-images N]
 * Prints "key value" lines: images_per_s, ms_per_step, epoch_s (retrain:
 * epoch-images / batch steps at the measured step time), final_loss,
 * params, peak_memory_bytes, device_name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn/cuda.h"
#include "nn/device.h"
#include "nn/graph.h"
#include "nn/ops.h"
#include "nn/tensor.h"
#include "tests/support/darts_net.h"

#define WARMUP 3

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *what, const char *err)
{
    fprintf(stderr, "gpu_step: %s: %s\n", what, err ? err : "?");
    exit(1);
}

static int arg_int(int argc, char **argv, const char *name, int def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0) return atoi(argv[i + 1]);
    return def;
}

static const char *arg_str(int argc, char **argv, const char *name, const char *def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0) return argv[i + 1];
    return def;
}

static int arg_flag(int argc, char **argv, const char *name)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0) return 1;
    return 0;
}

int main(int argc, char **argv)
{
    const char *device = arg_str(argc, argv, "--device", "cuda");
    int search = strcmp(arg_str(argc, argv, "--mode", "search"), "search") == 0;
    int batch = arg_int(argc, argv, "--batch", 64), steps = arg_int(argc, argv, "--steps", 20);
    int size = arg_int(argc, argv, "--size", 32), threads = arg_int(argc, argv, "--threads", 1);
    int epoch_images = arg_int(argc, argv, "--epoch-images", 50000);
    struct darts_cfg cfg = {.c = arg_int(argc, argv, "--c", 16), .cells = arg_int(argc, argv, "--cells", 8),
                            .nodes = 4, .classes = 10, .in_ch = 3, .search = search, .seed = 1};
    char err[256];
    struct nn_backend *be = nn_backend_for_device(device, threads,
                                                  arg_flag(argc, argv, "--tf32") ? NN_CUDA_TF32 : 0,
                                                  err, sizeof err);
    if (!be) die("backend", err);
    struct darts_net *net = darts_net_new(be, &cfg, err, sizeof err);
    struct nn_graph *g = nn_graph_new(be, err, sizeof err);
    if (!net || !g) die("network", err);
    struct nn_rng r;
    nn_rng_seed(&r, 2);
    size_t n_in = (size_t)batch * 3 * size * size;
    float *x = malloc(n_in * sizeof *x);
    int *labels = malloc((size_t)batch * sizeof *labels);
    if (!x || !labels) die("memory", "out of memory");
    for (size_t i = 0; i < n_in; i++) x[i] = (float)(2 * nn_rng_uniform(&r) - 1);
    for (int i = 0; i < batch; i++) labels[i] = i % 10;
    int xs[4] = {batch, 3, size, size};
    double t0 = 0;
    float loss_v = 0;
    for (int step = -WARMUP; step < steps; step++) {
        if (step == 0) t0 = now();
        nn_graph_reset(g);
        nn_params_zero_grad(darts_net_params(net));
        struct nn_tensor *logits = darts_net_forward(net, g, nn_graph_input(g, 4, xs, x));
        struct nn_tensor *loss = nn_softmax_ce(g, logits, labels, NULL);
        if (!loss) die("forward", nn_graph_error(g));
        if (nn_graph_backward(g, loss, err, sizeof err) != 0) die("backward", err);
        darts_net_sgd(net, 0.025f, 0.9f, 3e-4f);
        nn_tensor_download(loss, &loss_v);
    }
    double dt = (now() - t0) / steps;
    struct nn_device_info info;
    nn_device_describe(be, &info);
    printf("device %s\n", info.kind);
    printf("device_name %s\n", info.name[0] ? info.name : "?");
    printf("mode %s\n", search ? "search" : "retrain");
    printf("ms_per_step %.3f\n", 1000.0 * dt);
    printf("images_per_s %.1f\n", batch / dt);
    printf("epoch_s %.2f\n", (double)((epoch_images + batch - 1) / batch) * dt);
    printf("final_loss %.4f\n", loss_v);
    printf("macs_per_forward %.0f\n", nn_graph_macs(g));
    printf("params %zu\n", nn_params_numel(darts_net_params(net)));
    printf("peak_memory_bytes %llu\n", (unsigned long long)info.peak_memory_bytes);
    free(x);
    free(labels);
    nn_graph_free(g);
    darts_net_free(net);
    nn_backend_free(be);
    return 0;
}
