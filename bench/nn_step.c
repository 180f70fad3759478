/*
 * nn_step.c - times one training step (forward, backward, SGD with
 * momentum) of a small CNN on the CNN engine's CPU backend; bench/nn_step.py
 * builds it, runs it and prints its figures beside PyTorch's for the same
 * network, batch and thread count.
 *
 * Network (28x28x1 input, batch 64, 10 classes):
 *   conv3x3 1->16, BN, ReLU, maxpool 2  ->  16x14x14
 *   conv3x3 16->32, BN, ReLU, maxpool 2 ->  32x7x7
 *   conv3x3 32->32, BN, ReLU, global average pool, linear 32->10, CE
 *
 * Build (after `make`), from the repository root:
 *   cc -O2 -std=c11 -D_GNU_SOURCE -I. bench/nn_step.c build/release/libnn.a \
 *      $(pkg-config --libs openblas) -lpthread -lm -o build/nn_step
 * Run: build/nn_step THREADS STEPS   (prints "ms_per_step <value>")
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn/graph.h"
#include "nn/ops.h"
#include "nn/tensor.h"

#define BATCH 64
#define CLASSES 10

struct block { struct nn_tensor *w, *gamma, *beta, *rm, *rv; };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *what, const char *err)
{
    fprintf(stderr, "nn_step: %s: %s\n", what, err ? err : "?");
    exit(1);
}

static void make_block(struct nn_params *ps, struct block *b, const char *name, int cin, int cout,
                       struct nn_rng *r)
{
    char err[256], nm[64];
    int ws[4] = {cout, cin, 3, 3}, cs[1] = {cout};
    snprintf(nm, sizeof nm, "%s.w", name);
    b->w = nn_params_add(ps, nm, 4, ws, NN_T_PARAM, err, sizeof err);
    snprintf(nm, sizeof nm, "%s.gamma", name);
    b->gamma = nn_params_add(ps, nm, 1, cs, NN_T_PARAM, err, sizeof err);
    snprintf(nm, sizeof nm, "%s.beta", name);
    b->beta = nn_params_add(ps, nm, 1, cs, NN_T_PARAM, err, sizeof err);
    snprintf(nm, sizeof nm, "%s.rm", name);
    b->rm = nn_params_add(ps, nm, 1, cs, NN_T_BUFFER, err, sizeof err);
    snprintf(nm, sizeof nm, "%s.rv", name);
    b->rv = nn_params_add(ps, nm, 1, cs, NN_T_BUFFER, err, sizeof err);
    if (!b->w || !b->gamma || !b->beta || !b->rm || !b->rv) die("params", err);
    nn_init_kaiming_uniform(b->w, cin * 9, r);
    nn_init_const(b->gamma, 1.0f);
    nn_init_const(b->rv, 1.0f);
}

static struct nn_tensor *run_block(struct nn_graph *g, struct block *b, struct nn_tensor *x)
{
    x = nn_conv2d(g, x, b->w, NULL, 1, 1, 1, 1);
    x = nn_batch_norm(g, x, b->gamma, b->beta, b->rm, b->rv, 0.1f, 1e-5f);
    return nn_relu(g, x);
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 1, steps = argc > 2 ? atoi(argv[2]) : 20;
    char err[256];
    struct nn_backend *be = nn_backend_cpu_new(threads, err, sizeof err);
    if (!be) die("backend", err);
    struct nn_graph *g = nn_graph_new(be, err, sizeof err);
    struct nn_params *ps = nn_params_new(be);
    if (!g || !ps) die("graph", err);
    struct nn_rng r;
    nn_rng_seed(&r, 1);
    struct block b1, b2, b3;
    make_block(ps, &b1, "b1", 1, 16, &r);
    make_block(ps, &b2, "b2", 16, 32, &r);
    make_block(ps, &b3, "b3", 32, 32, &r);
    int lws[2] = {CLASSES, 32}, lbs[1] = {CLASSES};
    struct nn_tensor *lw = nn_params_add(ps, "fc.w", 2, lws, NN_T_PARAM, err, sizeof err);
    struct nn_tensor *lb = nn_params_add(ps, "fc.b", 1, lbs, NN_T_PARAM, err, sizeof err);
    if (!lw || !lb) die("params", err);
    nn_init_kaiming_uniform(lw, 32, &r);
    nn_init_kaiming_uniform(lb, 32, &r);

    /* momentum buffers, one per parameter, over the host pointers */
    int np = nn_params_count(ps);
    float **mom = calloc((size_t)np, sizeof *mom);
    for (int i = 0; i < np; i++) mom[i] = calloc(nn_params_get(ps, i)->numel, sizeof(float));

    int xs[4] = {BATCH, 1, 28, 28}, labels[BATCH];
    float *x = malloc(sizeof(float) * BATCH * 28 * 28);
    for (int i = 0; i < BATCH * 28 * 28; i++) x[i] = (float)nn_rng_uniform(&r);
    for (int i = 0; i < BATCH; i++) labels[i] = i % CLASSES;

    double t0 = 0, loss_v = 0;
    for (int step = -3; step < steps; step++) { /* 3 warm-up steps */
        if (step == 0) t0 = now();
        nn_graph_reset(g);
        nn_params_zero_grad(ps);
        struct nn_tensor *h = run_block(g, &b1, nn_graph_input(g, 4, xs, x));
        h = nn_max_pool2d(g, h, 2, 2, 0);
        h = nn_max_pool2d(g, run_block(g, &b2, h), 2, 2, 0);
        h = nn_global_avg_pool(g, run_block(g, &b3, h));
        struct nn_tensor *loss = nn_softmax_ce(g, nn_linear(g, h, lw, lb), labels, NULL);
        if (!loss) die("forward", nn_graph_error(g));
        if (nn_graph_backward(g, loss, err, sizeof err) != 0) die("backward", err);
        for (int i = 0; i < np; i++) {
            struct nn_tensor *p = nn_params_get(ps, i);
            float *w = nn_tensor_host_data(p), *gr = nn_tensor_host_grad(p), *m = mom[i];
            if (!gr) continue;
            for (size_t k = 0; k < p->numel; k++) {
                m[k] = 0.9f * m[k] + gr[k];
                w[k] -= 0.01f * m[k];
            }
        }
        nn_tensor_download(loss, &(float){0});
        loss_v = nn_tensor_host_data(loss)[0];
    }
    double dt = now() - t0;
    printf("ms_per_step %.3f\n", 1000.0 * dt / steps);
    printf("final_loss %.4f\n", loss_v);
    printf("macs_per_forward %.0f\n", nn_graph_macs(g));
    printf("params %zu\n", nn_params_numel(ps));
    for (int i = 0; i < np; i++) free(mom[i]);
    free(mom);
    free(x);
    nn_params_free(ps);
    nn_graph_free(g);
    nn_backend_free(be);
    return 0;
}
