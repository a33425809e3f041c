#!/usr/bin/env bash
# Hand-offs between threads cannot dangle (issue 13, defects 1 and 8), against the real
# daemon and camsim; CI also runs it on the ASan build, where a use-after-free aborts.
# 1. snapshot.jpg hammered while the stream is removed and re-added, then during SIGTERM:
#    every request is answered (200, 404 or 503), the daemon lives and exits 0.
# 2. DELETE X, POST X, DELETE X in a burst, repeated: the first stream's reap must not
#    free the metric series the second still writes to; at the end X's series are gone.
# 3. results of a removed stream are never applied to a re-added one of the same id:
#    X re-added without workers must have no result, ever.
. "$(dirname "$0")/lib.sh"

CLIP=$(clip person-640 person.jpg 640x360 15 1)
start_camsim --count 2 --clip "$CLIP"
CAM=rtsp://127.0.0.1:$RTSP_PORT
HTTP_PORT=$(free_port)
cat >"$T/vigil.yaml" <<YAML
instance_id: handoffs
mqtt: {enabled: false}
http: {listen: 127.0.0.1:$HTTP_PORT, max_connections: 256}
inference: {threads: 1}
streams:
  - {stream_id: other, rtsp_url: "$CAM/cam1", fps: 2, workers: [{type: motion_detector}]}
