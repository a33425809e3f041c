#!/usr/bin/env bash
# scripts/demo.sh, with its install and build skipped (VIGIL_DEMO_NO_BUILD=1, this build):
# the rooms run, the person rooms see a person and the empty ones do not, the printed
# web page and mosquitto_sub command work, and SIGINT (Ctrl-C) stops every process the
# demo started. A second run without model files falls back to builtin-hog.
. "$(dirname "$0")/lib.sh"

"$BUILD/vigild" --check-config -c "$SRC/config/vigil.yaml" >/dev/null || fail "config/vigil.yaml does not check"

# start_demo NAME [ENV=VALUE...]: runs the demo with SIGINT at its default disposition (a
# background job of a script inherits it ignored, and bash cannot trap an ignored
# signal); sets DEMO_PID, HTTP_PORT, MQTT_PORT, URL.
start_demo() {
    local name=$1; shift
    HTTP_PORT=$(free_port)
    MQTT_PORT=$(free_port)
    URL=http://127.0.0.1:$HTTP_PORT
    env VIGIL_DEMO_NO_BUILD=1 VIGIL_BUILD_DIR="$BUILD" VIGIL_DEMO_HTTP_PORT="$HTTP_PORT" \
        VIGIL_DEMO_MQTT_PORT="$MQTT_PORT" "$@" \
        $PY -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
        "$SRC/scripts/demo.sh" >"$T/$name.log" 2>&1 &
    DEMO_PID=$!
    PIDS+=("$DEMO_PID")
    wait_for 60 grep -q '^Ctrl-C stops everything' "$T/$name.log" || fail "$name did not come up"
}
# stop_demo NAME: SIGINT, then the demo and every child it had must be gone
stop_demo() {
    local name=$1 kids
    kids=$(pgrep -P "$DEMO_PID" | tr '\n' ' ')
    [ "$(wc -w <<<"$kids")" = 3 ] || fail "$name: expected 3 children (mosquitto, camsim, vigild), got: $(ps -o pid,args --ppid "$DEMO_PID")"
    kill -INT "$DEMO_PID"
    local rc=0
    timeout 15 tail --pid="$DEMO_PID" -f /dev/null || fail "$name still running 15 s after SIGINT"
    wait "$DEMO_PID" || rc=$?
    [ "$rc" = 0 ] || fail "$name exited $rc after SIGINT"
    for k in $kids; do
        ! kill -0 "$k" 2>/dev/null || fail "$name left pid $k running: $(ps -o args= -p "$k")"
    done
    grep -q '^demo: stopping' "$T/$name.log" || fail "$name: no stopping message"
    echo "# $name: SIGINT stopped the demo and its children ($kids)"
}
rooms() { curl -s "$URL/api/v1/streams"; }

start_demo demo
grep -q "web page    $URL/" "$T/demo.log" || fail "web page URL not printed: $(cat "$T/demo.log")"
sub=$(sed -n "s/^  results     //p" "$T/demo.log")
[[ "$sub" == "mosquitto_sub -h 127.0.0.1 -p $MQTT_PORT -u dashboard -P \"\$(cat $BUILD/demo/secrets/dashboard.password)\" -t 'care/inferences/#' -v" ]] ||
    fail "mosquitto_sub line: $sub"
# the broker is locked down as deploy/mosquitto ships it: anonymous clients are refused
mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -t care/control/vigil-demo -m '{}' 2>/dev/null &&
    fail "the demo broker accepts anonymous clients"
grep -q 'model yolo-fastest-body' "$T/demo.log" || fail "the demo did not pick the shared model"
wait_for 20 sh -c "curl -s $URL/api/v1/streams | jq -e '[.streams[] | select(.state == \"running\")] | length == 5'" ||
    fail "rooms not running: $(rooms | jq -c '[.streams[] | {stream_id, state}]')"
wait_for 20 sh -c "curl -s $URL/api/v1/streams | jq -e '[.streams[] | select(.stream_id == \"room-101\" or .stream_id == \"room-103\") | .person_count >= 1] | all'" ||
    fail "no person in the person rooms: $(rooms | jq -c '[.streams[] | {stream_id, person_count}]')"
rooms | jq -e '[.streams[] | select(.stream_id == "room-102" or .stream_id == "room-104") | .person_count == 0] | all' >/dev/null ||
    fail "a person in an empty room: $(rooms | jq -c '[.streams[] | {stream_id, person_count}]')"
curl -sf "$URL/" | grep -qi '<html' || fail "web page not served"
# the printed subscription shows results (run as printed, bounded)
msg=$(eval "${sub/mosquitto_sub/mosquitto_sub -C 1 -W 10}") || fail "no result through: $sub"
jq -e '.person_count >= 0' <<<"${msg#* }" >/dev/null || fail "not a result: $msg"
stop_demo demo

# no model files: builtin-hog
mkdir -p "$T/shared"
ln -s "$SHARED/fixtures" "$T/shared/fixtures"
start_demo demo-hog VIGIL_SHARED_DIR="$T/shared"
grep -q 'model builtin-hog' "$T/demo-hog.log" || fail "no builtin-hog fallback: $(cat "$T/demo-hog.log")"
wait_for 20 sh -c "curl -s $URL/api/v1/streams | jq -e '[.streams[] | select(.state == \"running\")] | length == 5'" ||
    fail "hog rooms not running"
wait_for 15 sh -c "curl -s $URL/api/v1/streams/room-101/detections | jq -e 'tostring | test(\"builtin-hog\")'" ||
    fail "no builtin-hog results: $(curl -s "$URL/api/v1/streams/room-101/detections" | head -c 300)"
stop_demo demo-hog
pass "demo: 5 rooms, persons where they are, Ctrl-C stops everything; builtin-hog without models"
