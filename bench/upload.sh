#!/bin/sh
# upload.sh - data set upload speed and memory, beside pandas.
#
#   sh bench/upload.sh [MB]       (default 200; needs bin/ built: make)
#
# Generates a numeric CSV of about MB megabytes, starts a throwaway
# PostgreSQL and podium-server, and prints:
#   - Podium: upload + parse + profile + store in PostgreSQL, end to end
#     (curl to the 201), in MB/s;
#   - pandas.read_csv of the same file (Debian's python3-pandas), in MB/s;
#   - the server's peak resident memory (VmHWM) over the run.
# Set BENCH_MEMORY_MB=1024 to also upload a 1 GiB file and report the peak.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/pg.sh
mb=${1:-200}
tmp=$(mktemp -d /tmp/podium-bench.XXXXXX)
chmod 755 "$tmp"
port=$(( 30000 + $$ % 20000 ))
http_port=$(( port + 1 ))
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    pg_stop "$tmp/pg" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

gen() { # gen FILE MB: 8 float columns and an integer label
    /usr/bin/python3 - "$1" "$2" <<'PY'
import random, sys
path, mb = sys.argv[1], int(sys.argv[2])
random.seed(1)
target = mb * 1000 * 1000
rows = []
line = ",".join(f"f{i}" for i in range(8)) + ",label\n"
with open(path, "w") as f:
    f.write(line)
    size = len(line)
    block = []
    while size < target:
        vals = [f"{random.gauss(0, 1):.6f}" for _ in range(8)]
        s = ",".join(vals) + f",{random.randrange(3)}\n"
        block.append(s)
        size += len(s)
        if len(block) == 10000:
            f.write("".join(block)); block = []
    f.write("".join(block))
PY
}

echo "bench: generating a ${mb} MB CSV"
gen "$tmp/data.csv" "$mb"
bytes=$(stat -c %s "$tmp/data.csv")

PG_EXTRA_OPTS="-c fsync=off -c synchronous_commit=off" pg_setup "$tmp/pg" "$port" >/dev/null
export DATABASE_URL=$(pg_conninfo "$tmp/pg" "$port")
bin/podium-server --migrate --bootstrap-key-file "$tmp/key" 2>/dev/null
bin/podium-server --port "$http_port" --max-upload-bytes $((8 << 30)) 2>"$tmp/server.log" &
server_pid=$!
until curl -fs "http://127.0.0.1:$http_port/healthz" >/dev/null; do sleep 0.1; done
key=$(cat "$tmp/key")

upload() { # upload FILE -> seconds
    start=$(date +%s.%N)
    code=$(curl -s -o "$tmp/resp.json" -w '%{http_code}' -H "Authorization: Bearer $key" \
        -H 'Content-Type: text/csv' --data-binary @"$1" "http://127.0.0.1:$http_port/v1/datasets")
    end=$(date +%s.%N)
    [ "$code" = 201 ] || { echo "bench: upload failed ($code): $(head -c 300 "$tmp/resp.json")" >&2; exit 1; }
    echo "$end - $start" | bc -l
}

secs=$(upload "$tmp/data.csv")
pandas=$(/usr/bin/python3 -c "
import time, pandas
t = time.perf_counter(); df = pandas.read_csv('$tmp/data.csv'); print(time.perf_counter() - t)")
peak=$(awk '/VmHWM/ {print $2}' /proc/$server_pid/status)

printf '\n%-44s %10s %10s\n' "on $(( bytes / 1000000 )) MB numeric CSV ($(nproc) cores)" "seconds" "MB/s"
printf '%-44s %10.2f %10.1f\n' "Podium upload+parse+profile+store" "$secs" "$(echo "$bytes / 1000000 / $secs" | bc -l)"
printf '%-44s %10.2f %10.1f\n' "pandas.read_csv (parse only, in memory)" "$pandas" "$(echo "$bytes / 1000000 / $pandas" | bc -l)"
printf '%-44s %10s\n' "podium-server peak RSS" "$(( peak / 1024 )) MB"

if [ -n "${BENCH_MEMORY_MB:-}" ]; then
    echo
    echo "bench: generating a ${BENCH_MEMORY_MB} MB CSV for the memory check"
    rm -f "$tmp/data.csv"
    gen "$tmp/big.csv" "$BENCH_MEMORY_MB"
    big=$(stat -c %s "$tmp/big.csv")
    secs=$(upload "$tmp/big.csv")
    peak=$(awk '/VmHWM/ {print $2}' /proc/$server_pid/status)
    printf '%-44s %10.2f %10.1f\n' "Podium, $(( big / 1000000 )) MB upload" "$secs" "$(echo "$big / 1000000 / $secs" | bc -l)"
    printf '%-44s %10s\n' "podium-server peak RSS over both uploads" "$(( peak / 1024 )) MB"
fi
