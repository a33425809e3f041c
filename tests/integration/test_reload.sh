#!/usr/bin/env bash
# SIGHUP applies the file's stream changes live: a stream added to the file starts, one
# dropped stops, a changed fps applies without a reconnect; a stream added at run time
# is left alone; restart-only settings are reported, not applied.
. "$(dirname "$0")/lib.sh"

EAGLE=$(clip eagle-640 eagle.jpg 640x360 15 1)
HTTP_PORT=$(free_port)
write() {
    cat >"$T/vigil.yaml" <<YAML
instance_id: reload
capture: {allow_files: true} # the streams read clip files
mqtt: {enabled: false}
http: {listen: 127.0.0.1:$HTTP_PORT}
inference: {threads: $1}
streams:
$2
YAML
}
write 1 "  - {stream_id: a, url: $EAGLE, fps: 2, workers: [{type: motion_detector}]}
  - {stream_id: b, url: $EAGLE, fps: 2, workers: [{type: motion_detector}]}"
start_vigild "$T/vigil.yaml"
curl -sf -X POST -d "{\"stream_id\":\"rt\",\"url\":\"$EAGLE\",\"fps\":1}" "$URL/api/v1/streams" >/dev/null ||
    fail "runtime add"
wait_for 10 sh -c "curl -s $URL/api/v1/streams/a | jq -e '.state == \"running\"'" || fail "a not running"
write 2 "  - {stream_id: a, url: $EAGLE, fps: 4, workers: [{type: motion_detector}]}
  - {stream_id: c, url: $EAGLE, fps: 1, workers: [{type: motion_detector}]}"
kill -HUP "$VPID"
wait_for 5 grep -q '"event":"config_reloaded"' "$T/vigild.log" || fail "no reload"
curl -s "$URL/api/v1/streams" | jq -e '[.streams[].stream_id] | sort == ["a","c","rt"]' >/dev/null ||
    fail "streams after reload: $(curl -s "$URL/api/v1/streams" | jq -c '[.streams[].stream_id]')"
curl -s "$URL/api/v1/streams/a" | jq -e '.fps_target == 4 and .reconnects == 0' >/dev/null || fail "a not changed live"
grep -q '"event":"config_needs_restart".*inference.threads' "$T/vigild.log" || fail "restart-only key not reported"
wait_for 10 sh -c "curl -s $URL/api/v1/streams/c | jq -e '.state == \"running\"'" || fail "c not started"
pass "reload"
