#!/usr/bin/env bash
# Model loads that finish after the world moved on (issue 13, defect 8), against the real
# daemon, camsim and mosquitto. Model loads run one at a time on "jobs:model": the load
# for r is queued behind loads for 24 other streams, which leaves time for "meanwhile":
# 1. change_model starts; a SIGHUP reload changes the stream's fps meanwhile; when the
#    load completes the stream runs the new model AND keeps the reloaded fps (the
#    configuration copied before the load must not undo the reload).
# 2. change_model starts; the stream is replaced (removed, re-added) meanwhile; the
#    command fails and the new stream keeps its own model.
# 3. a change_model whose model fails to load answers "failed" and never publishes a
#    retained instance status "error" (the instance keeps running the old model). A
#    guard: the outbox coalesces queued retained messages, so the old code's "error"
#    was mostly replaced by the next status before it reached the broker.
. "$(dirname "$0")/lib.sh"

command -v mosquitto_sub >/dev/null || fail "mosquitto_sub is missing"
CLIP=$(clip person-640 person.jpg 640x360 15 1)
start_camsim --count 1 --clip "$CLIP"
start_broker
CAM=rtsp://127.0.0.1:$RTSP_PORT
HTTP_PORT=$(free_port)
MODELS=$SHARED/models
echo "not a darknet model" >"$T/bad.weights"
N_BUSY=24
config() { # config FPS
    cat >"$T/vigil.yaml" <<YAML
instance_id: stale
mqtt: {host: 127.0.0.1, port: $MQTT_PORT}
http: {listen: 127.0.0.1:$HTTP_PORT}
models_dir: $MODELS
models:
  - {model_id: body, config: yolo-fastest-1.1_body.cfg, weights: yolo-fastest-1.1_body.weights}
  - {model_id: slow, config: yolo-fastest-1.1_body.cfg, weights: yolo-fastest-1.1_body.weights}
  - {model_id: bad, config: yolo-fastest-1.1_body.cfg, weights: $T/bad.weights}
streams:
  - stream_id: r
    rtsp_url: $CAM/cam0
    fps: $1
    workers: [{type: person_detector, spec: {model_id: body}}]
YAML
    for i in $(seq $N_BUSY); do # cameras that do not answer: they only queue model loads
        echo "  - {stream_id: d$i, rtsp_url: \"rtsp://127.0.0.1:1/d$i\", fps: 1, workers: [{type: person_detector, spec: {model_id: body}}]}" >>"$T/vigil.yaml"
    done
}
config 2
bg status stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t care/status/stale
start_vigild "$T/vigil.yaml"
J=(-H "Content-Type: application/json")
wait_for 20 sh -c "curl -sf $URL/api/v1/streams/r | jq -e '.state == \"running\"'" || fail "r not running"

# change_model r -> slow in the background; its reply waits for the load
change_model() { # change_model MODEL OUT [STREAM]
    curl -s -o "$2" -w '%{http_code}' -X POST "${J[@]}" --max-time 60 \
        -d "{\"command\": \"change_model\", \"stream_id\": \"${3:-r}\", \"params\": {\"model_id\": \"$1\"}}" \
        "$URL/api/v1/commands" >"$2.code"
}
# busy_loads: a model load for each d<i>, queued (one curl, one connection each)
busy_loads() {
    BUSY=()
    for i in $(seq $N_BUSY); do
        change_model slow "$T/busy$i" "d$i" &
        BUSY+=("$!")
    done
    sleep 0.2
}
wait_busy() { for p in "${BUSY[@]}"; do wait "$p" || true; done; }

# ---- 1. a reload during the load is kept ----------------------------------------------------
busy_loads
change_model slow "$T/c1" &
CURL=$!
sleep 0.1
config 3
kill -HUP "$VPID"
wait_for 10 grep -q '"config_reloaded"' "$T/vigild.log" || fail "no reload"
[ ! -s "$T/c1.code" ] || fail "the load finished before the reload; make the queue longer"
expect_code 200 GET /api/v1/streams/r
jq_body '.fps_target == 3'
wait "$CURL" || true
wait_busy
[ "$(cat "$T/c1.code")" = 200 ] || fail "change_model: $(cat "$T/c1.code") $(cat "$T/c1")"
expect_code 200 GET /api/v1/streams/r
jq_body '.workers[0].model_id == "slow"'
jq_body '.fps_target == 3' # the old code re-applied the copy from before the load: fps 2
pass "a reload during a model load is kept, the new model applied on top"

# ---- 2. the stream is replaced during the load ------------------------------------------------
busy_loads
change_model slow "$T/c2" &
CURL=$!
sleep 0.1
config 4 # reload with another camera URL: r is replaced by a new stream of the same id
sed -i "s|$CAM/cam0|$CAM/cam0?replaced=1|" "$T/vigil.yaml"
kill -HUP "$VPID"
wait_for 10 sh -c "[ \$(grep -c '\"config_reloaded\"' $T/vigild.log) -ge 2 ]" || fail "no second reload"
[ ! -s "$T/c2.code" ] || fail "the load finished before the reload; make the queue longer"
wait "$CURL" || true
wait_busy
[ "$(cat "$T/c2.code")" = 422 ] || fail "change_model on a replaced stream: $(cat "$T/c2.code") $(cat "$T/c2")"
jq -e '.error.code == "unknown_stream"' "$T/c2" >/dev/null || fail "error: $(cat "$T/c2")"
expect_code 200 GET /api/v1/streams/r
jq_body '.workers[0].model_id == "body" and .fps_target == 4'
pass "a model load for a replaced stream is dropped"

# ---- 3. a failed load publishes no "error" status -----------------------------------------------
change_model bad "$T/c3"
[ "$(cat "$T/c3.code")" = 422 ] || fail "change_model bad: $(cat "$T/c3.code") $(cat "$T/c3")"
jq -e '.status == "failed" and .error.code == "model_load_failed"' "$T/c3" >/dev/null ||
    fail "ack: $(cat "$T/c3")"
sleep 1
grep -q '"status"' "$T/status.log" || fail "no status seen" # degraded: the d<i> are down
if jq -e 'select(.status == "error")' "$T/status.log" >/dev/null 2>&1; then
    fail "a failed change_model published status error: $(grep -c . "$T/status.log") statuses"
fi
[ "$(mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -t care/status/stale -C 1 -W 2 | jq -r .status)" != error ] ||
    fail "retained status is error"
expect_code 200 GET /api/v1/streams/r
jq_body '.workers[0].model_id == "body"'
pass "a failed model load answers failed, keeps the old model, publishes no error status"
