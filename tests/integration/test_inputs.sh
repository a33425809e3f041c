#!/usr/bin/env bash
# Outside input is held to what vigil means to accept, at every entry point (config file,
# state file, REST, MQTT):
#  - stream URLs are rtsp:// or rtsps:// only (file paths only with capture.allow_files),
#    refused naming the key; an HLS playlist file that points at http:// never reaches
#    the network (FFmpeg's protocol_whitelist; unit.test_capture checks the whitelist
#    itself with concat: and subfile URLs that FFmpeg alone would open);
#  - workers per stream and distinct views are limited (limits.h), refused naming
#    'workers'; a worker that cannot run is reported (describe, log, metric);
#  - HTTP metric labels come from fixed sets whatever method a client sends.
. "$(dirname "$0")/lib.sh"

start_broker
EAGLE=$(clip eagle-640 eagle.jpg 640x360 15 1)
start_camsim --camera cam="$EAGLE"
HTTP_PORT=$(free_port)
P=care
BAD_URLS=("/etc/passwd" "file:///etc/passwd" "file:/etc/passwd" "concat:/etc/passwd|/etc/hosts"
    "http://169.254.169.254/latest/meta-data/" "https://169.254.169.254/x"
    "subfile,,start,0,end,64,,:/etc/passwd" "tcp://127.0.0.1:1" "data:text/plain;base64,eA=="
    "hls+http://127.0.0.1:1/x.m3u8" "async:file:/etc/passwd" "/tmp/../etc/passwd")
# workers: 9 motion detectors (limit 8); views: 5 rois (limit 4)
NINE=$($PY -c 'import json; print(json.dumps([{"type": "motion_detector", "worker_id": f"m{i}"} for i in range(9)]))')
FIVE=$($PY -c 'import json; print(json.dumps([{"type": "motion_detector", "worker_id": f"m{i}",
    "spec": {"roi": {"x": 8 * i, "y": 0, "w": 8, "h": 8}}} for i in range(5)]))')
FOUR=$($PY -c 'import json; print(json.dumps([{"type": "motion_detector", "worker_id": f"m{i}",
    "spec": {"roi": {"x": 8 * min(i, 3), "y": 0, "w": 8, "h": 8}}} for i in range(5)]))')

# ---- the state file: only the good stream loads ----
$PY - "$T/state.json" "$NINE" "$FIVE" "${BAD_URLS[@]}" <<'PYEOF'
import json, sys
path, nine, five, bad = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4:]
streams = [{"stream_id": "ok", "url": "rtsp://127.0.0.1:1/ok", "fps": 1}]
streams += [{"stream_id": f"bad{i}", "url": u, "fps": 1} for i, u in enumerate(bad)]
streams += [{"stream_id": "nine", "url": "rtsp://127.0.0.1:1/n", "workers": nine},
            {"stream_id": "five", "url": "rtsp://127.0.0.1:1/f", "workers": five}]
json.dump({"version": 1, "instance_id": "inputs", "streams": streams}, open(path, "w"))
PYEOF
cat >"$T/vigil.yaml" <<YAML
instance_id: inputs
mqtt: {host: 127.0.0.1, port: $MQTT_PORT}
http: {listen: 127.0.0.1:$HTTP_PORT}
state_file: $T/state.json
YAML
bg sub stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -v -t "$P/control/#"
sleep 0.3
start_vigild "$T/vigil.yaml"
expect_code 200 GET /api/v1/streams
jq_body '[.streams[].stream_id] == ["ok"]'
n_url=$(grep '"event":"state_stream_invalid"' "$T/vigild.log" | grep -c '"field":"url"' || true)
[ "$n_url" = "${#BAD_URLS[@]}" ] || fail "state file: $n_url url rejections, want ${#BAD_URLS[@]}"
[ "$(grep '"event":"state_stream_invalid"' "$T/vigild.log" | grep -c '"field":"workers"')" = 2 ] ||
    fail "state file: workers and views not refused"
pass "state file: bad urls, too many workers and views not loaded"

# ---- REST ----
J=(-H "Content-Type: application/json")
for u in "${BAD_URLS[@]}"; do
    body=$(jq -cn --arg u "$u" '{stream_id: "r1", url: $u}')
    expect_code 400 POST /api/v1/streams "${J[@]}" -d "$body"
    jq_body '.error.code == "invalid_param" and .error.field == "url"'
    body=$(jq -cn --arg u "$u" '{stream_id: "r1", rtsp_url: $u}')
    expect_code 400 POST /api/v1/streams "${J[@]}" -d "$body"
    jq_body '.error.field == "rtsp_url"'
