#!/usr/bin/env bash
# Care events in vigild, through real clients (mosquitto_sub/pub, curl):
# - config: bad zones are refused naming the field with file:line:col;
# - journal: events left open in events_file are restored at start, announced again on
#   {p}/events/{instance}/{stream} (reason restored) and in the retained {p}/alarms/{instance};
#   ended ones are not; after a restart the acks are kept;
# - REST: GET /api/v1/events with its filters (and a bad filter naming the parameter),
#   GET /api/v1/events/{id}, the event snapshot 404 when none was taken;
# - ack over REST (POST /api/v1/events/{id}/ack) and over MQTT (ack_event): the event carries
#   acked_by, leaves the retained alarms, the journal records it;
# - zones over REST (PUT /api/v1/streams/{id}/zones) and MQTT (set_zones): bad ones rejected
#   naming the field, good ones applied and persisted across a restart through the state file;
# - privacy: skeleton: the stream's snapshot.jpg carries none of the camera's picture.
. "$(dirname "$0")/lib.sh"

CLIP=$(clip person-640 person.jpg 640x360 15 1)
start_broker
HTTP_PORT=$(free_port)
P="-h 127.0.0.1 -p $MQTT_PORT"

write_cfg() { # ZONES_OF_CAM1
    cat >"$T/vigil.yaml" <<YAML
instance_id: ev1
mqtt: {host: 127.0.0.1, port: $MQTT_PORT}
http: {listen: 127.0.0.1:$HTTP_PORT}
capture: {allow_files: true}
state_file: $T/state.json
events_file: $T/events.jsonl
streams:
  - stream_id: cam1
    url: $CLIP
    fps: 2
    room_id: r1
    workers: [{type: motion_detector}]
    zones: $1
  - stream_id: cam2
    url: $CLIP
    fps: 2
    privacy: skeleton
    workers: [{type: motion_detector}]
YAML
}

# ---- the config file: a bad zone names its field and position ----
write_cfg "[{zone_id: bed, kind: bed, points: [[0.1, 0.1], [0.5, 0.1], [0.5, 1.5]]}]"
out=$("$BUILD/vigild" -c "$T/vigil.yaml" --check-config 2>&1) && fail "bad zones accepted"
grep -q "vigil.yaml:[0-9]*:[0-9]*: key 'streams\[0\].zones\[0\].points\[2\]'" <<<"$out" ||
    fail "bad zone not named with its position: $out"
write_cfg "[{zone_id: bed, kind: bed, points: [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5]]}]"
"$BUILD/vigild" -c "$T/vigil.yaml" --check-config >/dev/null 2>&1 || fail "good zones refused"
pass "config: zones validated with file:line:col"

# ---- a journal with two open events and an ended one ----
FALL=0190a5b2-7c4e-7a3b-8c1d-2e3f4a5b6c7d
DOWN=0190a5b2-7c4e-7a3b-8c1d-2e3f4a5b6c7e
GONE=0190a5b2-7c4e-7a3b-8c1d-2e3f4a5b6c7f
ev() { # ID TYPE PHASE STREAM ROOM [ENDED]
    printf '{"event_id":"%s","type":"%s","phase":"%s","severity":"critical","instance_id":"ev1","stream_id":"%s","room_id":"%s","track_id":3,"zone_id":null,"confidence":0.8,"started_at":"2026-12-03T09:00:00Z","updated_at":"2026-12-03T09:00:05Z","ended_at":%s,"acked_at":null,"acked_by":null,"reason":"confirmed"}\n' \
        "$1" "$2" "$3" "$4" "$5" "${6:-null}"
}
{
    ev $FALL fall start cam1 r1
    ev $DOWN person_down start cam2 cam2
    ev $GONE fall start cam1 r1
    ev $GONE fall end cam1 r1 '"2026-12-03T09:01:00Z"'
} >"$T/events.jsonl"

bg events stdbuf -oL mosquitto_sub $P -v -t 'care/events/ev1/#'
bg alarms stdbuf -oL mosquitto_sub $P -t 'care/alarms/ev1'
bg acks stdbuf -oL mosquitto_sub $P -t 'care/control/ev1/ack'
sleep 0.5
start_vigild "$T/vigil.yaml"