YAML
start_vigild "$T/vigil.yaml"
J=(-H "Content-Type: application/json")
# X: busy enough that the single executor is mid-frame when X goes (HOG on 640x360)
ADD_X="{\"stream_id\": \"x\", \"rtsp_url\": \"$CAM/cam0\", \"fps\": 15,
        \"workers\": [{\"type\": \"person_detector\", \"spec\": {\"model_id\": \"builtin-hog\", \"motion_gate\": {\"enabled\": false}}},
                      {\"type\": \"motion_detector\"}]}"
# X for snapshots: a cheap worker, so its reap is quick while the snapshot queue is deep
ADD_X_SNAP="{\"stream_id\": \"x\", \"rtsp_url\": \"$CAM/cam0\", \"fps\": 15,
        \"workers\": [{\"type\": \"motion_detector\"}]}"
ADD_X_IDLE="{\"stream_id\": \"x\", \"rtsp_url\": \"$CAM/cam0\", \"fps\": 15, \"workers\": []}"
alive() { kill -0 "$VPID" 2>/dev/null || fail "vigild died (see vigild.log)"; }

# hammer N: N parallel loops of snapshot requests; every status goes to $T/codes
hammer() {
    for _ in $(seq "$1"); do
        (while [ ! -e "$T/stop" ]; do
            curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 \
                "$URL/api/v1/streams/x/snapshot.jpg" >>"$T/codes" || echo 000 >>"$T/codes"
        done) &
        PIDS+=("$!")
        HAMMERS+=("$!")
    done
}

# stop_hammer: asks the loops to stop and waits for them
stop_hammer() {
    touch "$T/stop"
    for p in "${HAMMERS[@]}"; do wait "$p" 2>/dev/null || true; done
    HAMMERS=()
    rm -f "$T/stop"
}
HAMMERS=()

# ---- 1. snapshots while X is removed and re-added ------------------------------------------
expect_code 201 POST /api/v1/streams "${J[@]}" -d "$ADD_X_SNAP"
wait_for 20 sh -c "curl -sf -o /dev/null $URL/api/v1/streams/x/snapshot.jpg" || fail "no snapshot of x"
hammer 32 # a deep queue: frames get superseded while their job waits, so jobs retry
for i in $(seq 6); do
    wait_for 10 sh -c "curl -sf -o /dev/null $URL/api/v1/streams/x/snapshot.jpg" || true
    sleep 1
    expect_code 200 DELETE /api/v1/streams/x
    sleep 0.2
    expect_code 201 POST /api/v1/streams "${J[@]}" -d "$ADD_X_SNAP"
    alive
done
stop_hammer
alive
bad=$(grep -cvE '^(200|404|503)$' "$T/codes" || true)
[ "$bad" = 0 ] || fail "snapshot statuses: $(sort "$T/codes" | uniq -c | tr '\n' ' ')"
grep -q '^200$' "$T/codes" || fail "no snapshot succeeded"
pass "snapshots while x is removed and re-added: $(sort "$T/codes" | uniq -c | tr '\n' ' ')"

# ---- 2. DELETE X, POST X, DELETE X ------------------------------------------------------------
for i in $(seq 6); do
    curl -sf -o /dev/null -X DELETE "$URL/api/v1/streams/x" \
        --next -sf -o /dev/null -X POST "${J[@]}" -d "$ADD_X" "$URL/api/v1/streams" \
        --next -sf -o /dev/null -X DELETE "$URL/api/v1/streams/x" \
        --next -sf -o /dev/null -X POST "${J[@]}" -d "$ADD_X" "$URL/api/v1/streams" ||
        fail "burst $i refused"
    sleep 0.2
    alive
done
expect_code 200 DELETE /api/v1/streams/x
wait_for 10 sh -c "! curl -s $URL/metrics | grep -q 'stream_id=\"x\"'" ||
    fail "series of x left after its removal: $(curl -s "$URL/metrics" | grep 'stream_id="x"' | head -3)"
[ -n "$(metric vigil_stream_state 'stream_id="other",state="running"')" ] ||
    fail "series of another stream went with x"
pass "DELETE X, POST X, DELETE X: no series freed under a live stream, none left behind"

# ---- 3. a re-added X never shows the old X's results ------------------------------------------
for i in $(seq 5); do
    expect_code 201 POST /api/v1/streams "${J[@]}" -d "$ADD_X"
    wait_for 20 sh -c "curl -sf $URL/api/v1/streams/x/detections | jq -e '.results | length > 0'" ||
        fail "no result for x"
    sleep 2.$((RANDOM % 10)) # the executor is mid-frame (HOG) when x goes
    curl -sf -o /dev/null -X DELETE "$URL/api/v1/streams/x" \
        --next -sf -o /dev/null -X POST "${J[@]}" -d "$ADD_X_IDLE" "$URL/api/v1/streams" ||
        fail "re-add $i refused"
    sleep 1
    code=$(http_code GET /api/v1/streams/x/detections)
    [ "$code" = 404 ] || fail "re-added x (no workers) shows results: $(head -c 300 "$T/body")"
    jq_body '.error.code == "no_result"'
    expect_code 200 DELETE /api/v1/streams/x
    alive
done
pass "results of a removed stream are not applied to a re-added one"

# ---- 4. SIGTERM while snapshots are being encoded ---------------------------------------------
expect_code 201 POST /api/v1/streams "${J[@]}" -d "$ADD_X_SNAP"
wait_for 20 sh -c "curl -sf -o /dev/null $URL/api/v1/streams/x/snapshot.jpg" || fail "no snapshot of x"
hammer 16 # the stream's frames get superseded while jobs wait
sleep 1
stop_hammer
: >"$T/codes"
BURST=()
for i in $(seq 48); do # a burst in flight at SIGTERM: queued jobs, suspended requests
    curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 \
        "$URL/api/v1/streams/x/snapshot.jpg" >>"$T/codes" &
    BURST+=("$!")
done
sleep 1 # every curl connected (48 of them on a loaded machine), most still queued
term_within "$VPID" 8000
for p in "${BURST[@]}"; do wait "$p" || true; done
grep -q 'AddressSanitizer' "$T/vigild.log" && fail "ASan report"
bad=$(grep -cvE '^(200|404|503)$' "$T/codes" || true) # 404: x removed by the drain
[ "$bad" = 0 ] || fail "requests in flight at SIGTERM: $(sort "$T/codes" | uniq -c | tr '\n' ' ')"
pass "SIGTERM during snapshots: exit 0 in $STOP_MS ms; in flight: $(sort "$T/codes" | uniq -c | tr '\n' ' ')"
