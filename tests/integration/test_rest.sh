#!/usr/bin/env bash
# REST API against the real daemon with file-clip cameras: every route's success path
# and error statuses, auth (no, wrong, right token; auth_reads), snapshots (mjpeg,
# width, boxes, privacy masks black), secrets redacted, and abuse (concurrency,
# slowloris, oversized and invalid bodies, path traversal).
. "$(dirname "$0")/lib.sh"
require "python3 cv2 (Debian python3-opencv)" $PY -c "import cv2"

PERSON=$(clip person-640 person.jpg 640x360 15 1)
EAGLE=$(clip eagle-640 eagle.jpg 640x360 15 1)
HTTP_PORT=$(free_port)
TOKEN=tok-$RANDOM-$RANDOM
echo "$TOKEN" >"$T/token"
mkdir -p "$T/web/css"
echo '<!doctype html><title>t</title>' >"$T/web/index.html"
echo 'body{}' >"$T/web/css/a.css"
echo 'secret' >"$T/outside.txt"
cat >"$T/vigil.yaml" <<YAML
instance_id: resttest
capture: {allow_files: true} # the streams read clip files
mqtt: {enabled: false}
http: {listen: 127.0.0.1:$HTTP_PORT, auth_token_file: $T/token, web_root: $T/web, max_connections: 256}
models_dir: $SHARED/models
models:
  - {model_id: yolo-fastest-body, config: yolo-fastest-1.1_body.cfg, weights: yolo-fastest-1.1_body.weights, labels: body.names}
streams:
  - stream_id: room_person
    url: $PERSON
    fps: 4
    privacy_masks: [{x: 0, y: 0, w: 0.3125, h: 0.33333}] # 200 x 120 of 640 x 360
    workers: [{type: person_detector, spec: {model_id: yolo-fastest-body}}]
  - stream_id: room_eagle
    url: $EAGLE
    fps: 2
    workers: [{type: person_detector, spec: {model_id: yolo-fastest-body}}]
  - stream_id: room_dead
    rtsp_url: rtsp://nurse:hunter2@127.0.0.1:1/x
    fps: 1
YAML
start_vigild "$T/vigil.yaml"
AUTH=(-H "Authorization: Bearer $TOKEN")
J=(-H "Content-Type: application/json")

# reads (open: auth_reads is false)
expect_code 200 GET /api/v1/streams
jq_body '.streams | length == 3'
expect_code 200 GET /streams
jq_body '[.streams[].stream_id] | sort == ["room_dead","room_eagle","room_person"]'
expect_code 200 GET /api/v1/streams/room_person
jq_body '.fps_target == 4 and .workers[0].model_id == "yolo-fastest-body"'
expect_code 404 GET /api/v1/streams/nope
jq_body '.error.code == "unknown_stream" and .error.field == "stream_id"'
expect_code 200 GET /api/v1/models
jq_body '[.models[].model_id] | index("builtin-hog") != null'
expect_code 200 GET /api/v1/info
jq_body '.instance_id == "resttest" and .version != null and .uptime_s >= 0'

# results arrive: the person clip has a person, the eagle clip has none
wait_for 20 sh -c "curl -sf $URL/api/v1/streams/room_person/detections | jq -e '.results[0].person_count >= 1'" ||
    fail "no person detected on room_person"
wait_for 10 sh -c "curl -sf $URL/api/v1/streams/room_eagle/detections | jq -e '.results[0].person_count == 0'" ||
    fail "no result for room_eagle"
expect_code 404 GET /api/v1/streams/room_dead/detections
jq_body '.error.code == "no_result"'

# the dead camera: reconnecting with a redacted error; the password never leaves
wait_for 10 sh -c "curl -sf $URL/api/v1/streams/room_dead | jq -e '.state == \"reconnecting\" or .state == \"failed\"'" ||
    fail "dead camera not reconnecting"
curl -s "$URL/api/v1/streams" >"$T/all.json"
curl -s "$URL/metrics" >"$T/metrics.txt"
grep -q 'nurse:\*\*\*@127.0.0.1' "$T/all.json" || fail "url not shown redacted"
! grep -q hunter2 "$T/all.json" "$T/metrics.txt" "$T/vigild.log" || fail "password leaked"

