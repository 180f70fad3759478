/* test_utf8.c - lib/utf8: counting code points and refusing bad UTF-8,
 * and repairing text from child processes (U+FFFD for bad bytes, NULs
 * dropped, a head cut off a log's tail skipped); every repair is valid. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/utf8.h"

#define FFFD "\xEF\xBF\xBD"

static void test_length(void **state)
{
    (void)state;
    assert_int_equal(utf8_length(""), 0);
    assert_int_equal(utf8_length("abc"), 3);
    assert_int_equal(utf8_length("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80"), 9);
    static const char *const bad[] = {
        "\xC3",                 /* cut short */
        "\xC3(",                /* not a continuation */
        "\xC0\xAF",             /* overlong '/' */
        "\xE0\x80\xAF",         /* overlong, 3 bytes */
        "\xED\xA0\x80",         /* a surrogate */
        "\xF4\x90\x80\x80",     /* past U+10FFFF */
        "\xFF", "\x80",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(utf8_length(bad[i]), (size_t)-1);
}

static void check_scrub(const char *in, size_t len, int skip, const char *want)
{
    char *got = utf8_scrub_dup(in, len, skip);
    assert_non_null(got);
    assert_string_equal(got, want);
    assert_true(utf8_length(got) != (size_t)-1);
    free(got);
}

static void test_scrub(void **state)
{
    (void)state;
    check_scrub("fine \xE2\x82\xAC", 8, 0, "fine \xE2\x82\xAC");
    check_scrub("a\xFF" "b", 3, 0, "a" FFFD "b");
    check_scrub("a\xC3", 2, 0, "a" FFFD);                 /* cut at the end */
    check_scrub("\xA9t\xC3\xA9", 4, 1, "t\xC3\xA9");      /* cut at the start: skipped */
    check_scrub("\xA9t", 2, 0, FFFD "t");                 /* unless not asked to */
    check_scrub("a\0b", 3, 0, "ab");                      /* NUL dropped */
    check_scrub("\xED\xA0\x80", 3, 0, FFFD FFFD FFFD);   /* a surrogate, byte by byte */
    check_scrub("", 0, 1, "");
}

/* Every cut of a mixed text, from either end, repairs to valid UTF-8 and
 * keeps every whole character after the cut. */
static void test_scrub_every_cut(void **state)
{
    (void)state;
    const char *text = "r\xC3\xA9sum\xC3\xA9 \xE2\x82\xAC 10 \xF0\x9F\x98\x80!";
    size_t len = strlen(text);
    for (size_t cut = 0; cut <= len; cut++) {
        char *head = utf8_scrub_dup(text, cut, 0);
        char *tail = utf8_scrub_dup(text + cut, len - cut, 1);
        assert_non_null(head);
        assert_non_null(tail);
        assert_true(utf8_length(head) != (size_t)-1);
        assert_true(utf8_length(tail) != (size_t)-1);
        /* the tail is a suffix of the text: only the broken head went */
        size_t tl = strlen(tail);
        assert_true(tl <= len - cut);
        assert_memory_equal(tail, text + len - tl, tl);
        free(head);
        free(tail);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_length),
        cmocka_unit_test(test_scrub),
        cmocka_unit_test(test_scrub_every_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
