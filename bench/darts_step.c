/*
 * darts_step.c - times one training step (forward, backward, SGD with
 * momentum through the backend's sgd_step) of the DARTS networks of
 * trainers/cnnnet on the CNN engine's CPU backend: the "cnn" family's
 * network on the DARTS_V2 genotype (sep_conv 3x3 = depthwise 3x3 and 1x1
 * convs, dil_conv 3x3, skip connections, factorized reduces, 3x3 max pools,
 * many small tensors), or the "darts" family's supernet (every op on every
 * edge). A benchmark, not a test.
 *
 * Build (after `make`), from the repository root:
 *   cc -O2 -std=c11 -D_GNU_SOURCE -I. bench/darts_step.c build/release/libtrainers.a \
 *      build/release/libnn.a build/release/libpodium.a \
 *      $(pkg-config --libs openblas libcjson) -lpthread -lm -o build/darts_step
 * Run: build/darts_step THREADS STEPS [fixed|search] [BATCH] [SIDE] [CELLS] [CHANNELS]
 *   defaults: fixed, batch 64, 28x28x1, 5 cells, 16 channels, 10 classes.
 * Prints "ms_per_step <value>" and the loss after the last step (the same
 * bits on every run with the same thread count).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn/graph.h"
#include "nn/ops.h"
#include "nn/tensor.h"
#include "trainers/cnnnet.h"


static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *what, const char *err)
{
    fprintf(stderr, "darts_step: %s: %s\n", what, err ? err : "?");
    exit(1);
}

/* momentum buffers of one parameter set */
struct opt { struct nn_params *ps; float **buf; int n; };

static void opt_init(struct nn_backend *be, struct opt *o, struct nn_params *ps)
{
    o->ps = ps;
    o->n = ps ? nn_params_count(ps) : 0;
    o->buf = calloc((size_t)o->n + 1, sizeof *o->buf);
    for (int i = 0; i < o->n; i++) {
        struct nn_tensor *p = nn_params_get(ps, i);
        o->buf[i] = be->alloc(be, p->numel);
        if (!o->buf[i]) die("alloc", "out of memory");
        be->fill(be, o->buf[i], 0.0f, p->numel);
    }
}

static void opt_step(struct nn_backend *be, struct opt *o)
{
    for (int i = 0; i < o->n; i++) {
        struct nn_tensor *p = nn_params_get(o->ps, i);
        if (!(p->flags & NN_T_PARAM) || !p->grad) continue;
        be->sgd_step(be, p->data, p->grad, o->buf[i], p->numel, 0.025, 0.9, 3e-4, 0);
    }
}

static void opt_free(struct nn_backend *be, struct opt *o)
{
    for (int i = 0; i < o->n; i++) be->free(be, o->buf[i]);
    free(o->buf);
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 1, steps = argc > 2 ? atoi(argv[2]) : 10;
    int search = argc > 3 && strcmp(argv[3], "search") == 0;
    int batch = argc > 4 ? atoi(argv[4]) : 64, side = argc > 5 ? atoi(argv[5]) : 28;
    int cells = argc > 6 ? atoi(argv[6]) : 5, chans = argc > 7 ? atoi(argv[7]) : 16;
    char err[256];
    struct nn_backend *be = nn_backend_cpu_new(threads, err, sizeof err);
    if (!be) die("backend", err);
    struct cnnnet_config cfg = {.mode = search ? CNNNET_SEARCH : CNNNET_FIXED,
                                .genotype = genotype_darts_v2, .in_channels = 1, .height = side,
                                .width = side, .n_classes = 10, .cells = cells,
                                .channels = chans, .seed = 1};
    struct cnnnet *net = NULL;
    if (cnnnet_new(be, &cfg, &net, err, sizeof err) != 0) die("cnnnet", err);
    double macs = 0;
    if (cnnnet_macs(net, &macs, err, sizeof err) != 0) die("macs", err);
    struct nn_graph *g = nn_graph_new(be, err, sizeof err);
    if (!g) die("graph", err);
    struct opt ow, oa;
    opt_init(be, &ow, cnnnet_weights(net));
    opt_init(be, &oa, cnnnet_arch(net));

    size_t nx = (size_t)batch * side * side;
    float *x = malloc(sizeof(float) * nx);
    int *labels = malloc(sizeof(int) * (size_t)batch);
    if (!x || !labels) die("alloc", "out of memory");
    struct nn_rng r;
    nn_rng_seed(&r, 1);
    for (size_t i = 0; i < nx; i++) x[i] = (float)nn_rng_uniform(&r);
    for (int i = 0; i < batch; i++) labels[i] = i % 10;
    int xs[4] = {batch, 1, side, side};

    double t0 = 0;
    float loss_v = 0;
    for (int step = -2; step < steps; step++) { /* 2 warm-up steps */
        if (step == 0) t0 = now();
        nn_graph_reset(g);
        nn_graph_set_training(g, 1);
        nn_graph_set_recording(g, 1);
        nn_params_zero_grad(ow.ps);
        if (oa.ps) nn_params_zero_grad(oa.ps);
        struct nn_tensor *l =
            nn_softmax_ce(g, cnnnet_forward(net, g, nn_graph_input(g, 4, xs, x)), labels, NULL);
        if (!l) die("forward", nn_graph_error(g));
        if (nn_graph_backward(g, l, err, sizeof err) != 0) die("backward", err);
        opt_step(be, &ow);
        opt_step(be, &oa);
        nn_tensor_download(l, &loss_v);
    }
    double dt = now() - t0;
    printf("ms_per_step %.3f\n", 1000.0 * dt / (steps > 0 ? steps : 1));
    printf("final_loss %.9g\n", loss_v);
    printf("macs_per_image %.0f\n", macs);
    printf("params %zu\n", cnnnet_param_count(net));
    opt_free(be, &ow);
    opt_free(be, &oa);
    free(x);
    free(labels);
    nn_graph_free(g);
    cnnnet_free(net);
    nn_backend_free(be);
    return 0;
}
