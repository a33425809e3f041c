#!/usr/bin/env bash
# Activity-adaptive decoding (capture.still_interval_s, decode_policy.c) on camsim
# cameras with sensor noise and a 2 s GOP: a still room decodes one keyframe per
# still_interval_s while its results keep the stream's rate; a room that starts moving
# switches to full sampling within still_interval_s + 1 GOP of the change, early from a
# P-frame's size when the encoder lets sizes grow, at the next keyframe on a
# constant-bitrate camera whose P-frames never grow.
. "$(dirname "$0")/lib.sh"

# 20 s loops (the first GOP after a loop seam has large P-frames: one early trigger per
# loop): still for 10 s, moving for 6 s from clip time 10 s, still again.
MOVE=$(CLIP_SECONDS=20 CLIP_PAN_START=10 CLIP_PAN_SECONDS=6 CLIP_NOISE=2 \
    clip adaptive-move-n2 person.jpg 640x360 15 2)
CBR=$(CLIP_SECONDS=20 CLIP_PAN_START=10 CLIP_PAN_SECONDS=6 CLIP_NOISE=2 CLIP_CBR_KBPS=1500 \
    clip adaptive-cbr-n2 person.jpg 640x360 15 2)
STILL=$(CLIP_SECONDS=20 CLIP_PAN_SECONDS=0 CLIP_NOISE=2 clip adaptive-still20-n2 person.jpg 640x360 15 1)
CHANGE_AT=10 # clip time of the change
BOUND=4      # still_interval_s (2) + one GOP (2)
start_camsim --camera move="$MOVE" --camera cbr="$CBR" --camera still="$STILL"
HTTP_PORT=$(free_port)
W="[{type: person_detector, spec: {model_id: body}}]"
cat >"$T/vigil.yaml" <<YAML
instance_id: adaptive
log: {level: debug}
mqtt: {enabled: false}
http: {listen: 127.0.0.1:$HTTP_PORT}
models_dir: $SHARED/models
models:
  - {model_id: body, config: yolo-fastest-1.1_body.cfg, weights: yolo-fastest-1.1_body.weights, labels: body.names}
inference: {threads: 1}
capture: {still_interval_s: 2}
streams:
  - {stream_id: move, url: "rtsp://127.0.0.1:$RTSP_PORT/move", fps: 2, workers: $W}
  - {stream_id: cbr, url: "rtsp://127.0.0.1:$RTSP_PORT/cbr", fps: 2, workers: $W}
  - {stream_id: still, url: "rtsp://127.0.0.1:$RTSP_PORT/still", fps: 1.5, workers: $W}
YAML
start_vigild "$T/vigil.yaml"

# seconds (float) of a log line's ts
logts() { jq -r '.ts | sub("Z$"; "") | split(".") | (.[0] + "Z" | fromdate) + ("0." + (.[1] // "0") | tonumber)'; }
event() { grep "\"event\":\"$1\"" "$T/vigild.log" | jq -c "select(.stream_id == \"$2\")" || true; }

wait_for 20 sh -c "grep -q '\"event\":\"capture_state\".*\"state\":\"running\"' '$T/vigild.log'" ||
    fail "no stream ran"
sleep 8 # still rooms settle: active for still_after_s (3 s), then still
d0=$(metric vigil_stream_frames_decoded_total 'stream_id="still"')
s0=$(metric vigil_stream_frames_sampled_total 'stream_id="still"')
sleep 10
d1=$(metric vigil_stream_frames_decoded_total 'stream_id="still"')
s1=$(metric vigil_stream_frames_sampled_total 'stream_id="still"')
[ "$(metric vigil_stream_still 'stream_id="still"')" = 1 ] || fail "still: not still"
dec=$((${d1%.*} - ${d0%.*}))
smp=$((${s1%.*} - ${s0%.*}))
[ "$dec" -ge 4 ] && [ "$dec" -le 6 ] || fail "still: decoded $dec pictures in 10 s (1 s GOP, want ~5)"
[ "$smp" -ge 13 ] && [ "$smp" -le 17 ] || fail "still: $smp result slots in 10 s at 1.5 fps"
# still keyframes decoded between two sampling slots are not posted: no seq gap, so
# nothing counts as dropped (1.5 fps does not line up with the keyframes)
drop=$(metric vigil_worker_dropped_total 'stream_id="still",worker="person_detector"')
[ "${drop:-0}" = 0 ] || fail "still: $drop samples counted as dropped"
pass "still room: $dec pictures decoded and $smp sampled in 10 s (15 fps camera, 1 s GOP)"

