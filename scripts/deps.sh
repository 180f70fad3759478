#!/bin/sh
# deps.sh - make sure the Debian packages Podium builds and runs with are
# installed. As root, installs what is missing with apt-get; otherwise prints
# the exact command to run and fails.
set -eu

# Build and run: compiler, pkg-config, the libraries, PostgreSQL's server.
# Tests: cmocka (unit test framework), libcurl (HTTP client), libyaml (reads
# api/openapi.yaml). Runtime helpers: util-linux's runuser to run
# PostgreSQL unprivileged when started as root. The dashboard: npm installs
# its charting library (make web), and its browser test drives Debian's
# chromium with playwright-core.
PACKAGES="build-essential pkg-config
libmicrohttpd-dev libcjson-dev libpq-dev libuv1-dev libopenblas-dev libssl-dev
libarchive-dev libpng-dev libjpeg62-turbo-dev zlib1g-dev libzstd-dev
postgresql postgresql-client
libcmocka-dev libcurl4-openssl-dev libyaml-dev
util-linux procps curl chromium"
# node and npm may come from elsewhere than Debian (a newer release): only
# when the commands are missing are Debian's packages wanted.
command -v node >/dev/null 2>&1 || PACKAGES="$PACKAGES nodejs"
command -v npm >/dev/null 2>&1 || PACKAGES="$PACKAGES npm"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    echo "deps: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Installing the postgresql package must not create and start Debian's
    # own cluster (15/main on port 5432) on a machine without one: ours is
    # started by scripts/pg.sh. postgresql-common reads this setting (and
    # keeps a file that is already there) when the package is installed.
    case " $missing " in *" postgresql "*)
        if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
            mkdir -p /etc/postgresql-common
            echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
        fi;;
    esac
    apt-get install -y -qq --no-install-recommends $missing
else
    echo "deps: missing Debian packages:$missing" >&2
    echo "deps: run: sudo apt-get install -y$missing" >&2
    exit 1
fi
