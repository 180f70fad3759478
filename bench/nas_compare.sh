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
archive=${1:-../shared/data/images/digits8x8.zip}
secs=${2:-300}
slots=${3:-2}
nas=${NAS_OPTIONS:-'{"cells": 5, "channels": 16, "epochs": 10, "search_epochs": 5, "population": 8, "sample": 3}'}
[ -f "$archive" ] || { echo "nas_compare: no archive $archive" >&2; exit 2; }
. bench/stack.sh
stack_start "$slots"
ds=$(curl -s -H "$H" -H 'Content-Type: application/zip' --data-binary @"$archive" \
     "$api/v1/datasets?name=images" | sed 's/.*"id":"\([^"]*\)".*/\1/')

echo "archive $(basename "$archive"), $secs s per strategy, $slots slots, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "NAS settings: $nas"
printf '%-10s %10s %8s %8s %8s %10s %12s %s\n' strategy accuracy trials failed wall_s params madds best_family
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
        printf '%-10s %10.4f %8d %8d %8.0f %10s %12s %s\n' "$strategy" "$acc" "$n" "$failed" "$wall" \
            "${params:-?}" "${flops:-?}" "${fam:-?}"
    }
done
