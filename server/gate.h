/*
 * gate.h - at most `limit` holders at once, a short queue behind them.
 *
 * For work that is expensive enough that running many at once only makes
 * each slower (walking a stored archive): gate_enter lets a caller in at
 * once while fewer than limit are in; otherwise it waits, at most wait_ms
 * and only while fewer than `queue` others wait, and else refuses (the
 * caller answers 503 with Retry-After). Waiting holds the caller's thread,
 * which is why the queue is short.
 *
 * Threads: any; one mutex per gate.
 */
#ifndef PODIUM_SERVER_GATE_H
#define PODIUM_SERVER_GATE_H

#include <pthread.h>

struct gate {
    pthread_mutex_t mu;
    pthread_cond_t freed;
    int limit, queue;
    int inside, waiting;
};

/* 0, or -1 when the condition variable cannot be made. */
int gate_init(struct gate *g, int limit, int queue);
void gate_destroy(struct gate *g);

/* 0: in (call gate_leave once done); -1: refused (full, queue full, or
 * still full after wait_ms). */
int gate_enter(struct gate *g, int wait_ms);
void gate_leave(struct gate *g);

/* How many are inside and waiting now. */
void gate_counts(struct gate *g, int *inside, int *waiting);

#endif
