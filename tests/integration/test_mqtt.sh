#!/usr/bin/env bash
# MQTT control plane against a real broker: every command's success path and each
# rejection (acks and resulting state), inference messages, retained status, the
# care-home scenario across two instances, a broker outage (reconnect, resubscribe,
# queued QoS 1 messages in order), the last will on kill -9, the state file, and the
# retained "stopped" on SIGTERM.
. "$(dirname "$0")/lib.sh"

PERSON=$(clip person-640 person.jpg 640x360 15 1)
EAGLE=$(clip eagle-640 eagle.jpg 640x360 15 1)
start_broker
P=care

write_cfg() { # NAME HTTP_PORT STREAMS_YAML
    cat >"$T/$1.yaml" <<YAML
instance_id: $1
mqtt: {host: 127.0.0.1, port: $MQTT_PORT, qos: 1}
http: {listen: 127.0.0.1:$2}
telemetry: {interval_s: 2}
state_file: $T/$1.state.json
models_dir: $SHARED/models
models:
  - {model_id: body, config: yolo-fastest-1.1_body.cfg, weights: yolo-fastest-1.1_body.weights, labels: body.names}
  - {model_id: xl, config: yolo-fastest-1.1-xl.cfg, weights: yolo-fastest-1.1-xl.weights, labels: coco.names}
capture: {allow_files: true, reconnect_max_s: 2}
streams:
$3
YAML
}
HTTP_A=$(free_port)
HTTP_B=$(free_port)
write_cfg cell-a "$HTTP_A" "  - {stream_id: room1, url: $PERSON, fps: 2, workers: [{type: person_detector, spec: {model_id: body}}]}
  - {stream_id: room2, url: $EAGLE, fps: 2, workers: [{type: person_detector, spec: {model_id: body}}, {type: motion_detector}]}"
write_cfg cell-b "$HTTP_B" "  []"

# a subscriber that records everything under the prefix: "topic payload" per line
bg sub stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -v -t "$P/#"
sleep 0.3
HTTP_PORT=$HTTP_A start_vigild "$T/cell-a.yaml"
A_PID=$VPID
A_URL=$URL

pubc() { mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t "$P/control/$1" -m "$2"; }
acks() { grep "^$P/control/$1/ack " "$T/sub.log" | cut -d' ' -f2-; }
# final_ack INSTANCE ID: waits for the final ack of a command and prints it
final_ack() {
    wait_for 15 sh -c "grep '^$P/control/$1/ack ' $T/sub.log | cut -d' ' -f2- | jq -s -e 'any(.command_id == \"$2\" and .status != \"received\")'" ||
        fail "no final ack for $2"
    acks "$1" | jq -c "select(.command_id == \"$2\" and .status != \"received\")" | tail -1
}
# expect INSTANCE ID STATUS [CODE [FIELD]]
expect() {
    local a
    a=$(final_ack "$1" "$2")
    echo "$a" | jq -e ".status == \"$3\"" >/dev/null || fail "$2: $a"
    [ -z "${4:-}" ] || echo "$a" | jq -e ".error.code == \"$4\"" >/dev/null || fail "$2 code: $a"
    [ -z "${5:-}" ] || echo "$a" | jq -e ".error.field == \"$5\"" >/dev/null || fail "$2 field: $a"
    [ "$(acks "$1" | jq -c "select(.command_id == \"$2\" and .status == \"received\")" | wc -l)" = 1 ] ||
        fail "$2: not exactly one received ack"
}
stream() { curl -s "$A_URL/api/v1/streams/$1"; }
retained() { mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -t "$1" -C 1 -W 2 2>/dev/null || true; }

wait_for 10 sh -c "grep -q '^$P/status/cell-a {.*\"status\":\"running\"' $T/sub.log" || fail "no running status"

# inference messages: a person in room1 with well-formed boxes, nobody in room2
wait_for 15 sh -c "grep '^$P/inferences/room1 ' $T/sub.log | cut -d' ' -f2- | jq -s -e 'any(.person_count >= 1)'" ||
    fail "no person in room1"
grep "^$P/inferences/room1 " "$T/sub.log" | cut -d' ' -f2- | jq -s -e 'all(.[]; .instance_id == "cell-a" and
    .worker == "person_detector" and .model_id == "body" and (.seq | type) == "number" and
    (.latency_ms >= 0) and all(.detections[]; .label == "person" and .confidence >= 0.5 and
    .box.x >= 0 and .box.y >= 0 and .box.x + .box.w <= 1.0001 and .box.y + .box.h <= 1.0001))' >/dev/null ||
    fail "malformed room1 inference"
