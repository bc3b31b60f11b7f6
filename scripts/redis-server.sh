#!/usr/bin/env bash
# Throwaway redis-server instances on 127.0.0.1 for the store tests (installed with
# apt-get when missing). Nothing is persisted; every instance lives in one state DIR.
#
#   scripts/redis-server.sh run CMD...          start a server, a 3-node cluster and a TLS server, run
#                                               CMD with TOKENCACHE_REDIS_URL, TOKENCACHE_REDIS_CLUSTER_URLS,
#                                               TOKENCACHE_REDIS_TLS_URL, TOKENCACHE_REDIS_TLS_CA,
#                                               TOKENCACHE_REDIS_CTL and TOKENCACHE_REDIS_DIR set,
#                                               stop everything, exit with CMD's status
#   scripts/redis-server.sh start DIR           start a server on a free port, print its URL
#   scripts/redis-server.sh stop DIR            stop it (SHUTDOWN NOSAVE)
#   scripts/redis-server.sh restart DIR         start it again on the same port (empty)
#   scripts/redis-server.sh start-cluster DIR   start a 3-master cluster, print its URLs (comma-separated)
#   scripts/redis-server.sh start-tls DIR       start a TLS-only server with a fresh test CA (DIR/tls/ca.crt),
#                                               print its rediss:// URL
#   scripts/redis-server.sh stop-all DIR        stop every instance started in DIR
set -euo pipefail

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"

die() { echo "redis-server.sh: $*" >&2; exit 1; }

ensure_installed() {
    command -v redis-server >/dev/null && command -v redis-cli >/dev/null && command -v openssl >/dev/null && return
    local sudo=""
    [[ $(id -u) == 0 ]] || sudo="sudo"
    echo "redis-server.sh: installing redis-server and openssl" >&2
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -qq redis-server openssl >/dev/null 2>&1 \
        || { $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq redis-server openssl >/dev/null; } \
        || die "could not install redis-server"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
    # A random port whose cluster bus port (+10000) is free too.
    local p
    for _ in $(seq 1 200); do
        p=$((20000 + RANDOM % 30000))
        port_in_use "$p" || port_in_use $((p + 10000)) || { echo "$p"; return; }
    done
    die "no free port"
}

# cli DIR NAME ARGS...: redis-cli on instance NAME (with its TLS options, if any).
cli() {
    local dir=$1 name=$2 extra=()
    shift 2
    [[ -f $dir/$name/cli-args ]] && read -ra extra <"$dir/$name/cli-args"
    redis-cli -h 127.0.0.1 -p "$(cat "$dir/$name/port")" "${extra[@]}" "$@"
}

# launch DIR NAME PORT [extra redis-server args...]: daemonized, returns once it answers PING.
# A TLS instance has DIR/NAME/cli-args and gets --port 0 --tls-port PORT in its args.
launch() {
    local dir=$1 name=$2 port=$3 ports=()
    shift 3
    mkdir -p "$dir/$name"
    if [[ -f $dir/$name/cli-args ]]; then ports=(--port 0 --tls-port "$port"); else ports=(--port "$port"); fi
    redis-server --bind 127.0.0.1 "${ports[@]}" --protected-mode yes --daemonize yes \
        --dir "$dir/$name" --pidfile "$dir/$name/redis.pid" --logfile "$dir/$name/redis.log" \
        --save '' --appendonly no "$@" >/dev/null
    echo "$port" >"$dir/$name/port"
    for _ in $(seq 1 100); do
        [[ $(cli "$dir" "$name" ping 2>/dev/null) == PONG ]] && return 0
        sleep 0.1
    done
    tail -5 "$dir/$name/redis.log" >&2 || true
    return 1
}

stop_one() {
    local dir=$1 name=$2 port pid
    [[ -f $dir/$name/port ]] || return 0
    port=$(cat "$dir/$name/port")
    pid=$(cat "$dir/$name/redis.pid" 2>/dev/null || true)
    cli "$dir" "$name" shutdown nosave >/dev/null 2>&1 || true
    # Done when the port is closed: the daemon's parent is PID 1, so the exited
    # process may linger as a zombie until PID 1 reaps it.
    for _ in $(seq 1 50); do
        port_in_use "$port" || break
        sleep 0.1
    done
    if port_in_use "$port" && [[ -n $pid ]]; then kill -9 "$pid" 2>/dev/null || true; fi
    rm -f "$dir/$name/redis.pid"
}

start() {
    local dir=$1 port
    for _ in 1 2 3 4 5; do
        port=$(free_port)
        if launch "$dir" server "$port"; then
            echo "redis://127.0.0.1:$port"
            return
        fi
    done
    die "redis-server did not start (see $dir/server/redis.log)"
}

restart() {
    local dir=$1
    [[ -f $dir/server/port ]] || die "nothing was started in $dir"
    launch "$dir" server "$(cat "$dir/server/port")" || die "redis-server did not restart"
}