# auth on mutating routes
expect_code 401 POST /api/v1/streams "${J[@]}" -d '{"stream_id":"r4","url":"'"$EAGLE"'"}'
jq_body '.error.code == "unauthorized"'
expect_code 401 POST /api/v1/streams "${J[@]}" -H "Authorization: Bearer wrong" -d '{}'
expect_code 401 DELETE /api/v1/streams/room_eagle
expect_code 201 POST /api/v1/streams "${AUTH[@]}" "${J[@]}" -d '{"stream_id":"r4","url":"'"$EAGLE"'","fps":1}'
jq_body '.status == "completed" and .stream_id == "r4"'
expect_code 409 POST /api/v1/streams "${AUTH[@]}" "${J[@]}" -d '{"stream_id":"r4","url":"'"$EAGLE"'"}'
jq_body '.error.code == "stream_exists"'
expect_code 400 POST /api/v1/streams "${AUTH[@]}" "${J[@]}" -d '{"stream_id":"r5","url":"'"$EAGLE"'","fps":45}'
jq_body '.error.code == "invalid_param" and .error.field == "fps"'
expect_code 400 POST /api/v1/streams "${AUTH[@]}" "${J[@]}" -d '{"url":"'"$EAGLE"'"}'
jq_body '.error.code == "missing_param"'
expect_code 400 POST /api/v1/streams "${AUTH[@]}" "${J[@]}" -d '{"stream_id":"r6","url":"nosuch://x"}'
jq_body '.error.field == "url"'
expect_code 415 POST /api/v1/streams "${AUTH[@]}" -H "Content-Type: text/plain" -d 'hello'
expect_code 400 POST /api/v1/streams "${AUTH[@]}" "${J[@]}" -d '{"stream_id":'
jq_body '.error.code == "invalid_json"'
head -c 1048576 /dev/zero | tr '\0' 'a' >"$T/big"
expect_code 413 POST /api/v1/commands "${AUTH[@]}" "${J[@]}" --data-binary @"$T/big"
printf '{"command":"\xff\xfe"}' >"$T/badutf8"
code=$(http_code POST /api/v1/commands "${AUTH[@]}" "${J[@]}" --data-binary @"$T/badutf8")
[ "$code" = 400 ] || fail "invalid UTF-8 body gave $code"

# PATCH (all or nothing), restart, commands, delete
expect_code 200 PATCH /api/v1/streams/room_eagle "${AUTH[@]}" "${J[@]}" -d '{"fps":3,"confidence_threshold":0.6}'
expect_code 200 GET /api/v1/streams/room_eagle
jq_body '.fps_target == 3 and .workers[0].confidence_threshold == 0.6'
expect_code 400 PATCH /api/v1/streams/room_eagle "${AUTH[@]}" "${J[@]}" -d '{"fps":2,"confidence_threshold":7}'
jq_body '.error.field == "confidence_threshold"'
expect_code 200 GET /api/v1/streams/room_eagle
jq_body '.fps_target == 3' # nothing of the refused PATCH was applied
expect_code 400 PATCH /api/v1/streams/room_eagle "${AUTH[@]}" "${J[@]}" -d '{"model_id":"nope"}'
jq_body '.error.code == "unknown_model"'
expect_code 404 PATCH /api/v1/streams/nope "${AUTH[@]}" "${J[@]}" -d '{"fps":2}'
expect_code 200 PATCH /api/v1/streams/room_eagle "${AUTH[@]}" "${J[@]}" -d '{"model_id":"builtin-hog"}'
wait_for 15 sh -c "curl -sf $URL/api/v1/streams/room_eagle/detections | jq -e '.results[0].model_id == \"builtin-hog\"'" ||
    fail "model change not visible in results"
# the same command twice at once: the repeat waits for the outcome instead of hanging
cmd='{"command":"change_model","command_id":"twice","stream_id":"room_eagle","params":{"model_id":"yolo-fastest-body"}}'
twice=()
for i in 1 2; do
    curl -s -m 10 -o "$T/twice$i" -w '%{http_code}' "${AUTH[@]}" "${J[@]}" -d "$cmd" "$URL/api/v1/commands" >"$T/twice$i.code" &
    twice+=("$!")
done
wait "${twice[@]}"
for i in 1 2; do
    [ "$(cat "$T/twice$i.code")" = 200 ] || fail "repeat $i: $(cat "$T/twice$i.code") $(cat "$T/twice$i")"
    jq -e '.status == "completed" and .command_id == "twice"' "$T/twice$i" >/dev/null || fail "repeat $i body"
done
expect_code 200 POST /api/v1/streams/room_eagle/restart "${AUTH[@]}"
expect_code 404 POST /api/v1/streams/nope/restart "${AUTH[@]}"
expect_code 200 POST /api/v1/commands "${AUTH[@]}" "${J[@]}" -d '{"command":"set_fps","command_id":"c-1","stream_id":"r4","params":{"max_fps":2}}'
jq_body '.status == "completed" and .command_id == "c-1"'
expect_code 200 POST /api/v1/commands "${AUTH[@]}" "${J[@]}" -d '{"command":"set_fps","command_id":"c-1","stream_id":"r4","params":{"max_fps":5}}'
jq_body '.status == "completed"' # a repeat answers the earlier outcome ...
expect_code 200 GET /api/v1/streams/r4
jq_body '.fps_target == 2' # ... and applies nothing
expect_code 400 POST /api/v1/commands "${AUTH[@]}" "${J[@]}" -d '{"command":"fly"}'
jq_body '.error.code == "unknown_command"'
expect_code 200 DELETE /api/v1/streams/r4 "${AUTH[@]}"
expect_code 404 DELETE /api/v1/streams/r4 "${AUTH[@]}"
expect_code 405 PUT /api/v1/streams/room_eagle "${AUTH[@]}"