wait_for 10 grep -q "care/events/ev1/cam1 .*\"event_id\":\"$FALL\".*\"reason\":\"restored\"" "$T/events.log" ||
    fail "restored fall not announced on MQTT"
wait_for 5 grep -q "\"event_id\":\"$DOWN\"" "$T/events.log" || fail "restored person_down not announced"
grep -q "$GONE" "$T/events.log" && fail "an ended event was restored"
wait_for 5 sh -c "tail -n 1 '$T/alarms.log' | jq -e '[.[].event_id] | sort == [\"$FALL\", \"$DOWN\"]'" ||
    fail "retained alarms: $(tail -n 1 "$T/alarms.log")"
# a nurse station that connects late sees them at once
mosquitto_sub $P -t care/alarms/ev1 -C 1 -W 3 | jq -e 'length == 2' >/dev/null ||
    fail "alarms not retained"
[ "$(metric vigil_events_active 'type="fall",severity="critical"')" = 1 ] ||
    fail "vigil_events_active: $(curl -s "$URL/metrics" | grep vigil_events_active)"
age=$(metric vigil_alarm_oldest_seconds 'severity="critical"')
$PY -c "import sys; sys.exit(0 if float('$age') > 600 else 1)" || fail "vigil_alarm_oldest_seconds: '$age'"
pass "journal: open events restored and announced again (MQTT, retained alarms, metrics)"

# ---- REST reads and filters ----
expect_code 200 GET /api/v1/events
jq_body "[.events[].event_id] | (index(\"$FALL\") != null and index(\"$DOWN\") != null and index(\"$GONE\") == null)"
expect_code 200 GET "/api/v1/events?stream_id=cam1"
jq_body "[.events[].event_id] == [\"$FALL\"]"
expect_code 200 GET "/api/v1/events?room_id=cam2"
jq_body "[.events[].event_id] == [\"$DOWN\"]"
expect_code 200 GET "/api/v1/events?type=person_down&active=true"
jq_body "[.events[].event_id] == [\"$DOWN\"]"
expect_code 200 GET "/api/v1/events?active=false"
jq_body '.events == []'
expect_code 200 GET "/api/v1/events?limit=1"
jq_body '.events | length == 1'
expect_code 200 GET "/api/v1/events?since=2099-01-01T00:00:00Z"
jq_body '.events == []'
expect_code 400 GET "/api/v1/events?type=explosion"
jq_body '.error.field == "type"'
expect_code 400 GET "/api/v1/events?limit=0"
jq_body '.error.field == "limit"'
expect_code 200 GET "/api/v1/events/$FALL"
jq_body ".event_id == \"$FALL\" and .type == \"fall\" and .room_id == \"r1\" and .snapshot == \"/api/v1/events/$FALL/snapshot.jpg\""
expect_code 404 GET "/api/v1/events/nope"
jq_body '.error.code == "unknown_event"'
expect_code 404 GET "/api/v1/events/$FALL/snapshot.jpg"
pass "REST: events list, filters, one event"

# ---- acknowledging: REST and MQTT ----
expect_code 200 POST "/api/v1/events/$FALL/ack" -d '{"by": "nurse-ann"}'
jq_body '.status == "completed" and .command == "ack_event"'
expect_code 200 GET "/api/v1/events/$FALL"
jq_body '.acked_by == "nurse-ann" and .acked_at != null and .ended_at == null'
expect_code 404 POST "/api/v1/events/nope/ack" -d '{"by": "nurse-ann"}'
jq_body '.error.code == "unknown_event" and .error.field == "event_id"'
wait_for 5 sh -c "tail -n 1 '$T/alarms.log' | jq -e '[.[].event_id] == [\"$DOWN\"]'" ||
    fail "an acked event stayed in the alarms: $(tail -n 1 "$T/alarms.log")"
