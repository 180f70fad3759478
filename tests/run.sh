#!/bin/sh
# run.sh - the whole test suite against a throwaway PostgreSQL.
#
# Starts a cluster in a temporary folder (fsync off: it is thrown away),
# runs every test program under $PODIUM_TEST_DIR (unit/ first, then
# integration/) one after another, prints a line per program and a summary,
# and removes the cluster and everything else it started, whatever happens.
#
# Test programs read:
#   PODIUM_TEST_PG        conninfo of the cluster's "postgres" database
#   PODIUM_TEST_PGCTL     a command that takes "stop" or "start" for the cluster
#   PODIUM_BIN_DIR        where podium-server & co. are
#   PODIUM_TEST_TMP       a scratch folder
#   PODIUM_TEST_SCREENSHOTS  where the browser test (test_dashboard) puts
#                         its screenshots: build/test-screenshots, kept
# Set PODIUM_TEST_FILTER to a substring to run only matching programs, and
# PODIUM_TEST_VERBOSE=1 to see the output of passing programs too.
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. "$root/scripts/pg.sh"

bin_dir=$(cd "${PODIUM_BIN_DIR:-bin}" && pwd)
test_dir=$(cd "${PODIUM_TEST_DIR:-build/release/tests}" && pwd)
tmp=$(mktemp -d /tmp/podium-test.XXXXXX)
chmod 755 "$tmp"
port=$(( 20000 + $$ % 20000 ))

cleanup() {
    pg_stop "$tmp/pg" >/dev/null 2>&1
    # What a failed test left running: only this run's processes, whose
    # command lines name its folder (other suites may share the machine).
    pkill -TERM -f "$tmp" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export PG_EXTRA_OPTS="-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
if ! pg_setup "$tmp/pg" "$port" >"$tmp/pg-setup.log" 2>&1; then
    cat "$tmp/pg-setup.log"
    echo "tests: could not start PostgreSQL"
    exit 1
fi
bindir=$(pg_bindir)
export PODIUM_TEST_PG="host=$tmp/pg/run port=$port dbname=postgres user=podium"
if [ "$(id -u)" -eq 0 ]; then as="runuser -u podium --"; else as=""; fi
export PODIUM_TEST_PGCTL="$as $bindir/pg_ctl -D $tmp/pg/data -l $tmp/pg/postgresql.log -w -t 60 -o '-p $port -k $tmp/pg/run -c listen_addresses= $PG_EXTRA_OPTS' -m fast"
export PODIUM_BIN_DIR="$bin_dir"
export PODIUM_TEST_TMP="$tmp/scratch"
mkdir -p "$PODIUM_TEST_TMP"
export PODIUM_TEST_SCREENSHOTS="$root/build/test-screenshots"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"

passed=0 failed=0 skipped=0 programs_failed=""
for t in "$test_dir"/unit/test_* "$test_dir"/integration/test_*; do
    [ -x "$t" ] || continue
    case "$t" in *.d|*.o) continue;; esac
    name=${t#"$test_dir"/}
    if [ -n "${PODIUM_TEST_FILTER:-}" ]; then
        case "$name" in *"$PODIUM_TEST_FILTER"*) ;; *) continue;; esac
    fi
    log="$tmp/$(echo "$name" | tr / _).log"
    start=$(date +%s)
    timeout -k 10 600 "$t" >"$log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    ok=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\./\1/p' "$log" | tail -1)
    bad=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s), listed below:/\1/p' "$log" | tail -1)
    # cmocka's skip() (a GPU test without a GPU): counted apart, never as passed
    skip=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test(s), listed below:/\1/p' "$log" | tail -1)
    ok=${ok:-0} bad=${bad:-0} skip=${skip:-0}
    if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi   # crashed or killed
    passed=$((passed + ok))
    failed=$((failed + bad))
    skipped=$((skipped + skip))
    if [ "$rc" -eq 0 ] && [ "$bad" -eq 0 ] && [ "$ok" -eq 0 ] && [ "$skip" -gt 0 ]; then
        printf 'SKIP  %-40s %3d skipped  %3ds   (%s)\n' "$name" "$skip" "$secs" \
            "$(grep -m1 -i 'skipped (not passed)' "$log" | sed 's/^[a-z_]*: //' | cut -c1-100)"
    elif [ "$rc" -eq 0 ] && [ "$bad" -eq 0 ]; then
        printf 'PASS  %-40s %3d tests%s  %3ds\n' "$name" "$ok" \
            "$([ "$skip" -gt 0 ] && echo ", $skip skipped")" "$secs"
        [ -n "${PODIUM_TEST_VERBOSE:-}" ] && sed 's/^/      | /' "$log"
    else
        printf 'FAIL  %-40s %3d passed, %d failed (exit %d)  %3ds\n' "$name" "$ok" "$bad" "$rc" "$secs"
        sed 's/^/      | /' "$log" | tail -80
        programs_failed="$programs_failed $name"
    fi
done

echo
# Named when this run took them (newer than its scratch folder).
if [ -n "$(find "$PODIUM_TEST_SCREENSHOTS" -name '*.png' -newer "$tmp" 2>/dev/null | head -1)" ]; then
    echo "dashboard screenshots: $PODIUM_TEST_SCREENSHOTS"
fi
[ -n "$programs_failed" ] && echo "failing programs:$programs_failed"
echo "tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
