#!/bin/sh
# poll.sh - what cheap polling costs: 200 clients polling a running job's
# leaderboard with If-None-Match, beside /healthz (the server's ceiling:
# no key, no database), the same leaderboard without If-None-Match (a
# full answer per poll: rendered once per version and then served from
# memory, or a query per poll on a server without the response cache)
# and the team's leaderboard of the data set without If-None-Match. Needs wrk (Debian package wrk; a bench tool, not a
# dependency of Podium).
#
#   sh bench/poll.sh [SECONDS] [CONNECTIONS] [FAMILY]   (default 10 s, 200, mlp; needs make)
#
# Starts a throwaway PostgreSQL, podium-server and one podium-scheduler
# (1 slot), uploads iris and starts a job of quick trials that keeps
# running through the whole bench, so the leaderboard's tag really changes
# now and then (each connection then gets one 200 and goes on with the new
# tag). Every figure comes from this run on this machine.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
secs=${1:-10}
conns=${2:-200}
models=${3:-mlp}   # the running job's family: mlp trials take a while; nb ones are instant
command -v wrk >/dev/null || { echo "poll.sh: needs wrk (apt-get install wrk)"; exit 1; }
. bench/stack.sh
stack_start 1
ds=$(curl -s -H "$H" -H 'Content-Type: text/csv' --data-binary @tests/data/tabular/iris.csv \
     "$api/v1/datasets" | sed 's/.*"id":"\([^"]*\)".*/\1/')
budget=$(( 4 * secs + 60 ))
job=$(curl -s -H "$H" -H 'Content-Type: application/json' "$api/v1/jobs" -d "{\"dataset_id\": \"$ds\",
      \"models\": [\"$models\"], \"cv\": {\"folds\": 3}, \"parallelism\": 1,
      \"budget\": {\"max_trials\": 100000, \"max_seconds\": $budget}}" | sed 's/.*"id":"\([^"]*\)".*/\1/')
until curl -s -H "$H" "$api/v1/jobs/$job" | grep -q '"state":"running"'; do sleep 0.1; done
lb="$api/v1/jobs/$job/leaderboard"
team="$api/v1/leaderboards?dataset_id=$ds"

# One wrk run: requests/s, p99 (ms) and the status line of poll.lua.
run() { # name url etag(1/0) script(1/0)
    if [ "$4" = 1 ]; then
        PODIUM_KEY=$key PODIUM_ETAG=$3 wrk -t2 -c"$conns" -d"${secs}s" --latency -s bench/poll.lua "$2" >"$tmp/wrk.out" 2>&1
    else
        wrk -t2 -c"$conns" -d"${secs}s" --latency "$2" >"$tmp/wrk.out" 2>&1
    fi
    rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$tmp/wrk.out")
    p99=$(awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us/, "", v); v /= 1000 }
                              else if (v ~ /ms$/) { sub(/ms/, "", v) }
                              else if (v ~ /s$/) { sub(/s/, "", v); v *= 1000 }
                              printf "%.2f", v }' "$tmp/wrk.out")
    errs=$(sed -n 's/^ *\(Socket errors:.*\)/\1/p; s/^ *\(Non-2xx or 3xx responses:.*\)/\1/p' "$tmp/wrk.out" | tr '\n' ' ')
    st=$(sed -n 's/^statuses: //p' "$tmp/wrk.out")
    printf '%-38s %12s %10s   %s %s\n' "$1" "$rps" "$p99" "${st:--}" "$errs"
    eval "rps_$5=\$rps"
}

trials0=$(curl -s -H "$H" "$api/v1/jobs/$job" | sed 's/.*"trials":\([0-9]*\).*/\1/')
echo "$conns connections, ${secs} s each, wrk -t2; server: 8 threads, $(nproc) cores;"
echo "a job of $models trials running all along (1 scheduler slot)"
echo
printf '%-38s %12s %10s   %s\n' "endpoint" "requests/s" "p99 ms" "statuses"
run "/healthz (ceiling)" "$api/healthz" 0 0 health
run "leaderboard, If-None-Match" "$lb" 1 1 etag
run "leaderboard, no If-None-Match" "$lb" 0 1 full
run "team leaderboard, no If-None-Match" "$team" 0 1 team
trials1=$(curl -s -H "$H" "$api/v1/jobs/$job" | sed 's/.*"trials":\([0-9]*\).*/\1/')
echo
echo "trials the job ran meanwhile: $((trials1 - trials0))"
awk "BEGIN { printf \"If-None-Match polls at %.0f%% of the /healthz ceiling (goal: 50%%)\n\", 100 * $rps_etag / $rps_health }"