mosquitto_pub $P -t care/control/ev1 -m "{\"command\":\"ack_event\",\"command_id\":\"ack-1\",\"params\":{\"event_id\":\"$DOWN\",\"by\":\"nurse-bob\"}}"
wait_for 5 grep -q '"command_id":"ack-1".*"status":"completed"' "$T/acks.log" || fail "MQTT ack_event not completed"
mosquitto_pub $P -t care/control/ev1 -m '{"command":"ack_event","command_id":"ack-2","params":{"by":"x"}}'
wait_for 5 grep -q '"command_id":"ack-2".*"status":"rejected".*"field":"event_id"' "$T/acks.log" ||
    fail "ack_event without event_id not rejected naming it"
expect_code 200 GET "/api/v1/events/$DOWN"
jq_body '.acked_by == "nurse-bob"'
wait_for 5 sh -c "tail -n 1 '$T/alarms.log' | jq -e '. == []'" || fail "alarms not empty after both acks"
[ "$(metric vigil_alarm_oldest_seconds 'severity="critical"')" = 0 ] || fail "vigil_alarm_oldest_seconds not 0 after the acks"
[ "$(metric vigil_events_active 'type="fall",severity="critical"')" = 1 ] || fail "an acked event is still active"
wait_for 5 grep -q "\"event_id\":\"$DOWN\".*\"acked_by\":\"nurse-bob\"" "$T/events.jsonl" ||
    fail "the ack is not in the journal"
grep -q "care/events/ev1/cam1 .*\"acked_by\":\"nurse-ann\"" "$T/events.log" || fail "REST ack not published as an update"
pass "ack over REST and MQTT: acked_by set, alarms cleared, journalled"

# ---- zones: REST and MQTT ----
expect_code 400 PUT /api/v1/streams/cam1/zones -d '{"zones":[{"zone_id":"door","kind":"door","points":[[0,0],[1,0],[2,1]]}]}'
jq_body '.error.field == "zones[0].points[2]"'
expect_code 400 PUT /api/v1/streams/cam1/zones -d '{"zones":[{"zone_id":"d","kind":"sofa","points":[[0,0],[1,0],[1,1]]}]}'
jq_body '.error.field == "zones[0].kind"'
expect_code 404 PUT /api/v1/streams/nope/zones -d '{"zones":[]}'
expect_code 200 PUT /api/v1/streams/cam1/zones -d '{"zones":[{"zone_id":"door","kind":"door","points":[[0,0],[0.2,0],[0.2,1]]},{"zone_id":"bed","kind":"bed","points":[[0.5,0.5],[1,0.5],[1,1],[0.5,1]]}]}'
expect_code 200 GET /api/v1/streams/cam1
jq_body '[.zones[].zone_id] == ["door","bed"] and .room_id == "r1"'
mosquitto_pub $P -t care/control/ev1/cam2 -m '{"command":"set_zones","command_id":"z-1","params":{"zones":[{"zone_id":"b","kind":"bed","points":[[0,0],[1,0]]}]}}'
wait_for 5 grep -q '"command_id":"z-1".*"status":"rejected".*"field":"zones\[0\].points"' "$T/acks.log" ||
    fail "MQTT set_zones with 2 points not rejected naming the field: $(grep z-1 "$T/acks.log")"
mosquitto_pub $P -t care/control/ev1/cam2 -m '{"command":"set_zones","command_id":"z-2","params":{"zones":[{"zone_id":"chair","kind":"chair","points":[[0,0],[0.3,0],[0.3,0.3]]}]}}'
wait_for 5 grep -q '"command_id":"z-2".*"status":"completed"' "$T/acks.log" || fail "MQTT set_zones not completed"
wait_for 5 jq -e '[.streams[] | select(.stream_id == "cam2") | .zones[].zone_id] == ["chair"]' "$T/state.json" ||
    fail "zones not persisted: $(cat "$T/state.json")"
expect_code 400 POST /api/v1/streams -d "{\"stream_id\":\"cam3\",\"url\":\"$CLIP\",\"zones\":[{\"zone_id\":\"b\",\"kind\":\"bed\",\"points\":[[0,0],[1,0],[1,-1]]}]}"
jq_body '.error.field == "zones[0].points[2]"'
expect_code 201 POST /api/v1/streams -d "{\"stream_id\":\"cam3\",\"url\":\"$CLIP\",\"room_id\":\"r1\",\"workers\":[{\"type\":\"motion_detector\"}],\"zones\":[{\"zone_id\":\"b\",\"kind\":\"bed\",\"points\":[[0,0],[1,0],[1,1]]}],\"events\":{\"bed_exit\":{\"enabled\":true,\"schedule\":\"21:00-07:00\"}}}"
wait_for 5 jq -e '[.streams[] | select(.stream_id == "cam3")][0] | .room_id == "r1" and .zones[0].zone_id == "b" and .events.bed_exit.enabled == true' "$T/state.json" ||
    fail "add_stream's care keys not persisted: $(jq -c '.streams[] | select(.stream_id == "cam3")' "$T/state.json")"