done
expect_code 404 GET /api/v1/streams/r1
expect_code 400 POST /api/v1/streams "${J[@]}" -d "{\"stream_id\":\"r2\",\"rtsp_url\":\"rtsp://127.0.0.1:1/x\",\"workers\":$NINE}"
jq_body '.error.field == "workers" and (.error.message | test("at most 8 workers"))'
expect_code 400 POST /api/v1/streams "${J[@]}" -d "{\"stream_id\":\"r2\",\"rtsp_url\":\"rtsp://127.0.0.1:1/x\",\"workers\":$FIVE}"
jq_body '.error.field == "workers" and (.error.message | test("5 distinct views"))'
# four views (two workers share one) are fine; a change that makes a fifth is refused
expect_code 201 POST /api/v1/streams "${J[@]}" -d "{\"stream_id\":\"r4\",\"rtsp_url\":\"rtsp://127.0.0.1:1/x\",\"workers\":$FOUR}"
expect_code 400 PATCH /api/v1/streams/r4 "${J[@]}" -d '{"worker_id":"m4","roi":{"x":100,"y":0,"w":8,"h":8}}'
jq_body '.error.field == "workers"'
expect_code 200 PATCH /api/v1/streams/r4 "${J[@]}" -d '{"worker_id":"m4","roi":{"x":0,"y":0,"w":8,"h":8}}'
pass "REST: bad urls, too many workers and views refused by field"

# ---- MQTT ----
pubc() { mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t "$P/control/inputs" -m "$1"; }
final_ack() {
    wait_for 10 sh -c "grep '^$P/control/inputs/ack ' $T/sub.log | cut -d' ' -f2- | jq -s -e 'any(.command_id == \"$1\" and .status != \"received\")'" ||
        fail "no final ack for $1"
    grep "^$P/control/inputs/ack " "$T/sub.log" | cut -d' ' -f2- | jq -c "select(.command_id == \"$1\" and .status != \"received\")" | tail -1
}
i=0
for u in "${BAD_URLS[@]}"; do
    i=$((i + 1))
    pubc "$(jq -cn --arg u "$u" --arg id "u$i" '{command: "add_stream", command_id: $id, params: {stream_id: "m1", url: $u}}')"
done
i=0
for u in "${BAD_URLS[@]}"; do
    i=$((i + 1))
    final_ack "u$i" | jq -e '.status == "rejected" and .error.field == "url"' >/dev/null || fail "mqtt $u: $(final_ack "u$i")"
done
pubc "{\"command\":\"add_stream\",\"command_id\":\"w1\",\"params\":{\"stream_id\":\"m2\",\"rtsp_url\":\"rtsp://127.0.0.1:1/x\",\"workers\":$NINE}}"
final_ack w1 | jq -e '.status == "rejected" and .error.field == "workers"' >/dev/null || fail "mqtt nine: $(final_ack w1)"
pubc "{\"command\":\"add_stream\",\"command_id\":\"w2\",\"params\":{\"stream_id\":\"m2\",\"rtsp_url\":\"rtsp://127.0.0.1:1/x\",\"workers\":$FIVE}}"
final_ack w2 | jq -e '.status == "rejected" and .error.field == "workers"' >/dev/null || fail "mqtt five: $(final_ack w2)"
expect_code 404 GET /api/v1/streams/m1
pass "MQTT: bad urls, too many workers and views refused by field"

# ---- a worker that cannot run is reported: describe, log, metric ----
expect_code 201 POST /api/v1/streams "${J[@]}" -d "{\"stream_id\":\"posed\",\"rtsp_url\":\"rtsp://127.0.0.1:$RTSP_PORT/cam\",\"fps\":2,\"workers\":[{\"type\":\"motion_detector\"},{\"type\":\"pose_estimator\"}]}"
expect_code 200 GET /api/v1/streams/posed
jq_body '.workers[1].state == "unavailable" and (.workers[1].reason | length > 0)'
grep -q '"event":"worker_unavailable","stream_id":"posed","worker":"pose_estimator"' "$T/vigild.log" ||
    fail "no worker_unavailable log line"

# ---- metric labels: methods from a fixed set ----
for i in 1 2 3 4 5; do
    curl -s -o /dev/null -X "WEIRD$i$RANDOM" "$URL/api/v1/streams"
    curl -s -o /dev/null -X "PROPFIND" "$URL/nope-$i"