start_cluster() {
    local dir=$1 ports=() nodes=() urls=() i port
    for i in 1 2 3; do
        for _ in 1 2 3 4 5; do
            port=$(free_port)
            launch "$dir" "cluster$i" "$port" --cluster-enabled yes \
                --cluster-config-file "$dir/cluster$i/nodes.conf" --cluster-node-timeout 2000 && break
            port=""
        done
        [[ -n $port ]] || die "cluster node $i did not start"
        ports+=("$port")
        nodes+=("127.0.0.1:$port")
        urls+=("redis://127.0.0.1:$port")
    done
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"$dir/cluster-create.log" 2>&1 \
        || { cat "$dir/cluster-create.log" >&2; die "redis-cli --cluster create failed"; }
    for _ in $(seq 1 100); do
        local ok=1
        for port in "${ports[@]}"; do
            redis-cli -h 127.0.0.1 -p "$port" cluster info 2>/dev/null | grep -q 'cluster_state:ok' || ok=0
        done
        [[ $ok == 1 ]] && { (IFS=,; echo "${urls[*]}"); return; }
        sleep 0.1
    done
    die "the cluster did not reach cluster_state:ok"
}

start_tls() {
    local dir=$1 t=$1/tls port
    mkdir -p "$t"
    # A throwaway CA and a server certificate for 127.0.0.1 (P-256: quick to make).
    {
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
            -subj /CN=tokencache-test-ca -keyout "$t/ca.key" -out "$t/ca.crt" \
            -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=127.0.0.1 \
            -keyout "$t/server.key" -out "$t/server.csr"
        openssl x509 -req -in "$t/server.csr" -CA "$t/ca.crt" -CAkey "$t/ca.key" -CAcreateserial -days 2 \
            -out "$t/server.crt" -extfile <(printf '%s\n' subjectAltName=IP:127.0.0.1 basicConstraints=CA:FALSE \
                keyUsage=digitalSignature extendedKeyUsage=serverAuth)
    } >"$t/openssl.log" 2>&1 || { cat "$t/openssl.log" >&2; die "could not make the test certificates"; }
    echo "--tls --cacert $t/ca.crt" >"$t/cli-args"
    for _ in 1 2 3 4 5; do
        port=$(free_port)
        if launch "$dir" tls "$port" --tls-cert-file "$t/server.crt" --tls-key-file "$t/server.key" \
            --tls-ca-cert-file "$t/ca.crt" --tls-auth-clients no; then
            echo "rediss://127.0.0.1:$port"
            return
        fi
    done
    die "the TLS redis-server did not start (see $t/redis.log)"
}

stop_all() {
    local dir=$1 d
    for d in "$dir"/*/; do
        [[ -d $d ]] && stop_one "$dir" "$(basename "$d")"
    done
}

cmd=${1:-}
shift || true
case $cmd in
    run)
        [[ $# -gt 0 ]] || die "run needs a command"
        ensure_installed
        dir=$(mktemp -d "${TMPDIR:-/tmp}/tokencache-redis.XXXXXX")
        trap 'stop_all "$dir"; rm -rf "$dir"' EXIT
        TOKENCACHE_REDIS_URL=$(start "$dir")
        TOKENCACHE_REDIS_CLUSTER_URLS=$(start_cluster "$dir")
        TOKENCACHE_REDIS_TLS_URL=$(start_tls "$dir")
        TOKENCACHE_REDIS_TLS_CA="$dir/tls/ca.crt"
        export TOKENCACHE_REDIS_URL TOKENCACHE_REDIS_CLUSTER_URLS TOKENCACHE_REDIS_TLS_URL TOKENCACHE_REDIS_TLS_CA
        export TOKENCACHE_REDIS_CTL="$SELF" TOKENCACHE_REDIS_DIR="$dir"
        echo "redis-server.sh: server $TOKENCACHE_REDIS_URL, cluster $TOKENCACHE_REDIS_CLUSTER_URLS," \
            "TLS $TOKENCACHE_REDIS_TLS_URL" >&2
        status=0
        "$@" || status=$?
        exit "$status"
        ;;
    start) ensure_installed; mkdir -p "${1:?DIR}"; start "$1" ;;
    stop) stop_one "${1:?DIR}" server ;;
    restart) restart "${1:?DIR}" ;;
    start-cluster) ensure_installed; mkdir -p "${1:?DIR}"; start_cluster "$1" ;;
    start-tls) ensure_installed; mkdir -p "${1:?DIR}"; start_tls "$1" ;;
    stop-all) stop_all "${1:?DIR}" ;;
    *) die "usage: $0 run CMD... | start DIR | stop DIR | restart DIR | start-cluster DIR | start-tls DIR | stop-all DIR" ;;
esac
