#!/usr/bin/env bash
# Care-event delivery through the MQTT client (src/mqtt.c, mqtt_events.c, outbox.c),
# driven by tests/mqtt_client_driver.c against a real broker, before the event rules
# are wired: events published while the broker is frozen (handed to libmosquitto,
# unacknowledged) and while it is dead, under an inference flood far past the outbox
# limit; the broker restarted without persistence. Every event arrives (QoS 1: at
# least once, deduplicated by event_id here), none missing, in order, ahead of the
# queued inference messages; the retained alarms hold the newest value set while
# offline, are published again after a reconnect to a broker that lost them, and a
# late subscriber sees them at once (within 5 s of the broker's return, production
# backoff); events dropped only when the outbox holds nothing but events, counted.
. "$(dirname "$0")/lib.sh"

DRIVER=$BUILD/tests/vigil-mqtt-driver
[ -x "$DRIVER" ] || fail "driver not built: $DRIVER"
for tool in mosquitto mosquitto_sub mosquitto_pub jq; do
    command -v "$tool" >/dev/null || fail "$tool is missing"
done
start_broker

EV=care/events/inst1
AL=care/alarms/inst1
sub() { mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" "$@"; }
pub() { mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" "$@"; }
count() { grep -c "$1" "$2" || true; }
count_ge() { [ "$(count "$1" "$2")" -ge "$3" ]; }
last_stat() { grep '^stats' "$T/$1.log" | tail -1 | sed "s/.* $2=\([0-9]*\).*/\1/"; }
stat_is() { [ "$(last_stat "$1" "$2")" = "$3" ]; }
# ready LOG: a probe on the events topic reached the subscriber logging to LOG
ready() { pub -t "$EV/probe" -m "probe-$1" && grep -q "probe-$1" "$T/$1.log"; }
# cmd LINE: one driver command through its FIFO; waits for its answer, requires rc=0
cmd() {
    local n; n=$(count '^cmd-done' "$T/driver.log")
    printf '%s\n' "$1" >"$T/cmd"
    wait_for 5 count_ge '^cmd-done' "$T/driver.log" $((n + 1)) || fail "no answer to '$1'"
    grep '^cmd-done' "$T/driver.log" | tail -1 | grep -q 'rc=0$' ||
        fail "'$1' refused: $(grep '^cmd-done' "$T/driver.log" | tail -1)"
}
event() { cmd "event room-${2:-1} {\"event_id\":\"ev-$1\",\"type\":\"fall\",\"phase\":\"start\"}"; }
# event ids seen by the subscribers whose logs are given, in arrival order per log
ids() { cat "$@" | sed -n "s|^$EV/[^ ]* .*\"event_id\":\"\(ev-[0-9]*\)\".*|\1|p"; }
all_seen() { # all_seen N LOGS...: ev-1..ev-N all arrived
    local n=$1; shift
    [ "$(ids "$@" | sort -u | grep -c .)" -ge "$n" ] &&
        [ -z "$(comm -23 <(seq -f 'ev-%g' 1 "$n" | sort) <(ids "$@" | sort -u))" ]
}
metrics() {
    local n; n=$(count '^metrics-end' "$T/$1.log")
    kill -USR1 "$2"
    wait_for 5 count_ge '^metrics-end' "$T/$1.log" $((n + 1)) || fail "$1: no metrics"
    awk '/^metrics-begin$/ { buf = ""; on = 1; next } /^metrics-end$/ { on = 0; out = buf }
         on && /^vigil_/ { buf = buf $0 "\n" } END { printf "%s", out }' "$T/$1.log"
}
alarms_are() { [ "$(sub -C 1 -W 1 -t "$AL" -F '%r %p')" = "1 $1" ]; }

# ---- 1. connected: events and the alarms go straight out --------------------------------
mkfifo "$T/cmd"
# subscribers run as themselves (not through the sub function) so that kill reaches them
bg sub1 mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -v -t "$EV/#" -t "$AL" -t test/flood
SUB1=$LAST_PID
wait_for 5 ready sub1 || fail "subscriber 1 not ready"
# production backoff (0.5 s doubling, probes at most 3 s apart); the flood comes from
# the FIFO only (the periodic sequence is all but off)
bg driver "$DRIVER" --port "$MQTT_PORT" --client-id itest-events --keepalive 5 \
    --backoff 0.5:3 --outbox 50 --event-reserve 100 --rate 0.001 --seq-topic test/flood \
    --instance inst1 --prefix care --cmd-fifo "$T/cmd"
DRV=$LAST_PID
wait_for 10 grep -q '"event":"connected"' "$T/driver.log" || fail "driver never connected"
for i in 1 2 3; do event $i; done
cmd 'alarms ["ev-1"]'
wait_for 5 all_seen 3 "$T/sub1.log" || fail "events 1-3 did not arrive: $(ids "$T/sub1.log")"
wait_for 5 grep -qx "$AL \[\"ev-1\"\]" "$T/sub1.log" || fail "alarms not published"
grep -q "^$EV/room-1 {\"event_id\":\"ev-1\"" "$T/sub1.log" || fail "event topic or payload wrong"
alarms_are '["ev-1"]' || fail "alarms not retained"
pass "connected: events on $EV/{stream_id}, retained alarms on $AL"

# ---- 2. broker frozen: events handed over and unacknowledged, then an inference flood --
kill -STOP "$BROKER_PID"
for i in 4 5 6 7 8; do event $i 2; done
cmd 'flood 100'
wait_for 5 grep -q 'inflight=20 events=5$' "$T/driver.log" ||
    fail "window not full with 5 unacknowledged events: $(grep '^stats' "$T/driver.log" | tail -1)"
kill -KILL "$BROKER_PID"
wait_for 15 grep -q '"event":"disconnected"' "$T/driver.log" || fail "loss not detected"
kill -TERM "$SUB1"
wait "$SUB1" 2>/dev/null || true

# ---- 3. broker dead: more events, two alarms values, a bigger flood --------------------
for i in $(seq 9 20); do event $i 3; done
cmd 'alarms ["ev-1","ev-9"]'
cmd 'flood 300'
cmd 'alarms ["ev-9","ev-20"]'
wait_for 5 stat_is driver events 18 ||
    fail "events pending: want 5 unacknowledged + 12 queued + alarms: $(grep '^stats' "$T/driver.log" | tail -1)"
M=$(metrics driver "$DRV")
echo "$M" | grep -q '^vigil_mqtt_outbox_dropped_by_class_total{class="inference"} [1-9]' ||
    fail "the flood did not overflow the outbox"
echo "$M" | grep -q '^vigil_mqtt_outbox_dropped_by_class_total{class="event"} 0$' ||
    fail "an event was dropped: $(echo "$M" | grep by_class)"
echo "$M" | grep -q '^vigil_mqtt_events_pending 18$' || fail "events_pending gauge"
[ "$(last_stat driver outbox)" = 63 ] || fail "outbox: want 50 shared + 13 events ($(last_stat driver outbox))"
pass "outage: 5 events unacknowledged, 13 queued in the events' reserve, 350 inference past the limit dropped"

# ---- 4. broker back (state lost); a fresh subscriber listens before the driver returns --
kill -STOP "$DRV"
bg mosquitto2 mosquitto -c "$T/mosquitto.conf"
BROKER_PID=$LAST_PID
wait_for 5 pub -t vigil/probe -m x || fail "broker did not restart"
bg sub2 mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -v -t "$EV/#" -t "$AL" -t test/flood
wait_for 5 ready sub2 || fail "subscriber 2 not ready"
kill -CONT "$DRV"
T0=$(date +%s%N)
wait_for 10 all_seen 20 "$T/sub1.log" "$T/sub2.log" ||
    fail "events missing: $(comm -23 <(seq -f 'ev-%g' 1 20 | sort) <(ids "$T"/sub[12].log | sort -u) | tr '\n' ' ')"
MS=$((($(date +%s%N) - T0) / 1000000))
TOTAL=$(ids "$T/sub1.log" "$T/sub2.log" | grep -c .)
# in order: libmosquitto's re-sends (4-8) first, then the outbox's events (9-20)
ORDER=$(ids "$T/sub2.log" | awk '!seen[$0]++' | tr '\n' ' ')
[ "$ORDER" = "$(seq -f 'ev-%g' 4 20 | tr '\n' ' ')" ] || fail "events out of order after reconnect: $ORDER"
# ahead of the queued inference: before the last event only the re-sent window's
# inference messages (at most 20) may arrive, not the outbox's 50
BEFORE=$(awk -v ev="$EV/" 'index($0, ev) == 1 && /"ev-20"/ { print n + 0; exit }
         $1 == "test/flood" { n++ }' "$T/sub2.log")
[ "$BEFORE" -le 20 ] || fail "$BEFORE inference messages went out before the last event"
wait_for 10 grep -qx 'test/flood f400' "$T/sub2.log" || fail "the flood's newest message never arrived"
wait_for 5 alarms_are '["ev-9","ev-20"]' || fail "alarms: not the newest value set offline"
grep -q "^$AL \[\"ev-1\",\"ev-9\"\]" "$T/sub2.log" && fail "a superseded alarms value was published"
wait_for 10 stat_is driver events 0 || fail "events still pending"
pass "reconnect: all 20 events within ${MS} ms (${TOTAL} deliveries incl. duplicates), in order, $BEFORE inference messages ahead of them"
pass "alarms: the newest value set offline is retained, the superseded one never sent"

# ---- 5. broker restarted again, nothing set meanwhile: the alarms come back by themselves
kill -KILL "$BROKER_PID"
wait_for 15 count_ge '"event":"disconnected"' "$T/driver.log" 2 || fail "second loss not detected"
sleep 1
bg mosquitto3 mosquitto -c "$T/mosquitto.conf"
BROKER_PID=$LAST_PID
T0=$(date +%s%N)
wait_for 5 pub -t vigil/probe -m x || fail "broker did not restart"
wait_for 8 alarms_are '["ev-9","ev-20"]' || fail "alarms not re-published after the reconnect"
MS=$((($(date +%s%N) - T0) / 1000000))
[ "$MS" -le 5000 ] || fail "alarms back ${MS} ms after the broker (over 5 s)"
START=$(date +%s%N)
alarms_are '["ev-9","ev-20"]' || fail "late subscriber does not get the alarms"
LATE=$((($(date +%s%N) - START) / 1000000))
pass "alarms re-published after a reconnect, on the broker ${MS} ms after its return; a late subscriber has them in ${LATE} ms"

# ---- 6. an outbox holding nothing but events: the oldest event goes, counted and loud --
mkfifo "$T/cmd2"
bg small "$DRIVER" --port "$(free_port)" --client-id itest-small --keepalive 5 \
    --outbox 1 --event-reserve 2 --rate 0.001 --instance inst1 --cmd-fifo "$T/cmd2"
SMALL=$LAST_PID
wait_for 5 grep -q '^stats' "$T/small.log" || fail "small driver did not start"
for i in 1 2 3 4 5; do
    printf 'event room-1 {"event_id":"x-%s"}\n' "$i" >"$T/cmd2"
done
printf 'flood 10\n' >"$T/cmd2"
wait_for 5 count_ge '^cmd-done' "$T/small.log" 6 || fail "small driver: commands not answered"
M=$(metrics small "$SMALL")
echo "$M" | grep -q '^vigil_mqtt_outbox_dropped_by_class_total{class="event"} 2$' ||
    fail "event drops not counted: $(echo "$M" | grep by_class)"
echo "$M" | grep -q '^vigil_mqtt_outbox_dropped_total{reason="event_overflow"} 2$' ||
    fail "event_overflow not counted"
echo "$M" | grep -q '^vigil_mqtt_outbox_dropped_by_class_total{class="inference"} 10$' ||
    fail "inference pushed into a box full of events was not the one dropped"
[ "$(count '"level":"error".*"event":"event_dropped"' "$T/small.log")" = 2 ] ||
    fail "event drops not logged as errors"
pass "a box of nothing but events drops its oldest event: counted by class and reason, logged as an error"

kill -TERM "$DRV"
wait_for 5 grep -q '"event":"stopped","clean":true' "$T/driver.log" || fail "driver did not stop cleanly"
wait "$DRV" || fail "driver exited with $?"
pass "graceful stop: nothing pending, exit 0"
