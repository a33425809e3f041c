#!/usr/bin/env bash
# Sharding (Kubernetes: one StatefulSet pod per shard): three daemons with the same
# 12 streams and shard.count 3, each taking shard.index (and instance_id) from the
# environment like a pod does from its ordinal, run every stream exactly once between
# them. Going to 4 shards moves only the streams the new shard takes (rendezvous
# hashing): a minority, and none between the old shards.
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
