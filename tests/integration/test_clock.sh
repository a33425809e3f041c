#!/usr/bin/env bash
# Durations come from the monotonic clock, timestamps from the wall clock: vigild runs
# with the wall clock stepped (an LD_PRELOAD shim, vigil-clockstep.so, like an NTP step)
# an hour forward and then an hour back. Timestamps follow the step (results'
# captured_at: proof the shim is active); uptime_s, started_at and every result's
# latency_ms do not jump.
. "$(dirname "$0")/lib.sh"
SHIM=$BUILD/vigil-clockstep.so
[ -f "$SHIM" ] || fail "$SHIM not built"
PERSON=$(clip person-640 person.jpg 640x360 15 1)
start_camsim --camera room1="$PERSON"
HTTP_PORT=$(free_port)
cat >"$T/vigil.yaml" <<YAML
instance_id: clocktest
mqtt: {enabled: false}
http: {listen: 127.0.0.1:$HTTP_PORT}
inference: {threads: 1}
streams:
  - {stream_id: room1, url: "rtsp://127.0.0.1:$RTSP_PORT/room1", fps: 5, workers: [{type: motion_detector}]}
YAML
echo 0 >"$T/step"
# ASan wants its runtime first in the library list; the shim is preloaded before it
VIGIL_CLOCKSTEP_FILE=$T/step LD_PRELOAD=$SHIM ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" \
    start_vigild "$T/vigil.yaml"
info() { curl -sf "$URL/api/v1/info"; }
latest() { curl -sf "$URL/api/v1/streams/room1/detections" | jq -c '.results[0]'; }
wait_for 20 sh -c "curl -sf $URL/api/v1/streams/room1/detections >/dev/null" || fail "no result"
started=$(info | jq -r .started_at)
seq_after() { # STEP_S: steps the clock, waits for 5 newer results, checks them
    local seq0 seq
    seq0=$(latest | jq .seq)
    echo "$1" >"$T/step"
    local real
    real=$(date +%s)
    wait_for 20 sh -c "[ \$(curl -sf $URL/api/v1/streams/room1/detections | jq '.results[0].seq') -gt $((seq0 + 5)) ]" ||
        fail "step $1: results stopped"
    local r i
    r=$(latest)
    # the timestamp follows the stepped wall clock (else the shim is not in effect)
    local at
    at=$(date -d "$(jq -r .captured_at <<<"$r")" +%s)
    [ $((at - real - $1)) -lt 60 ] && [ $((at - real - $1)) -gt -60 ] ||
        fail "step $1: captured_at $(jq -r .captured_at <<<"$r") does not follow the stepped clock"
    jq -e '.latency_ms >= 0 and .latency_ms < 10000' <<<"$r" >/dev/null ||
        fail "step $1: latency_ms $(jq .latency_ms <<<"$r")"
    i=$(info)
    jq -e --arg s "$started" '.uptime_s >= 0 and .uptime_s < 120 and .started_at == $s' <<<"$i" >/dev/null ||
        fail "step $1: info $i (started_at was $started)"
    echo "# wall clock stepped to $1 s: uptime_s $(jq .uptime_s <<<"$i"), latency_ms $(jq .latency_ms <<<"$r")"
}
seq_after 3600
seq_after -3600
pass "uptime_s and latency_ms ignore wall clock steps of an hour either way; timestamps follow them"
