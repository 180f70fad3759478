#!/bin/sh
# db_scale.sh - the database at scale: one team with JOBS jobs of TRIALS
# trials each (default 1,000 x 100 = 100,000 trials) and PROGRESS progress
# events per trial (default 30: about 3.2 million events), then the hot
# paths timed two ways: EXPLAIN (ANALYZE, BUFFERS) of the statement the
# code runs (warm cache; the plan's scans named, "SEQ" when one is a
# sequential scan of a big table) and real HTTP requests to podium-server
# (median and max of REPS). Then event retention: a real podium-scheduler
# with the default --events-retention=7d deletes the progress events of the
# jobs that finished over a week ago; the table's rows and size before and
# after, how long the pass took, and the retention statements with and
# without the indexes of migrations/0007.
#
#   sh bench/db_scale.sh [JOBS] [TRIALS] [PROGRESS] [REPS]   (needs make)
#
# The statements are copies of those in scheduler/claim.c, server/leaderboard.c,
# server/feed.c and migrations/0007 (keep them in step). The team board
# is timed as pages (first, and after a cursor half-way down), its count,
# the CSV export (time to first byte and to the last) and, for
# comparison, the one statement it was before migrations/0008. The stack's own
# scheduler is stopped before seeding, so nothing changes the data while
# it is measured. Every figure comes from this run on this machine.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=${1:-1000}
trials=${2:-100}
progress=${3:-30}
reps=${4:-20}
running=10
. bench/stack.sh
stack_start 1
# The stack's scheduler (the last pid) would start claiming and compacting.
sched_pid=${pids##* }
kill "$sched_pid"
wait "$sched_pid" 2>/dev/null || true
pids=${pids% *}

secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
psql_run() { pg_as "$(pg_bindir)/psql" -h "$tmp/pg/run" -p "$port" -U podium -d podium \
                 -X -q -tA -v ON_ERROR_STOP=1 "$@"; }

ds=$(curl -s -H "$H" -H 'Content-Type: text/csv' --data-binary @tests/data/tabular/iris.csv \
     "$api/v1/datasets" | sed 's/.*"id":"\([^"]*\)".*/\1/')
team=$(psql_q "SELECT team_id FROM datasets WHERE id = '$ds'")
t0=$(date +%s.%N)
psql_run -v team="$team" -v dataset="$ds" -v jobs="$jobs" -v trials="$trials" \
         -v progress="$progress" -v running="$running" -f "$root/bench/db_scale_seed.sql" >/dev/null
t1=$(date +%s.%N)
n_trials=$(psql_q "SELECT count(*) FROM trials")
n_events=$(psql_q "SELECT count(*) FROM job_events")
size_before=$(psql_q "SELECT pg_size_pretty(pg_total_relation_size('job_events'))")
printf 'seeded %s jobs, %s trials, %s events (job_events %s) in %.0f s\n' "$jobs" "$n_trials" \
       "$n_events" "$size_before" "$(secs "$t0" "$t1")"
echo "PostgreSQL $(psql_q 'SHOW server_version'), $(nproc) cores, shared_buffers $(psql_q 'SHOW shared_buffers')"
echo

# A finished job in the middle, a running one, and where to read events from.
job=$(psql_q "SELECT id FROM jobs WHERE state = 'succeeded' ORDER BY created_at OFFSET $(( (jobs - running) / 2 )) LIMIT 1")
active=$(psql_q "SELECT id FROM jobs WHERE state = 'running' ORDER BY created_at LIMIT 1")
head=$(psql_q "SELECT seq FROM job_event_heads WHERE job_id = '$job'")
after=$(( head / 2 ))

# explain NAME SQL [PREP]: the statement run twice under EXPLAIN (ANALYZE,
# BUFFERS), each time in a transaction rolled back (after PREP), so a
# DELETE deletes the same rows twice; prints the second run's figures.
explain() {
    out=$(printf '%s\n' "BEGIN;" "${3:-}" "EXPLAIN (ANALYZE, BUFFERS) $2;" "ROLLBACK;" \
          "BEGIN;" "${3:-}" "EXPLAIN (ANALYZE, BUFFERS) $2;" "ROLLBACK;" | psql_run 2>&1) || {
        echo "explain $1 failed: $out" >&2; exit 1; }
    second=$(printf '%s\n' "$out" | awk '/Planning Time/ { n++ } n >= 1 && !/Planning Time/ { print }' )
    [ -n "$second" ] || second=$out
    ms=$(printf '%s\n' "$second" | sed -n 's/.*Execution Time: \([0-9.]*\) ms.*/\1/p' | tail -1)
    bufs=$(printf '%s\n' "$second" | sed -n 's/.*Buffers: shared \(.*\)/\1/p' | head -1 |
           sed 's/hit=\([0-9]*\)/\1 hit/; s/read=\([0-9]*\)/\1 read/; s/ dirtied=[0-9]*//; s/ written=[0-9]*//')
    scans=$(printf '%s\n' "$second" |
            grep -o 'Seq Scan on [a-z_]*\|Index Only Scan[a-zA-Z ]* using [a-z_]*\|Index Scan[a-zA-Z ]* using [a-z_]*\|Bitmap Index Scan on [a-z_]*' |
            sed 's/Seq Scan on \(.*\)/SEQ \1/; s/.* using //; s/Bitmap Index Scan on //' | sort -u | tr '\n' ' ')
    printf '%-34s %10s   %-24s %s\n' "$1" "$ms" "$bufs" "$scans"
}

# http NAME PATH: median and max of REPS requests, in ms.
http() {
    : >"$tmp/times"
    for _ in $(seq "$reps"); do
        curl -s -o "$tmp/body" -w '%{http_code} %{time_total}\n' -H "$H" "$api$2" >>"$tmp/times"
    done
    bad=$(awk '$1 != 200' "$tmp/times" | wc -l)
    bytes=$(wc -c <"$tmp/body")
    awk -v name="$1" -v bad="$bad" -v bytes="$bytes" '{ print $2 * 1000 }' "$tmp/times" | sort -n |
        awk -v name="$1" -v bad="$bad" -v bytes="$bytes" '
            { v[NR] = $1 } END { printf "%-34s %10.2f %10.2f %10d%s\n", name, v[int((NR + 1) / 2)],
                                 v[NR], bytes, bad ? "   (" bad " not 200)" : "" }'
}

echo "EXPLAIN (ANALYZE, BUFFERS), warm, in ms; the scans of its plan (SEQ: a sequential scan)"
printf '%-34s %10s   %-24s %s\n' "statement" "ms" "buffers" "scans"
explain "claim: lock a job with room" \
 "SELECT j.id, j.team_id, j.target, j.task, j.metric, j.cv::text, j.seed, j.trial_timeout_seconds,
    extract(epoch from (coalesce(j.started_at, now()) + j.max_seconds * interval '1 second' - now()))::float8,
    d.kind, d.format, encode(b.sha256, 'hex'), b.lo, b.encoding, j.cancel_requested, j.state, b.size,
    j.options::text, j.higher_is_better, array_to_json(j.models)::text, j.strategy,
    j.strategy_state::text, j.max_trials, j.parallelism, j.max_failed_trials, j.dataset_id IS NULL
  FROM jobs j LEFT JOIN datasets d ON d.id = j.dataset_id LEFT JOIN blobs b ON b.id = d.blob_id
  WHERE j.state IN ('queued', 'running') AND NOT j.cancel_requested
  AND (NULL::text[] IS NULL OR j.models && NULL::text[])
  AND (j.started_at IS NULL OR now() < j.started_at + j.max_seconds * interval '1 second')
  AND (SELECT count(*) FROM trials t WHERE t.job_id = j.id AND t.state = 'running') < j.parallelism
  AND (SELECT count(*) FROM trials t WHERE t.job_id = j.id) < j.max_trials
  AND (SELECT count(*) FROM trials t WHERE t.job_id = j.id AND t.state = 'failed') <= j.max_failed_trials
  ORDER BY j.created_at, j.id LIMIT 1 FOR UPDATE OF j SKIP LOCKED"
explain "claim: take over an expired lease" \
 "UPDATE trials t SET lease_owner = 'bench2', lease_expires_at = now() + interval '30 seconds',
    attempts = t.attempts + 1 FROM (SELECT id FROM trials WHERE state = 'running'
    AND lease_expires_at < now() ORDER BY lease_expires_at LIMIT 1 FOR UPDATE SKIP LOCKED) c
  WHERE t.id = c.id RETURNING t.id"
explain "sweep: lock the active jobs" \
 "SELECT id FROM jobs WHERE state IN ('queued', 'running') FOR UPDATE SKIP LOCKED"
explain "job leaderboard" \
 "SELECT rank() OVER (ORDER BY CASE WHEN j.higher_is_better THEN -t.score ELSE t.score END) AS rank,
    t.id, t.job_id, t.family, t.params, j.metric, t.score, t.score_std, t.metrics, t.fit_seconds,
    t.predict_us_per_row, t.model_bytes, t.finished_at, t.details
  FROM trials t JOIN jobs j ON j.id = t.job_id
  WHERE t.state = 'succeeded' AND t.artifact_lo IS NOT NULL AND t.job_id = '$job' AND t.team_id = '$team'
  ORDER BY rank, t.finished_at, t.id"
# The team board (server/leaderboard.c, TEAM_PAGE_SQL): a page after a cursor
# is the next N after (score, id), an index seek at any depth; the middle
# of the board is read from the data.
board="t.team_id = '$team' AND t.state = 'succeeded' AND t.artifact_lo IS NOT NULL
    AND t.score IS NOT NULL AND j.dataset_id = '$ds' AND j.target = 'species' AND j.metric = 'accuracy'"
mid=$(psql_q "SELECT t.score || ' ' || t.id FROM trials t JOIN jobs j ON j.id = t.job_id WHERE $board
              ORDER BY t.score DESC, t.id DESC OFFSET $(( jobs * trials / 2 )) LIMIT 1")
mid_score=${mid% *}
mid_id=${mid#* }
team_page() { # KEYSET LIMIT
    printf '%s' "SELECT CASE WHEN b.score = NULL::float8 THEN NULL::bigint
    ELSE 0 + rank() OVER (ORDER BY b.score DESC) END AS rank, b.*
  FROM (SELECT t.id AS model_id, t.job_id, t.family, t.params, j.metric, t.score, t.score_std,
      t.metrics, t.fit_seconds, t.predict_us_per_row, t.model_bytes, t.finished_at, t.details
    FROM trials t JOIN jobs j ON j.id = t.job_id WHERE $board $1
    ORDER BY t.score DESC, t.id DESC LIMIT $2) b ORDER BY b.score DESC, b.model_id DESC"
}
after_mid="AND (t.score, t.id) < ($mid_score::float8, '$mid_id'::uuid)"
count="SELECT count(*) FROM trials t JOIN jobs j ON j.id = t.job_id WHERE $board"
explain "team board: first page (101)" "$(team_page '' 101)"
explain "team board: page at 50% (101)" "$(team_page "$after_mid" 101)"
explain "team board: export batch (1000)" "$(team_page "$after_mid" 1000)"
explain "team board: total (count)" "$count"
explain "team board: version digest" \
 "SELECT md5(coalesce(string_agg(j.id::text || ':' || coalesce(h.board_seq, 0)::text, ',' ORDER BY j.id), ''))
  FROM jobs j LEFT JOIN job_event_heads h ON h.job_id = j.id
  WHERE j.team_id = '$team' AND j.dataset_id = '$ds' AND j.target = 'species' AND j.metric = 'accuracy'"
echo "... the team board before migrations/0008 (every model in one statement), and the page without its index"
noidx8="DROP INDEX trials_team_board_idx;"
explain "team board: every model (before)" \
 "SELECT rank() OVER (ORDER BY CASE WHEN j.higher_is_better THEN -t.score ELSE t.score END) AS rank,
    t.id, t.job_id, t.family, t.params, j.metric, t.score, t.score_std, t.metrics, t.fit_seconds,
    t.predict_us_per_row, t.model_bytes, t.finished_at, t.details
  FROM trials t JOIN jobs j ON j.id = t.job_id
  WHERE t.state = 'succeeded' AND t.artifact_lo IS NOT NULL AND t.team_id = '$team'
    AND j.dataset_id = '$ds' AND j.target = 'species' AND j.metric = 'accuracy'
  ORDER BY rank, t.finished_at, t.id"
explain "  first page, no 0008 index" "$(team_page '' 101)" "$noidx8"
explain "  page at 50%, no 0008 index" "$(team_page "$after_mid" 101)" "$noidx8"
explain "  total, no 0008 index" "$count" "$noidx8"
explain "events after= (100)" \
 "SELECT h.compacted_seq, e.* FROM job_event_heads h LEFT JOIN LATERAL
   (SELECT seq, type, trial_id, data, created_at FROM job_events
     WHERE job_id = h.job_id AND seq > $after AND seq <= $head ORDER BY seq LIMIT 100) e ON true
  WHERE h.job_id = '$job' ORDER BY e.seq"
explain "trials of a job" \
 "SELECT t.* FROM trials t WHERE t.job_id = '$job' AND t.team_id = '$team' ORDER BY t.seq"
explain "jobs list (50, with progress)" \
 "SELECT j.id, (SELECT count(*) FILTER (WHERE t.state = 'succeeded') FROM trials t WHERE t.job_id = j.id)
  FROM jobs j WHERE j.team_id = '$team' ORDER BY j.created_at DESC, j.id DESC LIMIT 50"
explain "retention: a page of candidates" \
 "SELECT h.job_id::text FROM job_event_heads h JOIN jobs j ON j.id = h.job_id
  WHERE h.has_progress AND h.job_id > '00000000-0000-0000-0000-000000000000'
  AND ((j.state IN ('queued', 'running') AND 10000 > 0) OR (j.state NOT IN ('queued', 'running')
       AND coalesce(j.finished_at, j.created_at) < now() - 604800 * interval '1 second'))
  ORDER BY h.job_id LIMIT 100"
explain "retention: a batch's bound" \
 "SELECT max(b.seq) FROM (SELECT e.seq FROM job_events e WHERE e.job_id = '$job'
   AND e.type = 'trial_progress' ORDER BY e.seq LIMIT 500) b"
bound=$(psql_q "SELECT max(b.seq) FROM (SELECT e.seq FROM job_events e WHERE e.job_id = '$job'
                AND e.type = 'trial_progress' ORDER BY e.seq LIMIT 500) b")
explain "retention: a batch's delete (500)" \
 "DELETE FROM job_events e WHERE e.job_id = '$job' AND e.type = 'trial_progress' AND e.seq <= $bound"
explain "retention: the cap's count back" \
 "SELECT e.seq FROM job_events e WHERE e.job_id = '$active' AND e.type = 'trial_progress'
  ORDER BY e.seq DESC OFFSET 10000 LIMIT 1"
echo
echo "... the same retention statements without the indexes of migrations/0007"
noidx="DROP INDEX job_events_progress_idx; DROP INDEX job_event_heads_progress_idx;"
explain "retention: a page of candidates" \
 "SELECT h.job_id::text FROM job_event_heads h JOIN jobs j ON j.id = h.job_id
  WHERE h.has_progress AND h.job_id > '00000000-0000-0000-0000-000000000000'
  AND ((j.state IN ('queued', 'running') AND 10000 > 0) OR (j.state NOT IN ('queued', 'running')
       AND coalesce(j.finished_at, j.created_at) < now() - 604800 * interval '1 second'))
  ORDER BY h.job_id LIMIT 100" "$noidx"
explain "retention: a batch's bound" \
 "SELECT max(b.seq) FROM (SELECT e.seq FROM job_events e WHERE e.job_id = '$job'
   AND e.type = 'trial_progress' ORDER BY e.seq LIMIT 500) b" "$noidx"
explain "retention: a batch's delete (500)" \
 "DELETE FROM job_events e WHERE e.job_id = '$job' AND e.type = 'trial_progress' AND e.seq <= $bound" "$noidx"
explain "retention: the cap's count back" \
 "SELECT e.seq FROM job_events e WHERE e.job_id = '$active' AND e.type = 'trial_progress'
  ORDER BY e.seq DESC OFFSET 10000 LIMIT 1" "$noidx"

echo
echo "HTTP, $reps requests each, one at a time (no If-None-Match), in ms"
printf '%-34s %10s %10s %10s\n' "request" "median" "max" "bytes"
http "GET /v1/jobs/{id}" "/v1/jobs/$job"
http "GET /v1/jobs?limit=50" "/v1/jobs?limit=50"
http "GET /v1/jobs/{id}/trials" "/v1/jobs/$job/trials"
http "GET /v1/jobs/{id}/leaderboard" "/v1/jobs/$job/leaderboard"
http "GET /v1/jobs/{id}/events?after=" "/v1/jobs/$job/events?after=$after&limit=100"
http "GET /v1/leaderboards (first page)" "/v1/leaderboards?dataset_id=$ds"
# The page at 50%: the cursor a walk would hold there (server/leaderboard.c,
# cursor_encode: "c1", metric, position, rank, score, id, target in hex).
mid_rank=$(psql_q "SELECT 1 + count(*) FROM trials t JOIN jobs j ON j.id = t.job_id
                   WHERE $board AND t.score > $mid_score")
cursor=$(printf 'c1\naccuracy\n%s\n%s\n%s\n%s\nspecies' "$(( jobs * trials / 2 + 1 ))" "$mid_rank" \
         "$mid_score" "$mid_id" | od -An -v -tx1 | tr -d ' \n')
http "  ... page at 50% (cursor)" "/v1/leaderboards?dataset_id=$ds&cursor=$cursor"
http "  ... limit=1000 at 50%" "/v1/leaderboards?dataset_id=$ds&limit=1000&cursor=$cursor"
echo
echo "the CSV export (Accept: text/csv, every model), $reps requests, in ms"
ps -o rss= -p "$(echo $pids | cut -d' ' -f1)" | awk '{ printf "podium-server RSS before the export: %.0f MB\n", $1 / 1024 }'
printf '%-34s %10s %10s %10s %10s %10s\n' "request" "ttfb med" "ttfb max" "total med" "total max" "lines"
: >"$tmp/times"
for _ in $(seq "$reps"); do
    curl -s -o "$tmp/body" -w '%{http_code} %{time_starttransfer} %{time_total}\n' -H "$H" \
         -H 'Accept: text/csv' "$api/v1/leaderboards?dataset_id=$ds" >>"$tmp/times"
done
bad=$(awk '$1 != 200' "$tmp/times" | wc -l)
lines=$(wc -l <"$tmp/body")
awk '{ print $2 * 1000, $3 * 1000 }' "$tmp/times" | sort -n -k1,1 >"$tmp/ttfb"
awk '{ print $3 * 1000 }' "$tmp/times" | sort -n >"$tmp/total"
printf '%-34s %10.2f %10.2f %10.2f %10.2f %10d%s\n' "GET /v1/leaderboards (CSV)" \
       "$(awk -v n="$reps" 'NR == int((n + 1) / 2) { print $1 }' "$tmp/ttfb")" \
       "$(tail -1 "$tmp/ttfb" | cut -d' ' -f1)" \
       "$(awk -v n="$reps" 'NR == int((n + 1) / 2) { print $1 }' "$tmp/total")" \
       "$(tail -1 "$tmp/total")" "$lines" "$([ "$bad" -gt 0 ] && echo "   ($bad not 200)")"
ps -o rss= -p "$(echo $pids | cut -d' ' -f1)" | awk '{ printf "podium-server RSS after the export: %.0f MB\n", $1 / 1024 }'

echo
old=$(psql_q "SELECT count(*) FROM jobs WHERE state = 'succeeded' AND finished_at < now() - interval '7 days'")
echo "retention: a podium-scheduler with the defaults (7d, cap 10000) on $old jobs finished over 7 days ago"
t0=$(date +%s.%N)
bin/podium-scheduler --slots 1 --cache-dir "$tmp/cache" 2>"$tmp/sched2.log" &
pids="$pids $!"
while [ "$(psql_q "SELECT count(*) FROM job_event_heads h JOIN jobs j ON j.id = h.job_id
                   WHERE h.has_progress AND j.state = 'succeeded'
                   AND j.finished_at < now() - interval '7 days'")" -gt 0 ]; do
    sleep 0.5
    if [ "$(secs "$t0" "$(date +%s.%N)" | cut -d. -f1)" -gt 900 ]; then
        echo "retention: gave up after 900 s"; break
    fi
done
t1=$(date +%s.%N)
n_after=$(psql_q "SELECT count(*) FROM job_events")
psql_q "VACUUM job_events" >/dev/null
size_after=$(psql_q "SELECT pg_size_pretty(pg_total_relation_size('job_events'))")
kept=$(psql_q "SELECT count(*) FROM job_events WHERE type <> 'trial_progress'")
printf '  job_events: %s rows (%s) -> %s rows (%s after VACUUM; %s not progress, all kept) in %.1f s\n' \
       "$n_events" "$size_before" "$n_after" "$size_after" "$kept" "$(secs "$t0" "$t1")"
grep 'events retention' "$tmp/sched2.log" | sed 's/^/  log: /' | head -3
echo
echo "after retention"
printf '%-34s %10s %10s %10s\n' "request" "median" "max" "bytes"
http "GET /v1/jobs/{id}/events?after=" "/v1/jobs/$job/events?after=$after&limit=100"
http "  ... after=0 (\"compacted\": true)" "/v1/jobs/$job/events?after=0&limit=100"
echo
echo "a page of retention candidates now that most jobs hold no progress event, with and without 0007's indexes"
printf '%-34s %10s   %-24s %s\n' "statement" "ms" "buffers" "scans"
page="SELECT h.job_id::text FROM job_event_heads h JOIN jobs j ON j.id = h.job_id
  WHERE h.has_progress AND h.job_id > '00000000-0000-0000-0000-000000000000'
  AND ((j.state IN ('queued', 'running') AND 10000 > 0) OR (j.state NOT IN ('queued', 'running')
       AND coalesce(j.finished_at, j.created_at) < now() - 604800 * interval '1 second'))
  ORDER BY h.job_id LIMIT 100"
explain "retention: a page of candidates" "$page"
explain "  ... without 0007's indexes" "$page" "$noidx"
