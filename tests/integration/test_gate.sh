#!/usr/bin/env bash
# The motion gate in front of the person detector: on a still camera the detector runs
# once per refresh_s and every other sampled frame republishes its detections; a room
# whose picture moves opens the gate between refreshes; enabled: false runs it on every
# frame; a parameter change re-runs it at once; bad gate settings are refused by field.
. "$(dirname "$0")/lib.sh"

STILL=$(CLIP_SECONDS=6 CLIP_PAN_SECONDS=0 clip person-still person.jpg 640x360 15 1)
ROOM=$(CLIP_SECONDS=8 CLIP_PAN_SECONDS=4 clip person-room person.jpg 640x360 15 1)
HTTP_PORT=$(free_port)
gated() { echo "[{type: person_detector, spec: {model_id: body, motion_gate: $1}}]"; }
cat >"$T/vigil.yaml" <<YAML
instance_id: gatetest
capture: {allow_files: true} # the streams read clip files
log: {level: debug}
mqtt: {enabled: false}
http: {listen: 127.0.0.1:$HTTP_PORT}
models_dir: $SHARED/models
models:
  - {model_id: body, config: yolo-fastest-1.1_body.cfg, weights: yolo-fastest-1.1_body.weights, labels: body.names}
inference: {threads: 2}
streams:
  - {stream_id: still, url: $STILL, fps: 2, workers: $(gated "{refresh_s: 3}")}
  - {stream_id: room, url: $ROOM, fps: 2, workers: $(gated "{refresh_s: 30}")}
  - {stream_id: always, url: $STILL, fps: 2, workers: $(gated "{enabled: false}")}
YAML
start_vigild "$T/vigil.yaml"

results() { grep '"event":"inference"' "$T/vigild.log" | jq -c "select(.stream_id == \"$1\") | .result"; }
sleep 14
for s in still room always; do results "$s" >"$T/$s.jsonl"; done

# still: a result for every sampled frame, the person in each, the detector on few
n=$(wc -l <"$T/still.jsonl")
ran=$(jq -s '[.[] | select(.detector_ran)] | length' "$T/still.jsonl")
[ "$n" -ge 20 ] || fail "still: $n results in 14 s at 2 fps"
[ "$ran" -ge 3 ] && [ "$ran" -le $((n / 3)) ] || fail "still: the detector ran on $ran of $n frames"
jq -s -e 'all(.[]; .person_count >= 1 and (.detections | length) == .person_count)' \
    "$T/still.jsonl" >/dev/null || fail "still: a result without the person"
# republished results carry the detections and detected_at of the last run, and the
# view change that kept the gate shut
jq -s -e 'reduce .[] as $r ({ok: true, last: null};
      if $r.detector_ran then {ok: (.ok and $r.detected_at == $r.captured_at), last: $r}
      elif .last == null then .
      else {ok: (.ok and $r.detected_at == .last.captured_at and $r.detections == .last.detections
                 and $r.view_change < 0.003), last: .last} end) | .ok' \
    "$T/still.jsonl" >/dev/null || fail "still: republished results differ from the last run"
# the detector runs at least every refresh_s (3 s) of stream time
gap=$(jq -rs '[.[] | select(.detector_ran) | .captured_at | sub("\\.[0-9]+Z$"; "Z") | fromdate]
      | [range(1; length) as $i | .[$i] - .[$i - 1]] | max' "$T/still.jsonl")
[ "$gap" -le 4 ] || fail "still: $gap s between two runs of the detector (refresh_s 3)"
skipped=$(metric vigil_detector_skipped_total 'stream_id="still",worker="person_detector"')
[ "${skipped%.*}" -ge $((n - ran)) ] || fail "still: skipped metric $skipped < $((n - ran))"
pass "still camera: detector on $ran of $n frames, every result carries the person"

# room: the pan opens the gate between refreshes (refresh_s 30 never comes due)
ran=$(jq -s '[.[] | select(.detector_ran)] | length' "$T/room.jsonl")
n=$(wc -l <"$T/room.jsonl")
[ "$ran" -ge 4 ] && [ "$ran" -lt "$n" ] || fail "room: the detector ran on $ran of $n frames"
jq -s -e 'all(.[]; .person_count >= 1)' "$T/room.jsonl" >/dev/null || fail "room: person lost"
pass "moving room: detector on $ran of $n frames"

# gate disabled: every frame runs the detector
jq -s -e 'length >= 20 and all(.[]; .detector_ran and (has("view_change") | not))' \
    "$T/always.jsonl" >/dev/null || fail "always: a frame without a detector run"

# a new threshold re-runs the detector on the next frame, refresh or not
expect_code 200 GET /api/v1/streams/still
jq_body '.workers[0].motion_gate == {"enabled": true, "min_change": 0.003, "refresh_s": 3}'
J=(-H 'Content-Type: application/json')
expect_code 200 PATCH /api/v1/streams/still "${J[@]}" -d '{"confidence_threshold":1.0}'
t0=$(date +%s%N)
wait_for 5 sh -c "curl -sf $URL/api/v1/streams/still/detections | jq -e '.results[0].person_count == 0'" ||
    fail "still: the new threshold did not re-run the detector"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$ms" -lt 1500 ] || fail "still: the new threshold took $ms ms (refresh_s is 3 s)"
pass "threshold change re-ran the detector after $ms ms"

# bad gate settings: refused by field, the daemon and the other streams unharmed
add() { http_code POST /api/v1/streams "${J[@]}" -d "{\"stream_id\":\"bad\",\"url\":\"$STILL\",\"workers\":[{\"type\":\"person_detector\",\"spec\":{\"model_id\":\"body\",\"motion_gate\":$1}}]}"; }
for bad in '{"min_change":2}' '{"refresh_s":0}' '{"enabled":"maybe"}' '{"every":3}' '5'; do
    code=$(add "$bad")
    [ "$code" = 400 ] || fail "motion_gate $bad gave $code"
    jq -e '.error.field | test("motion_gate")' "$T/body" >/dev/null ||
        fail "motion_gate $bad: error does not name the field: $(cat "$T/body")"
done
expect_code 201 POST /api/v1/streams "${J[@]}" -d "{\"stream_id\":\"good\",\"url\":\"$STILL\",\"fps\":1,\"workers\":[{\"type\":\"person_detector\",\"spec\":{\"model_id\":\"body\",\"motion_gate\":{\"min_change\":0.01,\"refresh_s\":10}}}]}"
expect_code 200 GET /api/v1/streams/good
jq_body '.workers[0].motion_gate == {"enabled": true, "min_change": 0.01, "refresh_s": 10}'
cat >"$T/bad.yaml" <<YAML
streams:
  - {stream_id: x, url: $STILL, workers: [{type: person_detector, spec: {motion_gate: {min_change: -1}}}]}
YAML
if "$BUILD/vigild" --check-config -c "$T/bad.yaml" 2>"$T/bad.err"; then fail "bad gate accepted"; fi
grep -q 'motion_gate.min_change' "$T/bad.err" || fail "config error does not name the key: $(cat "$T/bad.err")"
kill -0 "$VPID" || fail "vigild died"
term_within "$VPID" 5000
pass "bad gate settings refused by field"
