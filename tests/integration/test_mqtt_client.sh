#!/usr/bin/env bash
# The MQTT client (src/mqtt.c) against a real broker, through tests/mqtt_client_driver.c:
# connect by host name, echo on a subscribed topic, a QoS 1 sequence; broker frozen
# (PUBACKs stop, the in-flight window fills) then killed; outbox grows and overflows
# for a small-outbox client; broker restarted on the same port; reconnect, automatic
# resubscription, the unacknowledged messages re-sent and the outbox flushed in order
# without gaps; a message over 64 KiB passed through whole; metrics; the last will on kill -9; a graceful stop with a final message.
. "$(dirname "$0")/lib.sh"
require promtool command -v promtool

DRIVER=$BUILD/tests/vigil-mqtt-driver
[ -x "$DRIVER" ] || fail "driver not built: $DRIVER"
start_broker

sub() { mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" "$@"; }
pub() { mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" "$@"; }
# ready LOG TOPIC TAG: publishes a probe and looks for it in $T/LOG.log (subscriber is up)
ready() { pub -t "$2" -m "probe-$3" && grep -q "probe-$3" "$T/$1.log"; }
# echo_ok TAG LOG: the driver echoes test/in to test/echo, seen by the subscriber LOG
TEST_ECHO_PREFIX='test/echo '
echo_ok() { pub -q 1 -t test/in -m "$1" && grep -qx "test/echo $1" "$T/$2.log"; }
last_stat() { grep '^stats' "$T/$1.log" | tail -1 | sed "s/.* $2=\([0-9]*\).*/\1/"; }
count() { grep -c "$1" "$2" || true; }
# predicates for wait_for (re-evaluated on every try)
stat_gt() { [ "$(last_stat "$1" "$2")" -gt "$3" ]; }
stat_is() { [ "$(last_stat "$1" "$2")" = "$3" ]; }
count_ge() { [ "$(count "$1" "$2")" -ge "$3" ]; }
status_is() { [ "$(sub -C 1 -W 2 -F "${3:-%p}" -t "$1")" = "$2" ]; }
# metrics LOG PID: asks the driver for its exposition, prints the last one
metrics() {
    local n; n=$(count '^metrics-end' "$T/$1.log")
    kill -USR1 "$2"
    wait_for 5 count_ge '^metrics-end' "$T/$1.log" $((n + 1)) || fail "$1: no metrics"
    awk '/^metrics-begin$/ { buf = ""; on = 1; next } /^metrics-end$/ { on = 0; out = buf }
         on && !/^[{]/ && !/^stats / { buf = buf $0 "\n" } END { printf "%s", out }' "$T/$1.log"
}

# ---- 1. connect (by name: resolved off the loop), echo, sequence ----------------------
bg sub1 sub -q 1 -v -t test/seq -t test/echo
SUB1=$LAST_PID
wait_for 5 ready sub1 test/echo a || fail "subscriber 1 not ready"

bg driver "$DRIVER" --host localhost --port "$MQTT_PORT" --client-id itest-drv --keepalive 5 \
    --backoff 0.2:0.5 --outbox 1000 --rate 20 --status-topic test/status/drv \
    --will-topic test/status/drv --will-payload '{"status":"offline"}'
DRV=$LAST_PID
bg small "$DRIVER" --port "$MQTT_PORT" --client-id itest-small --keepalive 5 --backoff 0.2:0.5 \
    --outbox 5 --rate 20 --sub test/in-small --echo test/echo-small --seq-topic test/seq-small
SMALL=$LAST_PID

wait_for 10 grep -q '"event":"connected"' "$T/driver.log" || fail "driver never connected"
grep -q '"event":"subscribe","topic":"test/in"' "$T/driver.log" || fail "no subscribe log"
wait_for 5 echo_ok ping-1 sub1 || fail "no echo"
wait_for 5 grep -qx 'test/seq 10' "$T/sub1.log" || fail "no sequence"
[ "$(sub -C 1 -W 3 -t test/status/drv)" = '{"status":"online"}' ] || fail "no retained online status"
pass "connects by host name; subscription, echo, QoS 1 sequence, retained status"

# ---- 2. broker frozen: no PUBACKs, the in-flight window fills, then the outbox ----------
kill -STOP "$BROKER_PID"
wait_for 5 grep -q 'inflight=20 ' "$T/driver.log" || fail "in-flight window never filled"
wait_for 5 stat_gt driver outbox 0 || fail "outbox did not start"
kill -KILL "$BROKER_PID"
wait_for 10 grep -q '"event":"disconnected"' "$T/driver.log" || fail "loss not detected"
kill -TERM "$SUB1"
LAST_SEEN=$(grep '^test/seq ' "$T/sub1.log" | tail -1 | cut -d' ' -f2)
sleep 3
grep -q '"event":"reconnect_scheduled"' "$T/driver.log" || fail "no reconnect scheduled"
grep -q '"event":"connect_failed"' "$T/driver.log" || fail "failed attempts not logged"
OUTBOX=$(last_stat driver outbox)
[ "$OUTBOX" -gt 40 ] || fail "outbox did not grow during the outage ($OUTBOX)"
[ "$(last_stat driver connected)" = 0 ] || fail "driver claims to be connected"
M=$(metrics small "$SMALL")
echo "$M" | grep -q '^vigil_mqtt_outbox_dropped_total{reason="overflow"} [1-9]' ||
    fail "small outbox: no overflow drops counted"
echo "$M" | grep -q '^vigil_mqtt_outbox_messages 5$' || fail "small outbox not at its limit"
grep -q '"event":"outbox_overflow"' "$T/small.log" || fail "overflow not logged"
pass "outage: 20 unacknowledged, outbox at $OUTBOX; a 5-message outbox drops and counts"

# ---- 3. broker back on the same port; a fresh subscriber is up before the driver -------
kill -STOP "$DRV" # hold the driver's reconnect until the new subscriber listens
bg mosquitto2 mosquitto -c "$T/mosquitto.conf"
BROKER_PID=$LAST_PID
wait_for 5 pub -t vigil/probe -m x || fail "broker did not restart"
bg sub2 sub -q 1 -v -t test/seq -t test/echo
wait_for 5 ready sub2 test/echo b || fail "subscriber 2 not ready"
PAUSED_AT=$(last_stat driver seq)
kill -CONT "$DRV"
wait_for 10 count_ge '"event":"connected"' "$T/driver.log" 2 || fail "no reconnect"
RESENT=$(grep '"event":"connected"' "$T/driver.log" | tail -1 | jq -r .unacknowledged)
[ "$RESENT" -gt 0 ] || fail "nothing was waiting for an ack at reconnect ($RESENT)"
wait_for 10 grep -qx "test/seq $((PAUSED_AT + 10))" "$T/sub2.log" ||
    fail "sequence did not get past the outage (paused at $PAUSED_AT)"
FIRST=$(grep '^test/seq ' "$T/sub2.log" | head -1 | cut -d' ' -f2)
[ "$FIRST" -le $((LAST_SEEN + 1)) ] ||
    fail "lost messages: subscriber 1 saw up to $LAST_SEEN, subscriber 2 starts at $FIRST"
awk '$1 == "test/seq" { if (n++ && $2 != prev + 1) { print "after " prev ": " $2; bad = 1 }
     prev = $2 } END { exit bad }' "$T/sub2.log" >"$T/gaps.txt" ||
    fail "sequence has gaps or reordering: $(head -3 "$T/gaps.txt")"
wait_for 5 echo_ok ping-2 sub2 || fail "no echo after reconnect (resubscription)"
head -c 150000 /dev/urandom | base64 -w0 >"$T/big.txt" # one ~200 KB line: over 64 KiB
BIG=$(($(wc -c <"$T/big.txt") + ${#TEST_ECHO_PREFIX}))
big_echoed() { awk -v n="$BIG" 'length($0) == n { f = 1 } END { exit !f }' "$T/sub2.log"; }
pub -q 1 -t test/in -f "$T/big.txt"
wait_for 5 big_echoed || fail "a message over 64 KiB was not passed through whole"
pass "reconnect: $RESENT re-sent, then the outbox, in order from $FIRST (last seen $LAST_SEEN)"
pass "resubscribed: echo works again, a ${BIG}-byte message passed through whole"

wait_for 10 stat_is driver outbox 0 || fail "outbox never drained"
M=$(metrics driver "$DRV")
echo "$M" >"$T/metrics.txt"
promtool check metrics <"$T/metrics.txt" >"$T/promtool.log" 2>&1 ||
    fail "promtool: $(cat "$T/promtool.log")"
for want in '^vigil_mqtt_connected 1$' '^vigil_mqtt_reconnects_total 1$' \
    '^vigil_mqtt_outbox_messages 0$' '^vigil_mqtt_messages_published_total{class="inference"} [1-9]' \
    '^vigil_mqtt_messages_published_total{class="control"} [1-9]' \
    '^vigil_mqtt_outbox_dropped_total{reason="overflow"} 0$'; do
    grep -q "$want" "$T/metrics.txt" || fail "metrics: no $want"
done
pass "metrics after recovery (promtool clean)"

# ---- 4. last will on kill -9; graceful stop publishes the final status -----------------
wait_for 5 status_is test/status/drv '{"status":"online"}' ||
    fail "status not republished after reconnect"
kill -KILL "$DRV"
wait_for 5 status_is test/status/drv '1 {"status":"offline"}' '%r %p' ||
    fail "no retained will after kill -9"
pass "last will: retained offline status after kill -9"

bg driver2 "$DRIVER" --port "$MQTT_PORT" --client-id itest-drv2 --keepalive 5 \
    --status-topic test/status/drv2 --will-topic test/status/drv2 \
    --will-payload '{"status":"offline"}' --sub test/in2 --echo test/echo2
DRV2=$LAST_PID
wait_for 10 grep -q '"event":"connected"' "$T/driver2.log" || fail "driver2 never connected"
wait_for 5 status_is test/status/drv2 '{"status":"online"}' || fail "driver2 status"
kill -TERM "$DRV2"
for _ in $(seq 50); do kill -0 "$DRV2" 2>/dev/null || break; sleep 0.1; done
kill -0 "$DRV2" 2>/dev/null && fail "graceful stop took over 5 s"
wait "$DRV2" || fail "driver2 exited with $?"
grep -q '"event":"stopped","clean":true' "$T/driver2.log" || fail "stop was not clean"
[ "$(sub -C 1 -W 2 -t test/status/drv2)" = '{"status":"offline","reason":"shutdown"}' ] ||
    fail "final status not delivered (or the will replaced it)"
pass "graceful stop: final message delivered, clean DISCONNECT, exit 0"
