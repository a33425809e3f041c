#!/usr/bin/env bash
# The shipped broker settings (deploy/mosquitto: no anonymous access, a password file
# made by make-passwd.sh, the ACL) keep vigild's door shut: an add_stream published as
# anonymous, with a wrong password, as the read-only dashboard user or as vigil's own
# user never reaches vigild (no stream, no ack); the orchestrator's is acted on. Nobody
# but vigild can overwrite its retained status; the dashboard user reads everything.
. "$(dirname "$0")/lib.sh"

M=$SRC/deploy/mosquitto
command -v mosquitto_passwd >/dev/null || fail "mosquitto_passwd is needed"
"$M/make-passwd.sh" "$T/secrets" >/dev/null || fail "make-passwd.sh"
for u in vigil orchestrator dashboard; do
    [ -s "$T/secrets/$u.password" ] || fail "no password for $u"
    grep -q "^$u:\\\$7\\\$" "$T/secrets/passwd" || fail "passwd has no hash for $u"
done
pw() { head -n 1 "$T/secrets/$1.password"; }

# the shipped mosquitto.conf, with this test's port and paths
MQTT_PORT=$(free_port)
sed -e "s|^listener 1883$|listener $MQTT_PORT 127.0.0.1|" \
    -e "s|/mosquitto/config/passwd|$T/secrets/passwd|" \
    -e "s|/mosquitto/config/acl|$M/acl|" \
    -e '/^persistence/d' -e '/^log_dest/d' "$M/mosquitto.conf" >"$T/mosquitto.conf"
grep -qx 'allow_anonymous false' "$T/mosquitto.conf" || fail "shipped config allows anonymous clients"
grep -q "^acl_file $M/acl$" "$T/mosquitto.conf" || fail "shipped config has no acl_file"
[ "$(id -u)" = 0 ] && echo "user root" >>"$T/mosquitto.conf" # keep read access to $T
bg mosquitto mosquitto -c "$T/mosquitto.conf"
as() { # as USER [mosquitto_pub/sub args...]: USER "-" is anonymous
    local user=$1; shift
    if [ "$user" = - ]; then "$@" -h 127.0.0.1 -p "$MQTT_PORT"
    else "$@" -h 127.0.0.1 -p "$MQTT_PORT" -u "$user" -P "$(pw "$user")"; fi
}
wait_for 5 as dashboard mosquitto_sub -t care/probe -W 1 -C 1 -E || fail "broker did not start"

HTTP_PORT=$(free_port)
cat >"$T/vigil.yaml" <<YAML
instance_id: door
mqtt: {host: 127.0.0.1, port: $MQTT_PORT, username: vigil, password_file: $T/secrets/vigil.password}
http: {listen: 127.0.0.1:$HTTP_PORT}
streams: []
YAML
start_vigild "$T/vigil.yaml"
wait_for 10 grep -q '"event":"connected"' "$T/vigild.log" || fail "vigild did not connect as vigil"
grep -q '"event":"subscribe_refused"' "$T/vigild.log" && fail "vigil may not subscribe to its commands"

# the dashboard sees everything vigild says (acks included)
bg watch stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -u dashboard -P "$(pw dashboard)" -v -t 'care/#'
wait_for 5 grep -q '^care/status/door ' "$T/watch.log" || fail "dashboard cannot read vigild's status"

cmd() { # cmd STREAM_ID: an add_stream command with command_id = STREAM_ID
    printf '{"command":"add_stream","command_id":"%s","params":{"stream_id":"%s","url":"rtsp://127.0.0.1:9/none","fps":1}}' "$1" "$1"
}
send() { # send WHO STREAM_ID: publish an add_stream as WHO (mosquitto_pub's exit code ignored)
    local who=$1 sid=$2
    case "$who" in
    anonymous) as - mosquitto_pub -q 1 -t care/control/door -m "$(cmd "$sid")" ;;
    wrongpw) mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -u orchestrator -P "not-$(pw orchestrator)" \
        -q 1 -t care/control/door -m "$(cmd "$sid")" ;;
    *) as "$who" mosquitto_pub -q 1 -t care/control/door -m "$(cmd "$sid")" ;;
    esac >>"$T/pub.log" 2>&1 || true
}
for who in anonymous wrongpw dashboard vigil; do send "$who" "from-$who"; done
send orchestrator from-orchestrator
wait_for 10 sh -c "curl -s $URL/api/v1/streams | jq -e '[.streams[].stream_id] | index(\"from-orchestrator\")'" ||
    fail "the orchestrator's add_stream was not acted on: $(grep -m3 command "$T/vigild.log")"
wait_for 5 grep -q '"command_id":"from-orchestrator".*"status":"completed"' "$T/watch.log" ||
    fail "no completed ack for the orchestrator's command"
sleep 1 # the others were sent first: anything that got through has arrived by now
ids=$(curl -s "$URL/api/v1/streams" | jq -c '[.streams[].stream_id]')
[ "$ids" = '["from-orchestrator"]' ] || fail "streams after the commands: $ids"
for who in anonymous wrongpw dashboard vigil; do
    grep -q "from-$who" "$T/watch.log" && fail "an ack or message for the $who command"
    grep -q "\"command_id\":\"from-$who\"" "$T/vigild.log" && fail "vigild saw the $who command"
done
grep -qi 'not authori' "$T/pub.log" || fail "anonymous and wrong-password clients were not refused"
pass "only the orchestrator's add_stream reached vigild (anonymous, wrong password, dashboard, vigil: dropped)"

# only vigild writes its retained status
for who in orchestrator dashboard; do
    as "$who" mosquitto_pub -r -q 1 -t care/status/door -m '{"status":"offline","forged":true}' || true
done
as - mosquitto_pub -r -q 1 -t care/status/door -m '{"forged":true}' >/dev/null 2>&1 || true
sleep 0.5
status=$(as dashboard mosquitto_sub -t care/status/door -C 1 -W 5) || fail "no retained status"
jq -e '.instance_id == "door" and .client_id == "vigil-door" and (has("forged") | not)' <<<"$status" >/dev/null ||
    fail "retained status overwritten: $status"
pass "retained status: only vigild can set it; the dashboard reads it"
