#!/usr/bin/env bash
# Sharding (Kubernetes: one StatefulSet pod per shard): three daemons with the same
# 12 streams and shard.count 3, each taking shard.index (and instance_id) from the
# environment like a pod does from its ordinal, run every stream exactly once between
# them. Going to 4 shards moves only the streams the new shard takes (rendezvous
# hashing): a minority, and none between the old shards. Streams added at run time obey
# the shard too: add_stream (REST and MQTT) rejects another shard's stream
# (wrong_shard, field stream_id) and `enabled: false` (field enabled), and runs only
# what it accepted.
. "$(dirname "$0")/lib.sh"

N=12
streams=""
for i in $(seq 1 $N); do
    streams+="  - {stream_id: room-$((100 + i)), rtsp_url: \"rtsp://127.0.0.1:1/cam$i\", fps: 0.1}"$'\n'
done
# one text for every instance; only http.listen differs (pods each have their own IP)
write_cfg() { # COUNT PORT -> prints the path
    local f=$T/shard$1-$2.yaml
    cat >"$f" <<YAML
instance_id: \$VIGIL_INSTANCE
mqtt: {enabled: false}
http: {listen: 127.0.0.1:$2}
inference: {threads: 1}
capture: {reconnect_initial_s: 5, reconnect_max_s: 30}
shard: {index: \$VIGIL_SHARD_INDEX, count: $1}
streams:
$streams
YAML
    echo "$f"
}

# run_shards COUNT: starts COUNT daemons, writes "stream_id index" lines to $T/owners-COUNT,
# then stops them.
run_shards() {
    local count=$1 idx port cfg pids=()
    : >"$T/owners-$count"
    for idx in $(seq 0 $((count - 1))); do
        port=$(free_port)
        cfg=$(write_cfg "$count" "$port")
        [ "$idx" != 0 ] || VIGIL_SHARD_INDEX=0 VIGIL_INSTANCE=x "$BUILD/vigild" --check-config -c "$cfg" >/dev/null ||
            fail "config does not check"
        HTTP_PORT=$port VIGIL_SHARD_INDEX=$idx VIGIL_INSTANCE=vigil-$idx start_vigild "$cfg" "vigild-$count-$idx"
        pids+=("$VPID")
        curl -sf "$URL/api/v1/info" | jq -e ".instance_id == \"vigil-$idx\"" >/dev/null || fail "instance_id from env"
        curl -sf "$URL/api/v1/streams" | jq -r ".streams[].stream_id + \" $idx\"" >>"$T/owners-$count"
    done
    for p in "${pids[@]}"; do kill -TERM "$p"; done
    for p in "${pids[@]}"; do wait "$p" || fail "vigild exited with $?"; done
}

run_shards 3
total=$(wc -l <"$T/owners-3")
distinct=$(cut -d' ' -f1 "$T/owners-3" | sort -u | wc -l)
[ "$total" = $N ] && [ "$distinct" = $N ] || fail "3 shards ran $total streams ($distinct distinct), want $N exactly once"
echo "# 3 shards: $(cut -d' ' -f2 "$T/owners-3" | sort | uniq -c | awk '{ printf "shard %s: %s  ", $2, $1 }')"
for idx in 0 1 2; do
    grep -q " $idx\$" "$T/owners-3" || fail "shard $idx got no stream"
done

run_shards 4
[ "$(cut -d' ' -f1 "$T/owners-4" | sort -u | wc -l)" = $N ] && [ "$(wc -l <"$T/owners-4")" = $N ] ||
    fail "4 shards do not cover every stream once"
moved=$(join <(sort "$T/owners-3") <(sort "$T/owners-4") | awk '$2 != $3' | wc -l)
between_old=$(join <(sort "$T/owners-3") <(sort "$T/owners-4") | awk '$2 != $3 && $3 != 3' | wc -l)
echo "# 3 -> 4 shards: $moved of $N streams moved (ideal: $((N / 4))), all to the new shard: $([ "$between_old" = 0 ] && echo yes || echo no)"
[ "$moved" -ge 1 ] && [ $((moved * 2)) -lt $N ] || fail "$moved of $N streams moved: not a minority"
[ "$between_old" = 0 ] || fail "$between_old streams moved between old shards"
pass "3 shards cover $N streams exactly once; 3 -> 4 moves $moved"

