# stack.sh - sourced by the benches that drive the whole service: a
# throwaway PostgreSQL, podium-server and one podium-scheduler, all stopped
# and removed when the bench exits.
#
#   . bench/stack.sh
#   stack_start SLOTS       # SLOTS scheduler slots; sets tmp, port, api, key, H
#
# tmp is the bench's scratch folder (logs: $tmp/server.log, $tmp/sched.log);
# api the server's base URL; H the Authorization header line for curl.
. scripts/pg.sh
tmp=$(mktemp -d /tmp/podium-bench.XXXXXX)
chmod 755 "$tmp"
port=$(( 30000 + $$ % 20000 ))
http=$(( port + 1 ))
api="http://127.0.0.1:$http"
pids=""
stack_cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    pg_stop "$tmp/pg" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap stack_cleanup EXIT INT TERM

stack_start() {
    PG_EXTRA_OPTS="-c fsync=off -c synchronous_commit=off" pg_setup "$tmp/pg" "$port" >/dev/null
    DATABASE_URL=$(pg_conninfo "$tmp/pg" "$port")
    export DATABASE_URL
    bin/podium-server --migrate --bootstrap-key-file "$tmp/key" 2>/dev/null
    bin/podium-server --port "$http" 2>"$tmp/server.log" &
    pids="$pids $!"
    bin/podium-scheduler --slots "$1" --cache-dir "$tmp/cache" --sweep-seconds 1 \
        2>"$tmp/sched.log" &
    pids="$pids $!"
    until curl -fs "$api/healthz" >/dev/null; do sleep 0.1; done
    key=$(cat "$tmp/key")
    H="Authorization: Bearer $key"
}

# psql against the bench's database.
psql_q() { pg_as "$(pg_bindir)/psql" -h "$tmp/pg/run" -p "$port" -U podium -d podium -tAc "$1"; }