wait_for 10 sh -c "grep '^$P/inferences/room2 ' $T/sub.log | grep -q motion_score" || fail "no motion results"
grep "^$P/inferences/room2 " "$T/sub.log" | cut -d' ' -f2- | jq -s -e '[.[] | select(.worker == "person_detector")] |
    length > 0 and all(.[]; .person_count == 0)' >/dev/null || fail "a person in room2"

# every command's success path, with the state it leaves
pubc cell-a/room1 '{"command":"set_fps","command_id":"c1","params":{"max_fps":4}}'
expect cell-a c1 completed
stream room1 | jq -e '.fps_target == 4' >/dev/null || fail "set_fps not applied"
wait_for 5 sh -c "curl -s $A_URL/api/v1/streams/room1 | jq -e '.fps_measured > 3'" || fail "measured fps did not follow"
retained "$P/status/cell-a/room1" | jq -e '.fps_target == 4 and .state == "running"' >/dev/null || fail "retained stream status"
pubc cell-a/room1 '{"command":"set_confidence","command_id":"c2","params":{"confidence_threshold":0.8}}'
expect cell-a c2 completed
stream room1 | jq -e '.workers[0].confidence_threshold == 0.8' >/dev/null || fail "set_confidence"
pubc cell-a/room1 '{"command":"set_roi","command_id":"c3","params":{"x":10,"y":20,"w":300,"h":200}}'
expect cell-a c3 completed
stream room1 | jq -e '.workers[0].roi == {"x":10,"y":20,"w":300,"h":200}' >/dev/null || fail "set_roi"
pubc cell-a/room1 '{"command":"reconfigure","command_id":"c4","params":{"fps":2,"confidence_threshold":0.5,"roi":{"x":0,"y":0,"w":640,"h":360}}}'
expect cell-a c4 completed
stream room1 | jq -e '.fps_target == 2 and .workers[0].confidence_threshold == 0.5' >/dev/null || fail "reconfigure"
pubc cell-a/room1 '{"command":"change_model","command_id":"c5","params":{"model_id":"xl"}}'
expect cell-a c5 completed
wait_for 10 sh -c "grep '^$P/inferences/room1 ' $T/sub.log | tail -1 | grep -q '\"model_id\":\"xl\"'" || fail "results not from xl"
pubc cell-a/room1 '{"command":"restart","command_id":"c6"}'
expect cell-a c6 completed
pubc cell-a '{"command":"restart","command_id":"c7"}'
expect cell-a c7 completed
pubc cell-a "{\"command\":\"add_stream\",\"command_id\":\"c8\",\"params\":{\"stream_id\":\"room3\",\"url\":\"$EAGLE\",\"fps\":1}}"
expect cell-a c8 completed
wait_for 5 sh -c "mosquitto_sub -h 127.0.0.1 -p $MQTT_PORT -t $P/status/cell-a/room3 -C 1 -W 2 | jq -e '.stream_id == \"room3\"'" ||
    fail "no retained status for room3"
pubc cell-a '{"command":"remove_stream","command_id":"c9","params":{"stream_id":"room3"}}'
expect cell-a c9 completed
[ -z "$(retained "$P/status/cell-a/room3")" ] || fail "room3 status not cleared"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$A_URL/api/v1/streams/room3")" = 404 ] || fail "room3 still there"
grep -q '"event":"command","command_id":"c9","command":"remove_stream".*"source":"mqtt","who":"care/control/cell-a"' "$T/vigild.log" ||
    fail "no audit line for c9"