sleep 16 # past the second change (clip time 30 s)
for cam in move cbr; do
    # clip time 0: camsim starts a camera's clip at its first DESCRIBE, right after the
    # capture starts connecting (so the delays below can only be overestimated)
    t0=$(event capture_state "$cam" | head -1 | logts)
    [ -n "$t0" ] || fail "$cam: never connected"
    event capture_activity "$cam" >"$T/$cam.act"
    # each loop: the first wake-up after the change, none in the still part before it
    for loop in 0 1; do
        change=$(echo "$t0 + 20 * $loop + $CHANGE_AT" | bc -l)
        wake=$(jq -c 'select(.view == "active")' "$T/$cam.act" | while read -r l; do
            ts=$(echo "$l" | logts)
            if [ "$(echo "$ts > $change - 5 && $ts < $change + 8" | bc -l)" = 1 ]; then
                echo "$ts $(echo "$l" | jq -r .trigger)"; break; fi; done)
        [ -n "$wake" ] || fail "$cam loop $loop: no wake-up near the change ($(cat "$T/$cam.act"))"
        read -r ts trigger <<<"$wake"
        delay=$(echo "$ts - $change" | bc -l)
        [ "$(echo "$delay > -0.5 && $delay <= $BOUND + 0.5" | bc -l)" = 1 ] ||
            fail "$cam loop $loop: woke $delay s after the change (bound $BOUND s)"
        printf '%s loop %d: active %.2f s after the change (trigger %s)\n' "$cam" "$loop" "$delay" "$trigger"
        [ "$cam" = cbr ] && [ "$trigger" != view ] && fail "cbr: woke by $trigger, P-frames do not grow"
        [ "$cam" = move ] && [ "$trigger" != size ] && fail "move: growing P-frames did not trigger"
    done
    n=$(metric vigil_stream_change_decode_delay_seconds_count "stream_id=\"$cam\"")
    [ "${n%.*}" -ge 2 ] || fail "$cam: $n change-to-decode delays measured"
    fast=$(metric vigil_stream_change_decode_delay_seconds_bucket "stream_id=\"$cam\",le=\"5\"")
    [ "$fast" = "$n" ] || fail "$cam: change-to-decode delays over 5 s ($fast of $n within)"
done
pass "moving rooms switched to full sampling within still_interval_s + 1 GOP"

# while moving, every sampling slot is a decoded picture; results kept the rate
grep '"event":"inference"' "$T/vigild.log" | jq -c 'select(.stream_id == "move") | .result' >"$T/move.jsonl"
n=$(wc -l <"$T/move.jsonl")
[ "$n" -ge 60 ] || fail "move: $n results in ~40 s at 2 fps"
ran=$(jq -s '[.[] | select(.detector_ran)] | length' "$T/move.jsonl")
[ "$ran" -ge 6 ] && [ "$ran" -lt "$n" ] || fail "move: the detector ran on $ran of $n frames"
curl -s "$URL/metrics" >"$T/metrics.txt"
grep -q '^vigil_stream_cpu_seconds_total{stream_id="move",stage="capture"}' "$T/metrics.txt" ||
    fail "no capture CPU series"
grep -q '^vigil_stream_activity_wakeups_total{stream_id="move",trigger="size"} [1-9]' "$T/metrics.txt" ||
    fail "no size wake-up counted"
command -v promtool >/dev/null || fail "promtool missing"
promtool check metrics <"$T/metrics.txt" || fail "promtool check metrics"
term_within "$VPID" 5000
pass "results at the stream's rate ($n, detector on $ran); metrics clean"
