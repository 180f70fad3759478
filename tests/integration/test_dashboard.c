/*
 * test_dashboard.c - launches the browser test of the dashboard
 * (tests/browser/dashboard.mjs: node and playwright-core driving headless
 * Chromium) against a real podium-server serving build/web, a real
 * podium-scheduler and a database of its own, as the other integration
 * tests start them (tests/support/harness.h).
 *
 * The scheduler is started stopped (SIGSTOP); the browser test resumes it
 * once the job page shows the queued job, so the page is seen filling in.
 * Screenshots go to $PODIUM_TEST_SCREENSHOTS (tests/run.sh sets it to
 * build/test-screenshots) and stay after the run.
 *
 * Nothing here skips: without node, Chromium, playwright-core (make web
 * installs it) or build/web, the test fails and says which is missing.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "tests/support/harness.h"

#define BROWSER_TIMEOUT_S 150

static struct th_db db;
static struct th_server srv;
static struct th_scheduler sched;
static char root[PATH_MAX];

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* The first executable called name in PATH, copied into out; 0 or -1. */
static int in_path(const char *name, char *out, size_t len)
{
    const char *path = getenv("PATH");
    if (path == NULL) return -1;
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save = NULL, *dir = strtok_r(buf, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        snprintf(out, len, "%s/%s", dir, name);
        if (access(out, X_OK) == 0) return 0;
    }
    return -1;
}

static int log_has(const char *path, const char *text)
{
    char *log = th_read_file(path, NULL);
    int found = log != NULL && strstr(log, text) != NULL;
    free(log);
    return found;
}

static int setup(void **state)
{
    if (getcwd(root, sizeof root) == NULL) return -1;
    char web[PATH_MAX + 16], flag[PATH_MAX + 32];
    snprintf(web, sizeof web, "%s/build/web", root);
    snprintf(flag, sizeof flag, "--web-dir=%s", web);
    const char *extra[] = {flag, NULL};
    const char *sched_extra[] = {"--slots=2", NULL};
    if (th_db_create(&db) < 0 || th_server_start(&srv, &db, extra) < 0) return -1;
    if (th_scheduler_start(&sched, &db, sched_extra) < 0) return -1;
    /* Held, once it is connected, until the browser test has the job page
     * open. */
    for (int i = 0; i < 200 && !log_has(sched.log_path, "database connected"); i++) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    kill(sched.pid, SIGSTOP);
    return 0;
}

static int teardown(void **state)
{
    kill(sched.pid, SIGCONT);   /* a stopped process would not see SIGTERM */
    int a = th_scheduler_stop(&sched);
    int b = th_server_stop(&srv);
    th_db_drop(&db);
    return a == 0 && b == 0 ? 0 : -1;
}

static void test_dashboard_in_browser(void **state)
{
    char node[PATH_MAX], script[PATH_MAX + 64], pw[PATH_MAX + 64], index[PATH_MAX + 64];
    const char *chromium = getenv("PODIUM_CHROMIUM") ? getenv("PODIUM_CHROMIUM") : "/usr/bin/chromium";
    snprintf(script, sizeof script, "%s/tests/browser/dashboard.mjs", root);
    snprintf(pw, sizeof pw, "%s/web/node_modules/playwright-core/package.json", root);
    snprintf(index, sizeof index, "%s/build/web/index.html", root);
    if (in_path("node", node, sizeof node) < 0) fail_msg("node is not installed (scripts/deps.sh installs it)");
    if (access(chromium, X_OK) != 0) fail_msg("%s is missing (scripts/deps.sh installs Debian's chromium)", chromium);
    if (!exists(pw)) fail_msg("%s is missing: run make web", pw);
    if (!exists(index)) fail_msg("%s is missing: run make web", index);

    char url[64], pid[32], shots[PATH_MAX + 64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", srv.port);
    snprintf(pid, sizeof pid, "%ld", (long)sched.pid);
    const char *given = getenv("PODIUM_TEST_SCREENSHOTS");
    if (given && *given) snprintf(shots, sizeof shots, "%s", given);
    else snprintf(shots, sizeof shots, "%s/build/test-screenshots", root);

    fflush(stdout);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        setenv("PODIUM_URL", url, 1);
        setenv("PODIUM_KEY", srv.key, 1);
        setenv("PODIUM_SCHEDULER_PID", pid, 1);
        setenv("PODIUM_SCREENSHOTS", shots, 1);
        setenv("PODIUM_CHROMIUM", chromium, 1);
        /* Sanitizer settings are for our C programs, not for node. */
        unsetenv("ASAN_OPTIONS");
        unsetenv("UBSAN_OPTIONS");
        unsetenv("LD_PRELOAD");
        execl(node, node, script, (char *)NULL);
        _exit(127);
    }
    double t0 = th_now_s();
    int status = 0;
    for (;;) {
        pid_t w = waitpid(child, &status, WNOHANG);
        if (w == child) break;
        if (w < 0 && errno != EINTR) fail_msg("waitpid: %s", strerror(errno));
        if (th_now_s() - t0 > BROWSER_TIMEOUT_S) {
            kill(child, SIGKILL);
            waitpid(child, &status, 0);
            fail_msg("the browser test ran past %d s", BROWSER_TIMEOUT_S);
        }
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    printf("dashboard: screenshots in %s\n", shots);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("the browser test failed (exit %d); its output is above",
                 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dashboard_in_browser),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