# each rejection
pubc cell-a '{"command":"fly","command_id":"r1"}'
expect cell-a r1 rejected unknown_command command
pubc cell-a/room1 '{"command":"set_fps","command_id":"r2","params":{}}'
expect cell-a r2 rejected missing_param max_fps
pubc cell-a/room1 '{"command":"set_fps","command_id":"r3","params":{"max_fps":99}}'
expect cell-a r3 rejected invalid_param max_fps
pubc cell-a/room1 '{"command":"set_fps","command_id":"r4","params":{"max_fps":"fast"}}'
expect cell-a r4 rejected invalid_param max_fps
pubc cell-a/nope '{"command":"set_fps","command_id":"r5","params":{"max_fps":2}}'
expect cell-a r5 rejected unknown_stream stream_id
pubc cell-a "{\"command\":\"add_stream\",\"command_id\":\"r6\",\"params\":{\"stream_id\":\"room1\",\"url\":\"$EAGLE\"}}"
expect cell-a r6 rejected stream_exists stream_id
pubc cell-a/room1 '{"command":"change_model","command_id":"r7","params":{"model_id":"nope"}}'
expect cell-a r7 rejected unknown_model model_id
pubc cell-a/room1 '{"command":"set_fps","command_id":"r8","params":{"max_fps":2,"extra":1}}'
expect cell-a r8 rejected unknown_param extra
printf '%s\n%s\n' '{"command":"change_model","command_id":"b1","params":{"model_id":"body"}}' \
    '{"command":"set_fps","command_id":"b2","params":{"max_fps":3}}' |
    mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t "$P/control/cell-a/room1" -l
expect cell-a b1 completed
expect cell-a b2 rejected busy stream_id
pubc cell-a '{"command": "set_fps", "command_id": '
wait_for 5 sh -c "grep '^$P/control/cell-a/ack ' $T/sub.log | grep -q invalid_json" || fail "no ack for bad JSON"
head -c 70000 /dev/zero | tr '\0' ' ' >"$T/big"
mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t "$P/control/cell-a" -f "$T/big"
wait_for 5 sh -c "grep '^$P/control/cell-a/ack ' $T/sub.log | grep -q payload_too_large" || fail "no ack for oversize"
pubc cell-a/room1 '{"command":"set_fps","command_id":"c1","params":{"max_fps":9}}' # a repeat
sleep 1
[ "$(acks cell-a | jq -c 'select(.command_id == "c1" and .status == "completed")' | wc -l)" = 2 ] ||
    fail "repeat not answered with the earlier outcome"
stream room1 | jq -e '.fps_target == 2' >/dev/null || fail "a repeated command was applied again"
grep "^$P/telemetry/cell-a " "$T/sub.log" | tail -1 | cut -d' ' -f2- | jq -e '.system.memory_mb > 0 and
    (.streams | length) == 2 and (.streams[0].workers[0] | has("avg_inference_ms") and
    has("cpu_percent") and has("drop_rate_percent"))' >/dev/null || fail "telemetry"
kill -0 "$A_PID" || fail "cell-a died during rejections"

# the care-home scenario: a fall in room2; the orchestrator moves it to cell-b with the
# heavy model at 1 fps and lowers cell-a's fps; room1 runs on undisturbed
HTTP_PORT=$HTTP_B start_vigild "$T/cell-b.yaml" cell-b
B_PID=$VPID
wait_for 10 sh -c "grep -q '^$P/status/cell-b {.*running' $T/sub.log" || fail "cell-b not running"
r1_before=$(stream room1 | jq '.frames_sampled')
r1_reconnects=$(stream room1 | jq '.reconnects')
pubc cell-a '{"command":"remove_stream","command_id":"s1","params":{"stream_id":"room2"}}'
pubc cell-a/room1 '{"command":"set_fps","command_id":"s2","params":{"max_fps":1}}'
pubc cell-b "{\"command\":\"add_stream\",\"command_id\":\"s3\",\"params\":{\"stream_id\":\"room2\",\"url\":\"$EAGLE\",\"fps\":1,\"workers\":[{\"type\":\"person_detector\",\"spec\":{\"model_id\":\"xl\"}}]}}"
expect cell-a s1 completed
expect cell-a s2 completed
expect cell-b s3 completed
wait_for 10 sh -c "grep '^$P/inferences/room2 ' $T/sub.log | tail -1 | jq -R 'split(\" \")[1:] | join(\" \") | fromjson' | jq -e '.instance_id == \"cell-b\" and .model_id == \"xl\"'" ||
    fail "room2 not served by cell-b with xl"