expect_code 200 DELETE /api/v1/streams/cam3
pass "zones over REST and MQTT: bad ones rejected naming the field, good ones applied and persisted"

# ---- privacy: skeleton ----
wait_for 10 sh -c "curl -sf -o '$T/cam2.jpg' $URL/api/v1/streams/cam2/snapshot.jpg" || fail "no cam2 snapshot"
wait_for 10 sh -c "curl -sf -o '$T/cam1.jpg' $URL/api/v1/streams/cam1/snapshot.jpg" || fail "no cam1 snapshot"
# plain PCT ZONE: the share of pixels of the plain background (grey 96), and of zone lines
plain() { ffmpeg -v error -nostdin -i "$1" -f rawvideo -pix_fmt gray - |
    $PY -c 'import sys; d=sys.stdin.buffer.read(); print(sum(abs(v-96)<=12 for v in d)*100//len(d), sum(abs(v-96)>40 for v in d))'; }
read -r p1 _ < <(plain "$T/cam1.jpg")
read -r p2 z2 < <(plain "$T/cam2.jpg")
[ "$p1" -lt 50 ] || fail "cam1 (masks mode) should show the picture: $p1% plain"
[ "$p2" -ge 97 ] || fail "cam2 (privacy skeleton) shows the picture: only $p2% plain"
[ "$z2" -gt 100 ] || fail "cam2 (privacy skeleton) does not show its chair zone: $z2 pixels drawn"
expect_code 200 GET /api/v1/streams/cam2
jq_body '.privacy == "skeleton"'
pass "privacy skeleton: the snapshot is a plain background with the zones ($p2% plain, $z2 zone pixels; the picture $p1%)"

# ---- restart: zones from the state file, events from the journal with their acks ----
term_within "$VPID" 8000
: >"$T/events.log"
start_vigild "$T/vigil.yaml" vigild2
expect_code 200 GET /api/v1/streams/cam1
jq_body '[.zones[].zone_id] == ["door","bed"]'
expect_code 200 GET /api/v1/streams/cam2
jq_body '[.zones[].zone_id] == ["chair"]'
wait_for 10 sh -c "curl -s '$URL/api/v1/events/$FALL' | jq -e '.acked_by == \"nurse-ann\" and .ended_at == null'" ||
    fail "after restart: $(curl -s "$URL/api/v1/events/$FALL")"
wait_for 10 grep -q "\"event_id\":\"$FALL\".*\"reason\":\"restored\"" "$T/events.log" ||
    fail "not announced again after the restart"
mosquitto_sub $P -t care/alarms/ev1 -C 1 -W 3 | jq -e '. == []' >/dev/null ||
    fail "acked events back in the alarms after the restart"
pass "restart: zones persisted, open events restored with their acks"

# ---- SIGHUP: a stream's zones apply live; the journal's keys need a restart ----
write_cfg "[{zone_id: floor, kind: floor, points: [[0, 0.5], [1, 0.5], [1, 1]]}]"
echo "events_file_max_mb: 8" >>"$T/vigil.yaml"
kill -HUP "$VPID"
wait_for 5 grep -q '"event":"config_reloaded"' "$T/vigild2.log" || fail "no reload"
expect_code 200 GET /api/v1/streams/cam1
jq_body '[.zones[].zone_id] == ["floor"]'
grep '"event":"config_needs_restart"' "$T/vigild2.log" | jq -e '.keys | index("events_file_max_mb") != null' >/dev/null ||
    fail "events_file_max_mb not reported as restart-only"
pass "SIGHUP: zones applied live, events_file_max_mb needs a restart"