# ---- add_stream at run time: shard 0 of 3, no streams in its file, commands over REST and MQTT
start_broker
HTTP_PORT=$(free_port)
cat >"$T/add.yaml" <<YAML
instance_id: vigil-0
mqtt: {host: 127.0.0.1, port: $MQTT_PORT, qos: 1}
http: {listen: 127.0.0.1:$HTTP_PORT}
inference: {threads: 1}
capture: {reconnect_initial_s: 5, reconnect_max_s: 30}
shard: {index: 0, count: 3}
YAML
bg sub stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -v -t "care/control/vigil-0/ack"
sleep 0.3
start_vigild "$T/add.yaml" vigild-add
mine=$(awk '$2 == 0 { print $1 }' "$T/owners-3")
theirs=$(awk '$2 != 0 { print $1 }' "$T/owners-3")
# final_ack ID: the final MQTT ack of a command
final_ack() {
    wait_for 15 sh -c "cut -d' ' -f2- $T/sub.log | jq -s -e 'any(.command_id == \"$1\" and .status != \"received\")'" ||
        fail "no final ack for $1"
    cut -d' ' -f2- "$T/sub.log" | jq -c "select(.command_id == \"$1\" and .status != \"received\")" | tail -1
}
body() { echo "{\"stream_id\":\"$1\",\"url\":\"rtsp://127.0.0.1:1/x\",\"fps\":0.1$2}"; }
n=0
for id in $mine $theirs; do
    n=$((n + 1))
    if grep -qx "$id" <<<"$mine"; then want=completed code=null field=null; else want=rejected code='"wrong_shard"' field='"stream_id"'; fi
    if [ $((n % 2)) = 0 ]; then # over REST
        if [ "$want" = completed ]; then status=201; else status=409; fi
        expect_code "$status" POST /api/v1/streams -H 'Content-Type: application/json' -d "$(body "$id" "")"
        [ "$want" = completed ] || jq_body ".error.code == $code and .error.field == $field"
    else # over MQTT
        mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t care/control/vigil-0 \
            -m "{\"command\":\"add_stream\",\"command_id\":\"add-$id\",\"params\":$(body "$id" "")}"
        final_ack "add-$id" | jq -e ".status == \"$want\" and .error.code? == $code and .error.field? == $field" >/dev/null ||
            fail "add_stream $id over MQTT: $(final_ack "add-$id"), want $want $code"
    fi
done
# enabled: false is not a stream to run, over either door
first=$(head -n1 <<<"$mine")
curl -sf -X DELETE "$URL/api/v1/streams/$first" >/dev/null || fail "remove $first"
expect_code 400 POST /api/v1/streams -H 'Content-Type: application/json' -d "$(body "$first" ',"enabled":false')"
jq_body '.error.code == "invalid_param" and .error.field == "enabled"'
mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t care/control/vigil-0 \
    -m "{\"command\":\"add_stream\",\"command_id\":\"off-1\",\"params\":$(body "$first" ',"enabled":false')}"
final_ack off-1 | jq -e '.status == "rejected" and .error.code == "invalid_param" and .error.field == "enabled"' >/dev/null ||
    fail "enabled false over MQTT: $(final_ack off-1)"
running=$(curl -sf "$URL/api/v1/streams" | jq -r '.streams[].stream_id' | sort)
[ "$running" = "$(grep -vx "$first" <<<"$mine" | sort)" ] || fail "running streams: $running; want shard 0's minus $first"
pass "add_stream: $(wc -w <<<"$mine") of shard 0's streams accepted, $(wc -w <<<"$theirs") of other shards' rejected (wrong_shard), enabled false rejected; REST and MQTT"
