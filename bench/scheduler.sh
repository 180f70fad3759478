#!/bin/sh
# scheduler.sh - scheduler throughput: trials per second with the quickest
# trials, and the per-trial overhead.
#
#   sh bench/scheduler.sh [TRIALS] [SLOTS]     (default 200 trials, 2 slots; needs make)
#
# Starts a throwaway PostgreSQL, podium-server and one podium-scheduler,
# uploads iris, and runs one job of naive Bayes trials (well under a
# millisecond of fitting each) with parallelism = slots. Prints trials/s
# from the job's start to its end, and the wall time a slot spends on one
# trial (proposal, spawn, reading the data, 3-fold CV, refit, artifact
# upload, database round trips): nearly all of it is overhead.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/pg.sh
trials=${1:-200}
slots=${2:-2}
tmp=$(mktemp -d /tmp/podium-bench.XXXXXX)
chmod 755 "$tmp"
port=$(( 30000 + $$ % 20000 ))
http=$(( port + 1 ))
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    pg_stop "$tmp/pg" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

PG_EXTRA_OPTS="-c fsync=off -c synchronous_commit=off" pg_setup "$tmp/pg" "$port" >/dev/null
export DATABASE_URL=$(pg_conninfo "$tmp/pg" "$port")
bin/podium-server --migrate --bootstrap-key-file "$tmp/key" 2>/dev/null
bin/podium-server --port "$http" 2>"$tmp/server.log" &
pids="$pids $!"
bin/podium-scheduler --slots "$slots" --cache-dir "$tmp/cache" --sweep-seconds 1 2>"$tmp/sched.log" &
pids="$pids $!"
until curl -fs "http://127.0.0.1:$http/healthz" >/dev/null; do sleep 0.1; done
H="Authorization: Bearer $(cat "$tmp/key")"
api="http://127.0.0.1:$http"
ds=$(curl -s -H "$H" -H 'Content-Type: text/csv' --data-binary @tests/data/tabular/iris.csv \
     "$api/v1/datasets" | sed 's/.*"id":"\([^"]*\)".*/\1/')
job=$(curl -s -H "$H" -H 'Content-Type: application/json' "$api/v1/jobs" -d "{\"dataset_id\": \"$ds\",
      \"models\": [\"nb\"], \"cv\": {\"folds\": 3}, \"parallelism\": $slots,
      \"budget\": {\"max_trials\": $trials, \"max_seconds\": 600}}" | sed 's/.*"id":"\([^"]*\)".*/\1/')
while :; do
    state=$(curl -s -H "$H" "$api/v1/jobs/$job" | sed 's/.*"state":"\([^"]*\)".*/\1/')
    case "$state" in succeeded|failed|cancelled) break;; esac
    sleep 0.2
done
psql_q() { pg_as "$(pg_bindir)/psql" -h "$tmp/pg/run" -p "$port" -U podium -d podium -tAc "$1"; }
psql_q "SELECT count(*) FILTER (WHERE t.state = 'succeeded'),
               extract(epoch FROM j.finished_at - j.started_at),
               avg(extract(epoch FROM t.finished_at - t.started_at)),
               avg(t.fit_seconds)
          FROM jobs j JOIN trials t ON t.job_id = j.id WHERE j.id = '$job'
          GROUP BY j.finished_at, j.started_at" | {
    IFS='|' read ok secs per_trial fit
    echo "job $state: $ok of $trials trials succeeded, $slots slots, $(nproc) cores"
    printf 'throughput              %8.1f trials/s\n' "$(awk "BEGIN {print $ok / $secs}")"
    printf 'wall time per trial     %8.1f ms (claim to result stored, in one slot)\n' "$(awk "BEGIN {print $per_trial * 1000}")"
    printf 'of which model fitting  %8.2f ms (the trainer'"'"'s final fit; CV fits are alike)\n' "$(awk "BEGIN {print $fit * 1000}")"
}
