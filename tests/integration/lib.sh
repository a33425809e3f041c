# lib.sh — shared helpers for integration tests (sourced, POSIX-ish bash).
# Every test gets its own scratch directory and kills what it started on exit.
set -euo pipefail

BUILD=${VIGIL_BUILD_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../build" && pwd)}
SRC=${VIGIL_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
SHARED=${VIGIL_SHARED_DIR:-$SRC/../shared}
T=$(mktemp -d "${TMPDIR:-/tmp}/vigil-test.XXXXXX")
PIDS=()

cleanup() {
    local rc=$?
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    sleep 0.2
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    if [ "$rc" -ne 0 ]; then
        echo "--- test failed (rc=$rc); logs in $T:" >&2
        for f in "$T"/*.log; do [ -f "$f" ] && { echo "== $f" >&2; tail -n 40 "$f" >&2; }; done
    else
        rm -rf "$T"
    fi
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok - $*"; }

# A free TCP port on loopback (the kernel picks it; tiny race accepted).
free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_for TIMEOUT_S CMD...: retries CMD every 0.1 s until it succeeds or time runs out.
wait_for() {
    local timeout=$1; shift
    local end=$(( $(date +%s%N) + timeout * 1000000000 ))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s%N)" -lt "$end" ] || return 1
        sleep 0.1
    done
}

# bg NAME CMD...: starts CMD in the background, logging to $T/NAME.log; sets LAST_PID.
bg() {
    local name=$1; shift
    "$@" >"$T/$name.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

# make_clip IMAGE OUT [WxH] [FPS] [GOP_S]: builds a test clip once per test run.
make_clip() {
    "$SRC/scripts/make-clip.sh" "$@" >/dev/null 2>&1 || fail "make-clip $*"
}

# start_broker: runs a mosquitto broker on a free loopback port; sets MQTT_PORT.
start_broker() {
    MQTT_PORT=$(free_port)
    printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$MQTT_PORT" \
        >"$T/mosquitto.conf"
    bg mosquitto mosquitto -c "$T/mosquitto.conf"
    BROKER_PID=$LAST_PID
    wait_for 5 mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -t vigil/probe -m x ||
        fail "broker did not start"
}
