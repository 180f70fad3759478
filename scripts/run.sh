#!/bin/sh
# run.sh - what `make run` does after building: start the embedded
# PostgreSQL (unless DATABASE_URL is set), migrate, bootstrap, start
# podium-server and podium-scheduler, print the URL and the development API
# key, and on Ctrl-C or SIGTERM stop all of it cleanly.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/pg.sh"

data=${PODIUM_DATA_DIR:-$root/var}
# As root, PostgreSQL runs as the user "podium", which must reach the data
# folder. A checkout in /root (or in a home folder of mode 0700, what Debian
# 12's adduser creates) is closed to it: then, unless PODIUM_DATA_DIR says
# otherwise, the data lives in /var/lib/podium instead.
if [ -z "${PODIUM_DATA_DIR:-}" ] && [ -z "${DATABASE_URL:-}" ] && [ "$(id -u)" -eq 0 ]; then
    pg_ensure_user
    if ! runuser -u podium -- test -x "$root"; then
        data=/var/lib/podium
        echo "podium: $root is closed to the user podium (it runs PostgreSQL); data in $data"
    fi
fi
mkdir -p "$data"
data=$(cd "$data" && pwd)
export PODIUM_DATA_DIR="$data"      # the scheduler keeps its cache under it
export PODIUM_PORT=${PODIUM_PORT:-8080}
export PODIUM_WEB_DIR=${PODIUM_WEB_DIR:-$root/build/web}   # the dashboard (make web)
pg_port=${PODIUM_PG_PORT:-5433}
bin=${PODIUM_BIN_DIR:-$root/bin}
embedded=0

if [ -z "${DATABASE_URL:-}" ]; then
    echo "podium: starting PostgreSQL in $data/pg (port $pg_port, socket $data/pg/run)"
    pg_setup "$data/pg" "$pg_port" tcp
    embedded=1
    DATABASE_URL=$(pg_conninfo "$data/pg" "$pg_port")
fi
export DATABASE_URL

server_pid="" scheduler_pid=""
stop_all() {
    # Ignore further signals: a second Ctrl-C, or make forwarding the TERM
    # it got, must not cut the shutdown short and leave PostgreSQL running.
    trap "" INT TERM
    trap - EXIT
    echo
    echo "podium: stopping"
    for pid in $server_pid $scheduler_pid; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in $server_pid $scheduler_pid; do wait "$pid" 2>/dev/null || true; done
    if [ "$embedded" = 1 ]; then
        pg_stop "$data/pg" && echo "podium: PostgreSQL stopped"
    fi
    exit 0
}
stopping=""
trap stop_all EXIT
trap 'stopping=1' INT TERM

"$bin/podium-server" --migrate --bootstrap-key-file "$data/api-key"

"$bin/podium-server" >>"$data/server.log" 2>&1 &
server_pid=$!
"$bin/podium-scheduler" >>"$data/scheduler.log" 2>&1 &
scheduler_pid=$!

url="http://${PODIUM_BIND:-127.0.0.1}:$PODIUM_PORT"
i=0
until curl -fsS "$url/healthz" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 "$server_pid" 2>/dev/null; then
        echo "podium: the server did not start; last lines of $data/server.log:" >&2
        tail -20 "$data/server.log" >&2
        exit 1
    fi
    sleep 0.1
done

echo "podium: server    $url   (log: $data/server.log)"
echo "podium: dashboard $url/   (sign in with the API key below)"
echo "podium: scheduler running (log: $data/scheduler.log)"
if [ -f "$data/api-key" ]; then
    echo "podium: API key   $(cat "$data/api-key")   (also in $data/api-key)"
    echo "podium: try       curl -H \"Authorization: Bearer \$(cat $data/api-key)\" $url/v1/me"
else
    echo "podium: this database was bootstrapped before; its admin key is not in $data/api-key"
fi
echo "podium: Ctrl-C stops everything"

# Wait until a signal arrives or either program exits, then stop the rest.
while [ -z "$stopping" ] && kill -0 "$server_pid" 2>/dev/null &&
      kill -0 "$scheduler_pid" 2>/dev/null; do
    sleep 1 &
    wait $! 2>/dev/null || true
done
[ -z "$stopping" ] && echo "podium: a program exited; see the logs in $data" >&2
stop_all
