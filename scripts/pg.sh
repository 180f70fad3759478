# pg.sh - an embedded PostgreSQL owned by Podium (sourced, not run).
#
#   pg_setup DIR PORT [tcp]   initdb into DIR/data on first use, start it with
#                             its Unix socket in DIR/run (loopback TCP too
#                             when "tcp"), create the database "podium"
#   pg_stop DIR               stop it (fast shutdown: disconnects clients)
#   pg_conninfo DIR PORT      the libpq conninfo for the podium database
#
# PostgreSQL refuses to run as root: as root these run it as the system user
# "podium" (created if missing) through runuser. Authentication is "trust" on
# the Unix socket, whose folder only that user (and root) can enter, and
# SCRAM with a generated password over TCP.

pg_bindir() {
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r); do
        [ -x "$d/initdb" ] && { echo "$d"; return 0; }
    done
    echo "pg: no PostgreSQL server found (install the postgresql package)" >&2
    return 1
}

# Run a command as the user that owns the cluster (from /: the caller's
# folder may be closed to that user, and every path here is absolute).
pg_as() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u podium -- "$@")
    else
        "$@"
    fi
}

pg_ensure_user() {
    [ "$(id -u)" -eq 0 ] || return 0
    id podium >/dev/null 2>&1 && return 0
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin podium
}

pg_setup() {
    dir=$1 port=$2 tcp=${3:-}
    bindir=$(pg_bindir) || return 1
    pg_ensure_user
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown podium "$dir"
    if ! pg_as test -w "$dir"; then
        echo "pg: the user 'podium' cannot write $dir: a folder above it is closed to" \
             "other users; set PODIUM_DATA_DIR to a path under /srv or /var/lib" >&2
        return 1
    fi
    sock="$dir/run/.s.PGSQL.$port"
    if [ ${#sock} -gt 100 ]; then
        echo "pg: socket path $sock is too long for a Unix socket; use a shorter PODIUM_DATA_DIR" >&2
        return 1
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        umask 077
        head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$dir/pg-password"
        [ "$(id -u)" -eq 0 ] && chown podium "$dir/pg-password"
        pg_as "$bindir/initdb" -D "$dir/data" -U podium --pwfile="$dir/pg-password" \
            --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 \
            --no-instructions >"$dir/initdb.log" 2>&1 || {
            cat "$dir/initdb.log" >&2
            return 1
        }
        umask 022
    fi
    pg_as mkdir -p "$dir/run"
    pg_as chmod 700 "$dir/run"
    listen="''"
    [ "$tcp" = tcp ] && listen=127.0.0.1
    if ! pg_as "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        pg_as "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgresql.log" -w -t 60 \
            -o "-p $port -k $dir/run -c listen_addresses=$listen ${PG_EXTRA_OPTS:-}" \
            start >/dev/null || {
            tail -20 "$dir/postgresql.log" >&2
            return 1
        }
    fi
    if ! pg_as "$bindir/psql" -h "$dir/run" -p "$port" -U podium -d postgres -tAc \
            "SELECT 1 FROM pg_database WHERE datname = 'podium'" | grep -q 1; then
        pg_as "$bindir/createdb" -h "$dir/run" -p "$port" -U podium podium || return 1
    fi
}

pg_stop() {
    dir=$1
    bindir=$(pg_bindir) || return 1
    [ -f "$dir/data/postmaster.pid" ] || return 0
    pg_as "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
}

pg_conninfo() {
    echo "host=$1/run port=$2 dbname=podium user=podium"
}
