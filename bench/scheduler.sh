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
trials=${1:-200}
slots=${2:-2}
. bench/stack.sh
stack_start "$slots"
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
