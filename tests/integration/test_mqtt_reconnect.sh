#!/usr/bin/env bash
# Delivery after a long broker outage: however long the broker was away, vigild probes it
# at least every 3 s (reconnect_scheduled delays stay <= 3 s), so after the broker is back
# the first message (the retained status, then the telemetry queued in the outbox) is
# delivered within 5 s. A refused login still backs off further (checked in
# test_mqtt_tls_auth and test_mqtt_tls_dns).
. "$(dirname "$0")/lib.sh"

OUTAGE_S=${OUTAGE_S:-25}
start_broker
HTTP_PORT=$(free_port)
cat >"$T/vigil.yaml" <<YAML
instance_id: recon
mqtt: {host: 127.0.0.1, port: $MQTT_PORT, qos: 1, keepalive_s: 5}
http: {listen: 127.0.0.1:$HTTP_PORT}
telemetry: {interval_s: 1}
streams: []
YAML
start_vigild "$T/vigil.yaml"
wait_for 10 grep -q '"event":"connected"' "$T/vigild.log" || fail "vigild did not connect"
sleep 11 # a connection that lasted 10 s resets the backoff: the outage starts from scratch

kill -KILL "$BROKER_PID"
sleep "$OUTAGE_S"
queued=$(curl -s "$URL/metrics" | awk '$1 == "vigil_mqtt_outbox_messages" {print $2}')
[ "${queued%.*}" -ge 5 ] || fail "expected telemetry queued during the outage, outbox=$queued"

# the broker comes back on the same port; time from "listening" to the first message
bg mosquitto2 mosquitto -c "$T/mosquitto.conf"
wait_for 5 "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $MQTT_PORT))" ||
    fail "broker did not restart"
BACK=$(date +%s%N)
mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t 'care/#' -C 1 -W 15 >"$T/first.txt" ||
    fail "nothing from vigild within 15 s of the broker's return"
DELAY_MS=$(( ($(date +%s%N) - BACK) / 1000000 ))
wait_for 5 sh -c "curl -s $URL/metrics | grep -qx 'vigil_mqtt_outbox_messages 0'" ||
    fail "outbox not flushed after the reconnect"

# the policy, whatever the luck of the jitter: no delay above the 3 s probe cap
max_delay=$(grep '"event":"reconnect_scheduled"' "$T/vigild.log" |
    sed -n 's/.*"delay_ms":\([0-9]*\).*/\1/p' | sort -n | tail -1)
attempts=$(grep -c '"event":"reconnect_scheduled"' "$T/vigild.log")
[ "$attempts" -ge 8 ] || fail "only $attempts reconnect attempts in a ${OUTAGE_S}s outage"
[ "$max_delay" -le 3000 ] || fail "a reconnect delay of $max_delay ms during the outage (cap 3000)"
[ "$DELAY_MS" -le 5000 ] || fail "first message $DELAY_MS ms after the broker came back (limit 5000)"
pass "after a ${OUTAGE_S}s outage ($attempts attempts, longest delay ${max_delay} ms): first message ${DELAY_MS} ms after the broker's return, outbox flushed"
