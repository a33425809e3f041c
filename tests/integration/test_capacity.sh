#!/usr/bin/env bash
# GET /api/v1/capacity: cores, cores in use, headroom, each stream's cost at its fps by
# stage (thread CPU clocks: capture thread, each worker's runs on the executors), how
# many more average streams fit and at what fps a stream could run; the numbers agree
# with vigil_stream_cpu_seconds_total on /metrics and with each other; telemetry
# carries the same object; promtool stays clean.
. "$(dirname "$0")/lib.sh"

ROOM=$(CLIP_SECONDS=8 CLIP_PAN_SECONDS=4 CLIP_NOISE=4 clip capacity-room-n4 person.jpg 640x360 15 1)
start_camsim --count 2 --clip "$ROOM"
start_broker
HTTP_PORT=$(free_port)
cat >"$T/vigil.yaml" <<YAML
instance_id: captest
mqtt: {host: 127.0.0.1, port: $MQTT_PORT}
telemetry: {interval_s: 12}
http: {listen: 127.0.0.1:$HTTP_PORT}
models_dir: $SHARED/models
models:
  - {model_id: body, config: yolo-fastest-1.1_body.cfg, weights: yolo-fastest-1.1_body.weights, labels: body.names}
inference: {threads: 1}
streams:
  - {stream_id: a, url: "rtsp://127.0.0.1:$RTSP_PORT/cam0", fps: 2, workers: [{type: person_detector, spec: {model_id: body}}, {type: motion_detector}]}
  - {stream_id: b, url: "rtsp://127.0.0.1:$RTSP_PORT/cam1", fps: 1, workers: [{type: motion_detector}]}
YAML
bg sub mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -t 'care/telemetry/captest' -C 1
SUB=$LAST_PID
start_vigild "$T/vigil.yaml"

# before two samples, costs are unknown (null), the shape is already there
expect_code 200 GET /api/v1/capacity
jq_body '(.cores | type) == "number" and .cores >= 1 and (.streams | length) == 2'
sleep 4
m1=$(curl -s "$URL/metrics"); t1=$(date +%s.%N)
sleep 12
expect_code 200 GET /api/v1/capacity
cp "$T/body" "$T/capacity.json"
m2=$(curl -s "$URL/metrics"); t2=$(date +%s.%N)
jq . "$T/capacity.json" >&2

jq -e '
  (.cores | type) == "number" and .cores >= 1 and .window_s >= 5 and
  .cores_in_use.vigild > 0 and .cores_in_use.machine >= .cores_in_use.vigild * 0.9 and
  (.headroom_cores | type) == "number" and
  (.headroom_cores - (.cores * (1 - .reserve_fraction) - .cores_in_use.machine) | fabs) < 0.001 and
  .average_stream_cores > 0 and
  .more_streams == ([(.headroom_cores / .average_stream_cores | floor), 0] | max) and
  ([.streams[].cost_cores] | add) <= .cores_in_use.vigild * 1.1 + 0.01 and
  all(.streams[]; .cost_cores > 0 and .max_fps >= .fps_target and .max_fps <= 30 and
      (.cpu_seconds_total | has("capture"))) and
  (.streams[] | select(.stream_id == "a") | .cpu_seconds_total |
      has("worker:person_detector") and has("worker:motion_detector") and
      .["worker:person_detector"] > 0) and
  (.streams | length) == 2' "$T/capacity.json" >/dev/null ||
    fail "capacity: inconsistent $(cat "$T/capacity.json")"
avg=$(jq '[.streams[].cost_cores] | add / length' "$T/capacity.json")
jq -e --argjson a "$avg" '(.average_stream_cores - $a | fabs) < 1e-4' "$T/capacity.json" >/dev/null ||
    fail "average_stream_cores is not the mean of the streams' costs"
pass "capacity shape and arithmetic"

# against /metrics: the totals it reports were current, and each stream's cost matches
# the rate of its vigil_stream_cpu_seconds_total over a similar window
total() { awk -v s="vigil_stream_cpu_seconds_total{stream_id=\"$2\"" 'index($0, s) == 1 { t += $2 } END { printf "%.6f", t }' <<<"$1"; }
for s in a b; do
    rep=$(jq --arg s "$s" '.streams[] | select(.stream_id == $s) | [.cpu_seconds_total[]] | add' "$T/capacity.json")
    now=$(total "$m2" "$s")
    awk -v r="$rep" -v n="$now" 'BEGIN { exit !(r <= n + 1e-6 && n - r < 0.5) }' ||
        fail "$s: capacity says $rep CPU s, /metrics right after $now"
    rate=$(awk -v a="$(total "$m1" "$s")" -v b="$now" -v t1="$t1" -v t2="$t2" 'BEGIN { printf "%.5f", (b - a) / (t2 - t1) }')
    cost=$(jq --arg s "$s" '.streams[] | select(.stream_id == $s) | .cost_cores' "$T/capacity.json")
    awk -v r="$rate" -v c="$cost" 'BEGIN { exit !(c <= r * 1.5 + 0.005 && c >= r / 1.5 - 0.005) }' ||
        fail "$s: cost_cores $cost, /metrics rate $rate"
    echo "# $s: cost $cost cores, /metrics rate $rate"
done
pass "capacity agrees with vigil_stream_cpu_seconds_total"

command -v promtool >/dev/null || fail "promtool missing"
promtool check metrics <<<"$m2" || fail "promtool check metrics"
grep -q '^vigil_stream_cpu_seconds_total{stream_id="b",stage="worker:motion_detector"}' <<<"$m2" ||
    fail "no worker stage series"
wait_for 20 sh -c "! kill -0 $SUB" || fail "no telemetry"
tail -1 "$T/sub.log" | jq -e '.capacity.cores >= 1 and (.capacity.streams | length) == 2 and
    all(.streams[]; .capture | has("change_delay_p95_ms") and has("still") and .cpu_seconds > 0)' \
    >/dev/null || fail "telemetry without capacity: $(tail -1 "$T/sub.log")"
term_within "$VPID" 5000
pass "telemetry carries capacity and per-stream capture figures; promtool clean"