wait_for 5 sh -c "curl -s $A_URL/api/v1/streams/room1 | jq -e '.reconnects == $r1_reconnects and .state == \"running\" and .frames_sampled > $r1_before'" ||
    fail "room1 disturbed: $(stream room1) before=$r1_before/$r1_reconnects"
# the writer thread wrote cell-b's state file after the add, and nothing failed
wait_for 5 sh -c "jq -e '[.streams[].stream_id] == [\"room2\"]' $T/cell-b.state.json" >/dev/null ||
    fail "cell-b state file: $(cat "$T/cell-b.state.json")"
[ "$(metric vigil_state_writes_total 'result="success"')" -ge 1 ] && [ "$(metric vigil_state_writes_total 'result="error"')" = 0 ] ||
    fail "state writes: $(curl -s "$URL/metrics" | grep vigil_state_writes_total)"

# broker outage of 10 s: reconnect, resubscribe, queued QoS 1 messages arrive in order
kill -TERM "$BROKER_PID"
sleep 10
seq_before=$(curl -s "$A_URL/api/v1/streams/room1/detections" | jq '.results[0].seq')
bg mosquitto2 mosquitto -c "$T/mosquitto.conf"
BROKER_PID=$LAST_PID
wait_for 5 mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -t vigil/probe -m x || fail "broker restart"
bg sub2 stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -v -t "$P/#"
wait_for 40 sh -c "grep -q '^$P/status/cell-a {.*running' $T/sub2.log" || fail "cell-a did not reconnect"
pubc cell-a/room1 '{"command":"set_fps","command_id":"o1","params":{"max_fps":2}}'
wait_for 10 sh -c "grep '^$P/control/cell-a/ack ' $T/sub2.log | grep -q '\"command_id\":\"o1\",.*completed'" ||
    fail "commands do not work after the broker came back"
sleep 1
grep "^$P/inferences/room1 " "$T/sub2.log" | cut -d' ' -f2- | jq -s -e --argjson b "$seq_before" \
    '[.[].seq] as $s | ($s | length) > 3 and $s == ($s | sort) and ($s | unique | length) == ($s | length) and
     ($s[0] <= $b)' >/dev/null || fail "queued messages missing or out of order: $(grep "^$P/inferences/room1 " "$T/sub2.log" | cut -d' ' -f2- | jq -c .seq | tr '\n' ' ')"

# SIGTERM: retained "stopped"; kill -9: the last will "offline"
kill -TERM "$B_PID"
wait "$B_PID" || fail "cell-b exit code"
retained "$P/status/cell-b" | jq -e '.status == "stopped"' >/dev/null || fail "no retained stopped"
kill -9 "$A_PID"
wait "$A_PID" 2>/dev/null || true
wait_for 5 sh -c "mosquitto_sub -h 127.0.0.1 -p $MQTT_PORT -t $P/status/cell-a -C 1 -W 2 | jq -e '.status == \"offline\"'" ||
    fail "no retained offline after kill -9"

# state file: what the orchestrator changed survives a restart
jq -e '[.streams[].stream_id] == ["room1"]' "$T/cell-a.state.json" >/dev/null || fail "state file: $(cat "$T/cell-a.state.json")"
HTTP_PORT=$HTTP_B start_vigild "$T/cell-b.yaml" cell-b2
curl -s "$URL/api/v1/streams" | jq -e '[.streams[].stream_id] == ["room2"] and .streams[0].workers[0].model_id == "xl"' >/dev/null ||
    fail "cell-b did not restore room2 from its state file"
pass "MQTT control plane"
