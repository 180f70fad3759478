/* test_rcache.c - the rendered-response cache (server/rcache.h) and the
 * walk gate (server/gate.h): a hit is the bytes that were put, a new
 * version misses, the byte cap evicts the least recently used, concurrent
 * misses of one key make one leader whose bytes every waiter gets, an
 * abandoned flight sends its waiters to render for themselves; a gate lets
 * `limit` in, queues at most `queue` behind them and refuses the rest. No
 * test depends on how long anything takes: threads are lined up by the
 * counts the modules report. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>

#include "server/gate.h"
#include "server/rcache.h"

static void put_text(struct rcache *c, struct rcache_flight *f, const char *key,
                     const char *version, const char *text, const char *team)
{
    struct rcache_body b = {.data = (char *)text, .len = strlen(text)};
    snprintf(b.etag, sizeof b.etag, "\"%s-%s\"", key, version);
    snprintf(b.content_type, sizeof b.content_type, "application/json");
    snprintf(b.team_id, sizeof b.team_id, "%s", team);
    assert_int_equal(rcache_put(c, f, key, version, &b), 0);
}

static void hits_are_the_bytes_put_and_versions_invalidate(void **state)
{
    struct rcache *c = rcache_new(1 << 20);
    assert_non_null(c);
    struct rcache_body out;
    struct rcache_flight *f;
    assert_int_equal(rcache_get(c, "job/a/lb.json", "5", 0, &out, &f), RCACHE_LEAD);
    assert_non_null(f);
    put_text(c, f, "job/a/lb.json", "5", "{\"items\":[1,2]}", "team-a");

    assert_int_equal(rcache_get(c, "job/a/lb.json", "5", 0, &out, &f), RCACHE_HIT);
    assert_null(f);
    assert_int_equal(out.len, strlen("{\"items\":[1,2]}"));
    assert_memory_equal(out.data, "{\"items\":[1,2]}", out.len);
    assert_string_equal(out.etag, "\"job/a/lb.json-5\"");
    assert_string_equal(out.content_type, "application/json");
    assert_string_equal(out.team_id, "team-a");
    rcache_body_free(&out);

    /* Another variant of the same resource is another key. */
    assert_int_equal(rcache_get(c, "job/a/lb.csv", "5", 0, &out, &f), RCACHE_LEAD);
    rcache_abandon(c, f);

    /* The version moved: a miss, and the new render replaces the old. */
    assert_int_equal(rcache_get(c, "job/a/lb.json", "6", 0, &out, &f), RCACHE_LEAD);
    put_text(c, f, "job/a/lb.json", "6", "{\"items\":[1,2,3]}", "team-a");
    assert_int_equal(rcache_get(c, "job/a/lb.json", "6", 0, &out, &f), RCACHE_HIT);
    assert_memory_equal(out.data, "{\"items\":[1,2,3]}", out.len);
    rcache_body_free(&out);
    assert_int_equal(rcache_get(c, "job/a/lb.json", "5", 0, &out, &f), RCACHE_LEAD);
    rcache_abandon(c, f);

    struct rcache_stats st;
    rcache_stats(c, &st);
    assert_int_equal(st.entries, 1);
    assert_int_equal(st.hits, 2);
    assert_int_equal(st.leads, 4);
    rcache_clear(c);
    rcache_stats(c, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    rcache_free(c);
}

static void the_byte_cap_evicts_the_least_recently_used(void **state)
{
    /* Entries of ~1 KiB in a 16 KiB cache (each at most 1/8 of it). */
    struct rcache *c = rcache_new(16 * 1024);
    char body[1024];
    memset(body, 'x', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    char key[32];
    struct rcache_body out;
    struct rcache_flight *f;
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof key, "k%d", i);
        put_text(c, NULL, key, "1", body, "t");
        /* k0 is used all along: it stays. */
        assert_int_equal(rcache_get(c, "k0", "1", 0, &out, &f), RCACHE_HIT);
        rcache_body_free(&out);
        struct rcache_stats st;
        rcache_stats(c, &st);
        assert_true(st.bytes <= 16 * 1024);
    }
    struct rcache_stats st;
    rcache_stats(c, &st);
    assert_true(st.evictions > 0);
    assert_true(st.entries < 40);
    assert_int_equal(rcache_get(c, "k1", "1", 0, &out, &f), RCACHE_LEAD);   /* evicted */
    rcache_abandon(c, f);
    assert_int_equal(rcache_get(c, "k39", "1", 0, &out, &f), RCACHE_HIT);   /* newest */
    rcache_body_free(&out);

    /* A body over an eighth of the cap is not kept. */
    char *big = malloc(4096);
    memset(big, 'y', 4095);
    big[4095] = '\0';
    put_text(c, NULL, "big", "1", big, "t");
    assert_int_equal(rcache_get(c, "big", "1", 0, &out, &f), RCACHE_LEAD);
    rcache_abandon(c, f);
    free(big);
    rcache_free(c);
}

