/* gate.c - see gate.h. */
#include "server/gate.h"

#include <errno.h>
#include <time.h>

int gate_init(struct gate *g, int limit, int queue)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0) return -1;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&g->freed, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0) return -1;
    pthread_mutex_init(&g->mu, NULL);
    g->limit = limit;
    g->queue = queue;
    g->inside = g->waiting = 0;
    return 0;
}

void gate_destroy(struct gate *g)
{
    pthread_cond_destroy(&g->freed);
    pthread_mutex_destroy(&g->mu);
}

int gate_enter(struct gate *g, int wait_ms)
{
    pthread_mutex_lock(&g->mu);
    if (g->inside >= g->limit) {
        if (g->waiting >= g->queue || wait_ms <= 0) {
            pthread_mutex_unlock(&g->mu);
            return -1;
        }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += wait_ms / 1000;
        until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        g->waiting++;
        while (g->inside >= g->limit)
            if (pthread_cond_timedwait(&g->freed, &g->mu, &until) == ETIMEDOUT) break;
        g->waiting--;
        if (g->inside >= g->limit) {
            pthread_mutex_unlock(&g->mu);
            return -1;
        }
    }
    g->inside++;
    pthread_mutex_unlock(&g->mu);
    return 0;
}

void gate_leave(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->inside--;
    pthread_cond_signal(&g->freed);
    pthread_mutex_unlock(&g->mu);
}

void gate_counts(struct gate *g, int *inside, int *waiting)
{
    pthread_mutex_lock(&g->mu);
    *inside = g->inside;
    *waiting = g->waiting;
    pthread_mutex_unlock(&g->mu);
}
