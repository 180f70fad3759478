#!/bin/sh
# nas_compare.sh - DARTS against regularized evolution against random search
# at the same budget, through the whole service (server, scheduler,
# podium-train), on an image data set.
#
#   sh bench/nas_compare.sh [ARCHIVE] [SECONDS] [SLOTS]
#       (default ../shared/data/images/digits8x8.zip, 300 s per strategy, 2 slots)
#
# Starts a throwaway PostgreSQL, podium-server and one podium-scheduler,
# uploads the archive, then runs one job per strategy, one after another,
# each with only the "cnn" family (plus the "darts" search trials DARTS
# needs), the same time budget, the same NAS settings and the same seed.
# Prints each job's best held-out accuracy, its trials and its wall time;
# and the best genotype's parameter count and multiply-adds.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/pg.sh
archive=${1:-../shared/data/images/digits8x8.zip}
secs=${2:-300}
slots=${3:-2}
nas=${NAS_OPTIONS:-'{"cells": 5, "channels": 16, "epochs": 10, "search_epochs": 5, "population": 8, "sample": 3}'}
[ -f "$archive" ] || { echo "nas_compare: no archive $archive" >&2; exit 2; }
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
ds=$(curl -s -H "$H" -H 'Content-Type: application/zip' --data-binary @"$archive" \
     "$api/v1/datasets?name=images" | sed 's/.*"id":"\([^"]*\)".*/\1/')
psql_q() { pg_as "$(pg_bindir)/psql" -h "$tmp/pg/run" -p "$port" -U podium -d podium -tAc "$1"; }

echo "archive $(basename "$archive"), $secs s per strategy, $slots slots, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "NAS settings: $nas"
printf '%-10s %10s %8s %8s %10s %12s %s\n' strategy accuracy trials failed wall_s params madds best_family
for strategy in darts evolution random; do
    job=$(curl -s -H "$H" -H 'Content-Type: application/json' "$api/v1/jobs" -d "{\"dataset_id\": \"$ds\",
          \"models\": [\"cnn\"], \"strategy\": \"$strategy\", \"parallelism\": $slots, \"seed\": 1,
          \"options\": {\"nas\": $nas},
          \"budget\": {\"max_trials\": 1000, \"max_seconds\": $secs, \"trial_timeout_seconds\": $secs}}" |
          sed 's/.*"id":"\([^"]*\)".*/\1/')
    while :; do
        state=$(curl -s -H "$H" "$api/v1/jobs/$job" | sed 's/.*"state":"\([^"]*\)".*/\1/')
        case "$state" in succeeded|failed|cancelled) break;; esac
        sleep 1
    done
    psql_q "SELECT coalesce(max(t.score) FILTER (WHERE t.family = 'cnn'), 0),
                   count(*), count(*) FILTER (WHERE t.state = 'failed'),
                   extract(epoch FROM j.finished_at - j.started_at),
                   (SELECT t2.details->>'param_count' || '|' || (t2.details->>'flops') || '|' || t2.family
                      FROM trials t2 WHERE t2.job_id = j.id AND t2.state = 'succeeded'
                      ORDER BY t2.score DESC LIMIT 1)
              FROM jobs j JOIN trials t ON t.job_id = j.id WHERE j.id = '$job'
              GROUP BY j.id, j.finished_at, j.started_at" | {
        IFS='|' read acc n failed wall params flops fam
        printf '%-10s %10.4f %8d %8d %10.0f %12s %s\n' "$strategy" "$acc" "$n" "$failed" "$wall" \
            "${params:-?}" "${flops:-?}" "${fam:-?}"
    }
done