# snapshots: JPEG, at most 640 wide, ?width, boxes drawn, privacy mask black
expect_code 200 GET /api/v1/streams/room_person/snapshot.jpg
ffprobe -v error -show_entries stream=codec_name,width -of csv=p=0 "$T/body" >"$T/probe"
grep -q '^mjpeg,640$' "$T/probe" || fail "snapshot probe: $(cat "$T/probe")"
cp "$T/body" "$T/plain.jpg"
expect_code 200 GET "/api/v1/streams/room_person/snapshot.jpg?width=320"
ffprobe -v error -show_entries stream=width -of csv=p=0 "$T/body" | grep -qx 320 || fail "width=320"
expect_code 400 GET "/api/v1/streams/room_person/snapshot.jpg?width=5000"
expect_code 200 GET "/api/v1/streams/room_person/snapshot.jpg?boxes=1"
cp "$T/body" "$T/boxes.jpg"
expect_code 200 GET /api/v1/streams/room_eagle/snapshot.jpg
cp "$T/body" "$T/eagle.jpg"
expect_code 404 GET /api/v1/streams/room_dead/snapshot.jpg
jq_body '.error.code == "no_frame"'
$PY - "$T/plain.jpg" "$T/boxes.jpg" "$T/eagle.jpg" <<'PYEOF' || fail "snapshot pixels"
import sys, cv2
plain, boxes, eagle = (cv2.imread(p) for p in sys.argv[1:4])
# mask {0,0,0.3125,0.33333}: pixels {0,0,200,120} of 640x360 at width 640: the same pixels; look inside its edges
inner = plain[4:116, 4:196]
assert inner.max() < 24, f"masked area not black: max {inner.max()}"
assert boxes[4:116, 4:196].max() < 24, "masked area not black with boxes"
assert eagle[4:116, 4:196].max() > 60, "unmasked stream looks black"
def green(img):
    b, g, r = img[:, :, 0].astype(int), img[:, :, 1].astype(int), img[:, :, 2].astype(int)
    return int(((g > 180) & (r < 60) & (b < 60)).sum())
assert green(boxes) > 200 and green(boxes) > 5 * green(plain), (green(boxes), green(plain))
PYEOF

# static files: content types, cache headers, no traversal
curl -s -D "$T/h" -o /dev/null "$URL/" && grep -qi '^content-type: text/html' "$T/h" || fail "index type"
curl -s -D "$T/h" -o /dev/null "$URL/css/a.css" && grep -qi '^content-type: text/css' "$T/h" || fail "css type"
grep -qi '^cache-control: public' "$T/h" || fail "css cache header"
for p in /../outside.txt /css/../../outside.txt /%2e%2e/outside.txt /..%2foutside.txt "/css/%ff"; do
    code=$(curl -s --path-as-is -o "$T/body" -w '%{http_code}' "$URL$p")
    [ "$code" = 404 ] || fail "traversal $p gave $code"
    ! grep -q secret "$T/body" || fail "traversal $p leaked a file"
done

# abuse: 200 concurrent clients, a slowloris, and the daemon stays responsive
seq 200 | xargs -P 200 -I{} curl -s -o /dev/null -w '%{http_code}\n' "$URL/api/v1/streams" >"$T/burst"
[ "$(grep -c '^200$' "$T/burst")" -eq 200 ] || fail "burst: $(sort "$T/burst" | uniq -c | tr '\n' ' ')"
$PY - "$HTTP_PORT" <<'PYEOF' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
for ch in b"GET /api/v1/streams HTTP/1.1\r\nHost: x\r\n":
    s.send(bytes([ch])); time.sleep(0.3)
PYEOF
SLOW=$!
PIDS+=("$SLOW")
sleep 1
start=$(date +%s%N)
curl -sf -m 2 "$URL/healthz" >/dev/null || fail "healthz blocked by a slow client"
[ $(( ($(date +%s%N) - start) / 1000000 )) -lt 1000 ] || fail "healthz slow during slowloris"

# auth_reads through a reload: reads need the token now; health and metrics never do
sed -i "s|auth_token_file: $T/token,|auth_token_file: $T/token, auth_reads: true,|" "$T/vigil.yaml"
kill -HUP "$VPID"
wait_for 5 grep -q '"event":"config_reloaded"' "$T/vigild.log" || fail "reload"
expect_code 401 GET /api/v1/streams
expect_code 200 GET /api/v1/streams "${AUTH[@]}"
expect_code 200 GET /healthz
expect_code 200 GET /metrics
kill -0 "$VPID" || fail "daemon died"
pass "REST API"