done
curl -s "$URL/metrics" >"$T/metrics.txt"
! grep -q 'WEIRD\|PROPFIND\|nope-' "$T/metrics.txt" || fail "client input in metric labels: $(grep 'WEIRD\|PROPFIND\|nope-' "$T/metrics.txt" | head -3)"
other=$(grep '^vigil_http_requests_total{' "$T/metrics.txt" | grep 'method="other"' | awk '{s += $2} END {print s + 0}')
[ "$other" -ge 10 ] || fail "method=\"other\" counted $other, want >= 10"
grep '^vigil_http_requests_total{' "$T/metrics.txt" | sed 's/.*method="\([^"]*\)".*/\1/' | sort -u >"$T/methods"
grep -qvx 'GET\|POST\|PUT\|PATCH\|DELETE\|HEAD\|OPTIONS\|other' "$T/methods" && fail "methods: $(cat "$T/methods")"
grep '^vigil_http_requests_total{' "$T/metrics.txt" | sed 's/.*route="\([^"]*\)".*/\1/' | sort -u >"$T/routes"
grep -qvx '/.*\|not_found\|method_not_allowed\|static\|too_large\|other' "$T/routes" && fail "routes: $(cat "$T/routes")"
wait_for 15 sh -c "curl -s $URL/metrics | grep -q '^vigil_worker_state{stream_id=\"posed\",worker=\"pose_estimator\",state=\"unavailable\"} 1'" ||
    fail "no vigil_worker_state unavailable for the pose worker"
pass "metric labels from fixed sets; unavailable worker reported"
term_within "$VPID" 5000

# ---- the config file ----
check_bad() { # CHECK_BAD WANT YAML-STREAM-LINES...
    local want=$1; shift
    printf 'instance_id: c\nstreams:\n%s\n' "$*" >"$T/bad.yaml"
    if "$BUILD/vigild" --check-config -c "$T/bad.yaml" 2>"$T/bad.err"; then fail "accepted: $*"; fi
    grep -qF "$want" "$T/bad.err" || fail "config error for $*: $(cat "$T/bad.err")"
}
for u in "${BAD_URLS[@]}"; do
    check_bad "key 'streams[0].url'" "  - {stream_id: s, url: \"$u\"}"
done
check_bad "key 'streams[0].workers': a stream runs at most 8" "  - {stream_id: s, url: rtsp://h/x, workers: $NINE}"
check_bad "key 'streams[0].workers': the workers need 5 distinct views" "  - {stream_id: s, url: rtsp://h/x, workers: $FIVE}"
printf 'instance_id: c\nstream_url_template: "http://169.254.169.254/{source_id}"\n' >"$T/bad.yaml"
if "$BUILD/vigild" --check-config -c "$T/bad.yaml" 2>"$T/bad.err"; then fail "template accepted"; fi
grep -q "key 'stream_url_template'" "$T/bad.err" || fail "template error: $(cat "$T/bad.err")"
pass "config file: bad urls, workers, views and template refused by key"

# ---- allow_files: absolute paths only, and FFmpeg opens nothing but files ----
mkdir -p "$T/www"
cp "$EAGLE" "$T/www/seg0.mp4"
WWW_PORT=$(free_port)
(cd "$T/www" && exec $PY -m http.server --bind 127.0.0.1 "$WWW_PORT") >"$T/www.log" 2>&1 &
PIDS+=("$!")
wait_for 5 curl -sf -o /dev/null "http://127.0.0.1:$WWW_PORT/seg0.mp4" || fail "http server"
: >"$T/www.log"
printf '#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXTINF:6.0,\nhttp://127.0.0.1:%s/seg0.mp4\n#EXT-X-ENDLIST\n' \
    "$WWW_PORT" >"$T/list.m3u8"
HTTP_PORT=$(free_port)
cat >"$T/files.yaml" <<YAML
instance_id: files
mqtt: {enabled: false}
http: {listen: 127.0.0.1:$HTTP_PORT}
capture: {allow_files: true, reconnect_initial_s: 0.2, reconnect_max_s: 1}
streams:
  - {stream_id: playlist, url: $T/list.m3u8, fps: 1, workers: [{type: motion_detector}]}
YAML
start_vigild "$T/files.yaml" vigild-files
wait_for 10 sh -c "curl -s $URL/api/v1/streams/playlist | jq -e '.state == \"failed\"'" ||
    fail "playlist stream not failed: $(curl -s "$URL/api/v1/streams/playlist")"
sleep 2
! grep -q 'GET /seg0' "$T/www.log" || fail "FFmpeg fetched a URL from the playlist: $(cat "$T/www.log")"
curl -s "$URL/api/v1/streams/playlist" | jq -e '.error | test("whitelist|not found|Invalid"; "i")' >/dev/null ||
    fail "playlist error: $(curl -s "$URL/api/v1/streams/playlist" | jq -c .error)"
for u in "file:/etc/passwd" "concat:/etc/passwd|/etc/hosts" "/etc/x:y" "http://127.0.0.1:$WWW_PORT/seg0.mp4"; do
    expect_code 400 POST /api/v1/streams "${J[@]}" -d "$(jq -cn --arg u "$u" '{stream_id: "f", url: $u}')"
    jq_body '.error.field == "url"'
done
pass "allow_files: paths only; the protocol whitelist keeps a playlist off the network"
term_within "$VPID" 5000
