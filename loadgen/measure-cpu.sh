#!/bin/bash
# measure-cpu.sh — CPU cost of vigil-camsim serving N cameras, each with one RTSP/TCP
# reader (ffmpeg -c copy, no decoding), measured from /proc over a steady window.
# Usage: loadgen/measure-cpu.sh BUILD_DIR CLIP N [SECONDS]
# Prints camsim's CPU% (of one core), its RSS, and the frames the readers received.
set -euo pipefail
BUILD=$1 CLIP=$2 N=$3 SECS=${4:-20}
T=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BUILD/vigil-camsim" --port "$PORT" --count "$N" --clip "$CLIP" >"$T/camsim.out" 2>"$T/camsim.err" &
SIM=$!
PIDS+=("$SIM")
for _ in $(seq 50); do grep -q "camsim ready" "$T/camsim.out" && break; sleep 0.1; done
for i in $(seq 0 $((N - 1))); do
    ffmpeg -nostdin -v error -rtsp_transport tcp -i "rtsp://127.0.0.1:$PORT/cam$i" -c copy \
        -f framemd5 -flush_packets 1 "$T/r$i.md5" 2>"$T/r$i.err" &
    PIDS+=("$!")
done
sleep 5 # connect and settle
ticks() { awk '{print $14 + $15}' "/proc/$SIM/stat"; }
frames() { cat "$T"/r*.md5 2>/dev/null | grep -vc '^#' || true; }
t0=$(ticks); f0=$(frames); s0=$(date +%s%N)
sleep "$SECS"
t1=$(ticks); f1=$(frames); s1=$(date +%s%N)
hz=$(getconf CLK_TCK)
awk -v t=$((t1 - t0)) -v hz="$hz" -v ns=$((s1 - s0)) -v f=$((f1 - f0)) -v n="$N" \
    -v rss="$(awk '/VmRSS/{print $2}' "/proc/$SIM/status")" 'BEGIN {
    s = ns / 1e9
    printf "cameras=%d cpu=%.1f%% (of one core) rss=%.0fMiB frames/s total=%.0f per camera=%.1f\n",
        n, 100 * t / hz / s, rss / 1024, f / s, f / s / n }'
