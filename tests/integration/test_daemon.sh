#!/usr/bin/env bash
# The daemon's process contract: config validation at start, /healthz, /readyz,
# /metrics through promtool, JSON 404/405, SIGHUP reload (broken file keeps the old
# configuration), SIGTERM exits 0 promptly.
. "$(dirname "$0")/lib.sh"
require promtool command -v promtool

VIGILD=$BUILD/vigild

# --check-config: the shipped files are valid, a broken one names line, column and key
"$VIGILD" --check-config -c "$SRC/config/orion_multi.yaml" >"$T/check.log" 2>&1 ||
    fail "orion_multi.yaml should be valid"
grep -q "pose_estimator" "$T/check.log" || fail "missing pose warning"
printf 'instance_id: x\nmqtt: {port: 99999}\nstreamz: []\n' >"$T/bad.yaml"
if "$VIGILD" --check-config -c "$T/bad.yaml" 2>"$T/bad.err"; then fail "bad config accepted"; fi
grep -q "bad.yaml:2:14: key 'mqtt.port'" "$T/bad.err" || fail "no positioned port error"
grep -q "unknown key 'streamz' (did you mean 'streams'?)" "$T/bad.err" || fail "no suggestion"

# an invalid config refuses to start, with the same report on stderr
if timeout 5 "$VIGILD" -c "$T/bad.yaml" 2>"$T/refuse.err"; then fail "started on bad config"; fi
grep -q "key 'mqtt.port'" "$T/refuse.err" || fail "start refusal lacks the error"

HTTP_PORT=$(free_port)
write_cfg() {
    cat >"$T/vigil.yaml" <<YAML
instance_id: itest
log: {level: $1}
mqtt: {enabled: false}
http: {listen: 127.0.0.1:$HTTP_PORT}
streams: []
YAML
}
write_cfg info
bg vigild "$VIGILD" -c "$T/vigil.yaml"
VPID=$LAST_PID
URL=http://127.0.0.1:$HTTP_PORT
wait_for 10 curl -sf "$URL/healthz" || fail "healthz never answered"

[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/readyz")" = 200 ] || fail "readyz not 200"
curl -s "$URL/metrics" >"$T/metrics.txt"
promtool check metrics <"$T/metrics.txt" >"$T/promtool.log" 2>&1 || fail "promtool: $(cat "$T/promtool.log")"
grep -q '^vigil_build_info{version="' "$T/metrics.txt" || fail "no vigil_build_info"
grep -q '^process_resident_memory_bytes ' "$T/metrics.txt" || fail "no process metrics"
grep -q '^process_open_fds ' "$T/metrics.txt" || fail "no process_open_fds"

code=$(curl -s -o "$T/404.json" -w '%{http_code}' "$URL/nope")
[ "$code" = 404 ] || fail "unknown path gave $code"
jq -e '.error.code == "not_found"' "$T/404.json" >/dev/null || fail "404 body not JSON error"
code=$(curl -s -o "$T/405.json" -w '%{http_code}' -X POST "$URL/healthz")
[ "$code" = 405 ] || fail "wrong method gave $code"
jq -e '.error.code == "method_not_allowed"' "$T/405.json" >/dev/null || fail "405 body"

# SIGHUP with a broken file: logs the errors, keeps serving on the old configuration
echo "instance_id: [broken" >"$T/vigil.yaml"
kill -HUP "$VPID"
wait_for 5 grep -q '"event":"config_reload_failed"' "$T/vigild.log" || fail "no reload failure log"
curl -sf "$URL/healthz" >/dev/null || fail "stopped serving after a bad reload"
kill -0 "$VPID" || fail "daemon died on bad reload"

# SIGHUP with a valid file applies it (log level debug now shows debug lines)
write_cfg debug
kill -HUP "$VPID"
wait_for 5 grep -q '"event":"config_reloaded"' "$T/vigild.log" || fail "valid reload not applied"

# SIGTERM: exits 0 within 3 s
term_within "$VPID" 3000
grep -q '"event":"stopped"' "$T/vigild.log" || fail "no stopped log line"
pass "daemon contract (shutdown in ${STOP_MS} ms)"
