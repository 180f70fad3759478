/* test_buf.c - the model-file buffer writes what it reads and never reads
 * past its end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "trainers/buf.h"

static void round_trip(void **state)
{
    struct pd_buf b;
    pd_buf_init(&b);
    float f[3] = {1.5f, -2.0f, 3.25f};
    assert_int_equal(pd_buf_put_u32(&b, 7), 0);
    assert_int_equal(pd_buf_put_f64(&b, 0.125), 0);
    assert_int_equal(pd_buf_put_f32s(&b, f, 3), 0);
    assert_int_equal(pd_buf_put_str(&b, "gbm"), 0);

    struct pd_reader r;
    pd_reader_init(&r, b.data, b.len);
    uint32_t u;
    double d;
    float g[3];
    char *s;
    assert_int_equal(pd_reader_get_u32(&r, &u), 0);
    assert_int_equal(u, 7);
    assert_int_equal(pd_reader_get_f64(&r, &d), 0);
    assert_true(d == 0.125);
    assert_int_equal(pd_reader_get_f32s(&r, g, 3), 0);
    assert_true(g[2] == 3.25f);
    assert_int_equal(pd_reader_get_str(&r, 16, &s), 0);
    assert_string_equal(s, "gbm");
    free(s);
    assert_int_equal(r.left, 0);
    pd_buf_free(&b);
}

static void truncated_input_fails_and_stays_failed(void **state)
{
    struct pd_buf b;
    pd_buf_init(&b);
    pd_buf_put_u32(&b, 1000000);  /* a count far larger than what follows */
    pd_buf_put_u32(&b, 5);
    struct pd_reader r;
    pd_reader_init(&r, b.data, b.len);
    uint32_t n;
    assert_int_equal(pd_reader_get_count(&r, 1000, &n), -1);
    assert_true(r.failed);
    assert_int_equal(pd_reader_get_u32(&r, &n), -1);

    pd_reader_init(&r, b.data, b.len);
    char *s;
    assert_int_equal(pd_reader_get_str(&r, 1 << 30, &s), -1);
    assert_null(s);
    pd_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(truncated_input_fails_and_stays_failed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
