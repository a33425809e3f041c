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
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
        echo "--- test failed (rc=$rc); logs in $T:" >&2
        for f in "$T"/*.log; do [ -f "$f" ] && { echo "== $f" >&2; tail -n 40 "$f" >&2; }; done
    else
        rm -rf "$T"
    fi
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok - $*"; }

# require WHAT CMD...: the test needs a tool; CMD checks for it. Missing, the test fails
# (CI must not pass by skipping); with VIGIL_ALLOW_SKIP=1 (a developer's machine) it exits
# 77, which ctest reports as skipped.
require() {
    local what=$1; shift
    "$@" >/dev/null 2>&1 && return 0
    if [ "${VIGIL_ALLOW_SKIP:-0}" = 1 ]; then
        echo "SKIP: missing $what (VIGIL_ALLOW_SKIP=1)"
        exit 77
    fi
    fail "missing $what: scripts/install-deps.sh installs it (VIGIL_ALLOW_SKIP=1 skips instead)"
}

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

# clip NAME IMAGE [WxH] [FPS] [GOP_S]: a test clip from ../shared/fixtures, cached in the
# build folder across tests (make-clip.sh is idempotent); prints its path.
clip() {
    local name=$1 image=$2; shift 2
    mkdir -p "$BUILD/test-clips"
    local out="$BUILD/test-clips/$name.mp4"
    CLIP_SECONDS=${CLIP_SECONDS:-6} "$SRC/scripts/make-clip.sh" "$SHARED/fixtures/$image" "$out" "$@" \
        >/dev/null 2>&1 || fail "make-clip $name"
    echo "$out"
}

# clip_sizes NAME CLIP...: the clips (from `clip`, any sizes) one after another in one
# MPEG-TS file whose picture size changes at each join (H.264 Annex B, SPS/PPS in band,
# as a camera that switches resolution sends them); vigil-camsim serves it. Prints its path.
clip_sizes() {
    local name=$1 out="$BUILD/test-clips/$1.ts" i=0; shift
    if [ ! -f "$out" ]; then
        : >"$T/$name.h264"
        for c in "$@"; do
            ffmpeg -v error -nostdin -y -i "$c" -c copy -bsf:v h264_mp4toannexb -f h264 "$T/part$i.h264" ||
                fail "annexb $c"
            cat "$T/part$i.h264" >>"$T/$name.h264"
            i=$((i + 1))
        done
        ffmpeg -v error -nostdin -y -r 15 -i "$T/$name.h264" -c copy "$out.tmp.ts" || fail "mux $name"
        mv -f "$out.tmp.ts" "$out"
    fi
    echo "$out"
}

# start_vigild CONFIG [NAME]: runs the daemon (log $T/NAME.log, default vigild.log), waits
# for /healthz on $HTTP_PORT; sets VPID, URL.
start_vigild() {
    bg "${2:-vigild}" "$BUILD/vigild" -c "$1"
    VPID=$LAST_PID
    URL=http://127.0.0.1:$HTTP_PORT
    wait_for 15 curl -sf "$URL/healthz" || fail "vigild did not start"
}

# http_code METHOD PATH [curl args...]: prints the status code; the body goes to $T/body.
http_code() {
    local method=$1 path=$2; shift 2
    curl -s -o "$T/body" -w '%{http_code}' -X "$method" "$@" "$URL$path"
}

# expect_code WANT METHOD PATH [curl args...]
expect_code() {
    local want=$1; shift
    local got
    got=$(http_code "$@")
    [ "$got" = "$want" ] || fail "$* -> $got, want $want: $(head -c 300 "$T/body")"
}

# jq_body FILTER: asserts a jq expression holds on the last body.
jq_body() {
    jq -e "$1" "$T/body" >/dev/null || fail "body fails '$1': $(head -c 400 "$T/body")"
}

PY=/usr/bin/python3

# metric NAME LABELS: the value of one series from /metrics at $URL ("" if absent), e.g.
# metric vigil_stream_up 'stream_id="s1"'
metric() {
    local text
    text=$(curl -s "$URL/metrics")
    awk -v n="$1{$2}" 'index($0, n) == 1 { print $2; exit }' <<<"$text"
}

# start_camsim ARGS...: runs vigil-camsim with a control port; sets RTSP_PORT, CTRL_PORT.
start_camsim() {
    RTSP_PORT=$(free_port)
    CTRL_PORT=$(free_port)
    bg camsim "$BUILD/vigil-camsim" --port "$RTSP_PORT" --control "$CTRL_PORT" "$@"
    wait_for 15 grep -q '^camsim ready' "$T/camsim.log" || fail "camsim did not start"
}

# camsim_cmd LINE: one control command; fails unless the answer starts with "ok".
camsim_cmd() {
    local answer
    exec 9<>"/dev/tcp/127.0.0.1/$CTRL_PORT"
    echo "$1" >&9
    read -r answer <&9
    exec 9>&-
    case "$answer" in ok*) ;; *) fail "camsim '$1': $answer" ;; esac
}

# term_within PID MS: SIGTERM, then requires exit 0 within MS milliseconds; sets STOP_MS.
term_within() {
    local start rc=0
    start=$(date +%s%N)
    kill -TERM "$1"
    wait "$1" || rc=$?
    STOP_MS=$(( ($(date +%s%N) - start) / 1000000 ))
    [ "$rc" = 0 ] || fail "SIGTERM exit code $rc"
    [ "$STOP_MS" -lt "$2" ] || fail "SIGTERM took $STOP_MS ms"
}
