#!/usr/bin/env bash
# SIGHUP applies the file's stream changes live: a stream added to the file starts, one
# dropped stops, a changed fps applies without a reconnect; a stream added at run time
# is left alone. Every other key is applied or reported, never neither: the telemetry
# interval applies at once (telemetry arrives every second after the reload), while
# restart-only keys (inference threads, outbox limit, TLS files, capture settings,
# models) are listed in `config_needs_restart` and keep their running values. A renamed
# model is not loaded until a restart, so the streams that name it are held as they run
# (or not started) and reported with the model they wait for.
. "$(dirname "$0")/lib.sh"

EAGLE=$(clip eagle-640 eagle.jpg 640x360 15 1)
start_broker
HTTP_PORT=$(free_port)
touch "$T/ca.pem" # only compared on reload: a restart-only key is never loaded live
write() { # THREADS MQTT_EXTRA TELEMETRY_S STALL_S MODEL_ID STREAMS
    cat >"$T/vigil.yaml" <<YAML
instance_id: reload
mqtt: {host: 127.0.0.1, port: $MQTT_PORT$2}
http: {listen: 127.0.0.1:$HTTP_PORT}
inference: {threads: $1}
telemetry: {interval_s: $3}
capture: {allow_files: true, stall_timeout_s: $4} # the streams read clip files
models_dir: $SHARED/models
models:
  - {model_id: $5, config: yolo-fastest-1.1_body.cfg, weights: yolo-fastest-1.1_body.weights, labels: body.names}
streams:
$6
YAML
}
write 1 "" 30 5 body "  - {stream_id: a, url: $EAGLE, fps: 2, workers: [{type: motion_detector}]}
  - {stream_id: b, url: $EAGLE, fps: 2, workers: [{type: motion_detector}]}
  - {stream_id: p, url: $EAGLE, fps: 1, workers: [{type: person_detector, spec: {model_id: body}}]}"
start_vigild "$T/vigil.yaml"
curl -sf -X POST -d "{\"stream_id\":\"rt\",\"url\":\"$EAGLE\",\"fps\":1}" "$URL/api/v1/streams" >/dev/null ||
    fail "runtime add"
wait_for 10 sh -c "curl -s $URL/api/v1/streams/a | jq -e '.state == \"running\"'" || fail "a not running"
wait_for 10 grep -q '"event":"connected"' "$T/vigild.log" || fail "MQTT not connected"

bg tele stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -t "care/telemetry/reload"
sleep 0.5
write 2 ", outbox_limit: 50, tls: {ca_file: $T/ca.pem}" 1 7 body2 \
    "  - {stream_id: a, url: $EAGLE, fps: 4, workers: [{type: motion_detector}]}
  - {stream_id: c, url: $EAGLE, fps: 1, workers: [{type: motion_detector}]}
  - {stream_id: p, url: $EAGLE, fps: 2, workers: [{type: person_detector, spec: {model_id: body2}}]}
  - {stream_id: d, url: $EAGLE, fps: 1, workers: [{type: person_detector, spec: {model_id: body2}}]}"
kill -HUP "$VPID"
wait_for 5 grep -q '"event":"config_reloaded"' "$T/vigild.log" || fail "no reload"

# streams: applied live, except those waiting for the renamed model
curl -s "$URL/api/v1/streams" | jq -e '[.streams[].stream_id] | sort == ["a","c","p","rt"]' >/dev/null ||
    fail "streams after reload: $(curl -s "$URL/api/v1/streams" | jq -c '[.streams[].stream_id]')"
curl -s "$URL/api/v1/streams/a" | jq -e '.fps_target == 4 and .reconnects == 0' >/dev/null || fail "a not changed live"
curl -s "$URL/api/v1/streams/p" | jq -e '.fps_target == 1 and .workers[0].model_id == "body"' >/dev/null ||
    fail "p should run as before: $(curl -s "$URL/api/v1/streams/p" | jq -c '{fps_target, workers}')"
curl -s "$URL/api/v1/models" | jq -e '[.models[].model_id] | index("body") != null and index("body2") == null' \
    >/dev/null || fail "the running registry changed: $(curl -s "$URL/api/v1/models")"
wait_for 10 sh -c "curl -s $URL/api/v1/streams/c | jq -e '.state == \"running\"'" || fail "c not started"

# every restart-only change reported, the applied ones listed
line=$(grep '"event":"config_needs_restart"' "$T/vigild.log") || fail "nothing reported as needing a restart"
for k in inference.threads mqtt.outbox_limit mqtt.tls.ca_file capture.stall_timeout_s models streams.p streams.d; do
    jq -e --arg k "$k" '.keys | index($k) != null' <<<"$line" >/dev/null || fail "$k not reported: $line"
done
jq -e '.streams_waiting_for_model == {"p": "body2", "d": "body2"}' <<<"$line" >/dev/null ||
    fail "held streams: $line"
grep '"event":"config_reloaded"' "$T/vigild.log" | jq -e '.applied | index("telemetry.interval_s") != null' \
    >/dev/null || fail "telemetry.interval_s not listed as applied"

# the telemetry interval really changed (30 s before: none would arrive in 4 s)
sleep 4
n=$(wc -l <"$T/tele.log")
[ "$n" -ge 3 ] || fail "telemetry every 1 s expected after the reload, got $n messages in 4 s"
pass "reload: streams applied live (held ones reported), telemetry interval applied, restart-only keys reported"
