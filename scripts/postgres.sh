#!/usr/bin/env bash
# A throwaway PostgreSQL server on 127.0.0.1 for the tests (Debian's postgresql package), with trust auth.
#
#   scripts/postgres.sh start DIR          create the cluster in DIR if needed, start it, print its test URL
#   scripts/postgres.sh stop DIR           stop it (nothing to do when it is not running)
#   scripts/postgres.sh run -- CMD ARGS    a fresh cluster in a temp folder for the length of CMD: exports
#                                          CLASSPULSE_TEST_POSTGRES_URL, stops and removes it when CMD ends, failed or not
#
# Idempotent: `start` reuses DIR's cluster and port, so a server stopped under a client comes back where it was.
# The server never runs as root (postgres refuses to): as root it runs as the `postgres` user.
set -euo pipefail

DATABASE=classpulse_test

log() { echo "postgres.sh: $*" >&2; }
die() { log "$*"; exit 2; }

bin_dir() {
    local dirs=(/usr/lib/postgresql/*/bin)
    [[ -x ${dirs[-1]}/pg_ctl ]] || die "PostgreSQL is not installed (scripts/setup.sh test installs it)"
    echo "${dirs[-1]}"
}

as_owner() {
    if ((EUID == 0)); then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    local dir=$1 bin port
    bin=$(bin_dir)
    mkdir -p "$dir"
    ((EUID == 0)) && chown postgres: "$dir"
    if [[ ! -f $dir/data/PG_VERSION ]]; then
        # A test server: durability off (fsync) buys speed; the data is thrown away anyway.
        as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync -E UTF8 --locale=C.UTF-8 >/dev/null
        free_port >"$dir/port"
    fi
    port=$(<"$dir/port")
    if ! as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
            -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories='$dir' -c fsync=off \
                -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" >/dev/null \
            || die "the server did not start; see $dir/server.log"
    fi
    if [[ -z $(as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'") ]]; then
        as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres "$DATABASE"
    fi
    echo "postgresql+psycopg://postgres@127.0.0.1:$port/$DATABASE"
}

stop() {
    local dir=$1 bin
    bin=$(bin_dir)
    [[ -f $dir/data/PG_VERSION ]] || return 0
    if as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -w -t 60 -m fast stop >/dev/null
    fi
}

run() {
    [[ ${1:-} == -- ]] && shift
    (($#)) || die "usage: scripts/postgres.sh run -- COMMAND [ARGS...]"
    local dir
    dir=$(mktemp -d "${TMPDIR:-/tmp}/classpulse-postgres.XXXXXX")
    chmod 755 "$dir"
    # shellcheck disable=SC2064  # expand $dir now: the trap runs after this function returned
    trap "stop '$dir'; rm -rf '$dir'" EXIT
    CLASSPULSE_TEST_POSTGRES_URL=$(start "$dir")
    export CLASSPULSE_TEST_POSTGRES_URL
    log "PostgreSQL for the tests at $CLASSPULSE_TEST_POSTGRES_URL"
    "$@"
}

case "${1:-}" in
    start | stop) [[ -n ${2:-} ]] || die "usage: scripts/postgres.sh $1 DIR"; "$1" "$2" ;;
    run) shift; run "$@" ;;
    *) die "usage: scripts/postgres.sh start DIR | stop DIR | run -- COMMAND [ARGS...]" ;;
esac