struct getter {
    struct rcache *c;
    int result;
    struct rcache_body out;
};

static void *get_one(void *arg)
{
    struct getter *g = arg;
    struct rcache_flight *f;
    g->result = (int)rcache_get(g->c, "team/t/board", "v1", 60000, &g->out, &f);
    if (f) rcache_abandon(g->c, f);   /* a leader here would be a failure anyway */
    return NULL;
}

/* Wait until n requests wait for a leader (they block at once: no clock). */
static void until_waiting(struct rcache *c, int n)
{
    struct rcache_stats st;
    do {
        sched_yield();
        rcache_stats(c, &st);
    } while (st.waiting < n);
}

static void concurrent_misses_wait_for_one_render(void **state)
{
    enum { N = 8 };
    struct rcache *c = rcache_new(1 << 20);
    struct rcache_body out;
    struct rcache_flight *lead;
    assert_int_equal(rcache_get(c, "team/t/board", "v1", 0, &out, &lead), RCACHE_LEAD);

    struct getter g[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        g[i] = (struct getter){.c = c, .result = -1};
        assert_int_equal(pthread_create(&th[i], NULL, get_one, &g[i]), 0);
    }
    until_waiting(c, N);
    /* The leader read a newer version than it was asked for: its waiters
     * get those bytes all the same. */
    put_text(c, lead, "team/t/board", "v2", "rendered once", "t");
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(g[i].result, RCACHE_HIT);
        assert_int_equal(g[i].out.len, strlen("rendered once"));
        assert_memory_equal(g[i].out.data, "rendered once", g[i].out.len);
        rcache_body_free(&g[i].out);
    }
    struct rcache_stats st;
    rcache_stats(c, &st);
    assert_int_equal(st.leads, 1);
    assert_int_equal(st.waits, N);
    assert_int_equal(st.waiting, 0);

    /* An abandoned flight: its waiters are told to render themselves. */
    assert_int_equal(rcache_get(c, "team/t/board", "v1", 0, &out, &lead), RCACHE_LEAD);
    for (int i = 0; i < N; i++) {
        g[i] = (struct getter){.c = c, .result = -1};
        assert_int_equal(pthread_create(&th[i], NULL, get_one, &g[i]), 0);
    }
    until_waiting(c, N);
    rcache_abandon(c, lead);
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(g[i].result, RCACHE_MISS);
        assert_null(g[i].out.data);
    }
    rcache_free(c);
}

struct entrant {
    struct gate *g;
    int rc;
};

static void *enter_one(void *arg)
{
    struct entrant *e = arg;
    e->rc = gate_enter(e->g, 60000);
    if (e->rc == 0) gate_leave(e->g);
    return NULL;
}

static void gate_admits_limit_queues_a_few_and_refuses_the_rest(void **state)
{
    struct gate g;
    assert_int_equal(gate_init(&g, 2, 1), 0);
    assert_int_equal(gate_enter(&g, 0), 0);
    assert_int_equal(gate_enter(&g, 0), 0);
    assert_int_equal(gate_enter(&g, 0), -1);          /* full, and no wait asked */

    struct entrant e = {&g, 99};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, enter_one, &e), 0);
    int inside, waiting;
    do {
        sched_yield();
        gate_counts(&g, &inside, &waiting);
    } while (waiting < 1);
    assert_int_equal(inside, 2);
    assert_int_equal(gate_enter(&g, 60000), -1);      /* the queue is full: refused at once */
    gate_leave(&g);                                    /* the waiter goes in */
    pthread_join(th, NULL);
    assert_int_equal(e.rc, 0);
    gate_counts(&g, &inside, &waiting);
    assert_int_equal(inside, 1);
    assert_int_equal(waiting, 0);
    gate_leave(&g);
    gate_destroy(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hits_are_the_bytes_put_and_versions_invalidate),
        cmocka_unit_test(the_byte_cap_evicts_the_least_recently_used),
        cmocka_unit_test(concurrent_misses_wait_for_one_render),
        cmocka_unit_test(gate_admits_limit_queues_a_few_and_refuses_the_rest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
