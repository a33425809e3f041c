#!/usr/bin/env bash
# The Grafana dashboard against a real Prometheus: Debian's prometheus scrapes a running
# vigild (camsim cameras: a person, an empty room, a dead camera; MQTT on a real broker;
# one command issued) every second with vigil's alert rules loaded. Every panel query of
# grafana/dashboards/vigil.json, with the template variables substituted as Grafana
# would, must return data through Prometheus's HTTP API; the variable queries must list
# the instance and the streams; the dashboard and the alert rules may only name metrics
# the daemon exports; the rules evaluate without errors and the dead camera's
# VigilStreamDown is pending. Grafana itself is not packaged for Debian, so it is not run.
. "$(dirname "$0")/lib.sh"
require "prometheus (Debian prometheus)" command -v prometheus
require promtool command -v promtool

DASH=$SRC/grafana/dashboards/vigil.json
RULES=$SRC/deploy/prometheus/alerts.yml
jq -e '.uid == "vigil" and (.panels | length > 0)' "$DASH" >/dev/null || fail "dashboard JSON"

PERSON=$(clip person-640 person.jpg 640x360 15 1)
EAGLE=$(clip eagle-640 eagle.jpg 640x360 15 1)
start_camsim --camera room1="$PERSON" --camera room2="$EAGLE"
start_broker
CAM=rtsp://127.0.0.1:$RTSP_PORT
HTTP_PORT=$(free_port)
cat >"$T/vigil.yaml" <<YAML
instance_id: graftest
mqtt: {host: 127.0.0.1, port: $MQTT_PORT}
http: {listen: 127.0.0.1:$HTTP_PORT}
models_dir: $SHARED/models
models:
  - {model_id: body, config: yolo-fastest-1.1_body.cfg, weights: yolo-fastest-1.1_body.weights, labels: body.names}
inference: {threads: 1}
state_file: $T/state.json
capture: {stall_timeout_s: 2, reconnect_initial_s: 0.2, reconnect_max_s: 1}
streams:
  - {stream_id: room1, rtsp_url: $CAM/room1, fps: 2, workers: [{type: person_detector, spec: {model_id: body}}]}
  - {stream_id: room2, rtsp_url: $CAM/room2, fps: 1, workers: [{type: person_detector, spec: {model_id: body}}, {type: motion_detector}]}
  - {stream_id: dead, rtsp_url: "rtsp://127.0.0.1:1/x", fps: 1}
YAML
start_vigild "$T/vigil.yaml"
INSTANCE=127.0.0.1:$HTTP_PORT

# one command over MQTT so vigil_commands_total has a series
mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t care/control/graftest/room2 \
    -m '{"command":"set_fps","command_id":"g1","params":{"max_fps":1}}'
wait_for 10 sh -c "curl -s $URL/metrics | grep -q '^vigil_commands_total{command=\"set_fps\",status=\"completed\"} 1'" ||
    fail "command not counted"
wait_for 20 sh -c "curl -s $URL/metrics | grep -q '^vigil_stream_persons{stream_id=\"room1\"} [1-9]'" ||
    fail "no person counted in room1"

# Prometheus: 1 s scrapes and rule evaluations, vigil's rules, a scratch TSDB
PROM_PORT=$(free_port)
cat >"$T/prometheus.yml" <<YAML
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: ["$RULES"]
scrape_configs:
  - job_name: vigil
    static_configs: [{targets: ["$INSTANCE"]}]
YAML
promtool check config "$T/prometheus.yml" >/dev/null || fail "test prometheus config"
bg prometheus prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/tsdb" \
    --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn
PROM=http://127.0.0.1:$PROM_PORT
wait_for 20 curl -sf "$PROM/-/ready" || fail "prometheus not ready"
query() { curl -sf --get --data-urlencode "query=$1" "$PROM/api/v1/query"; }
has_data() { query "$1" | jq -e '.status == "success" and (.data.result | length > 0)' >/dev/null; }
wait_for 15 has_data 'up{job="vigil"} == 1' || fail "vigild not scraped"

# every target of every panel, with the variables substituted the way Grafana does
# ($instance/$stream: All = ".*", or one value; $__rate_interval: 4 scrapes or more)
exprs() { # INSTANCE_VALUE STREAM_VALUE -> one JSON object {title, ref, expr} per line
    jq -c --arg i "$1" --arg s "$2" '[.panels[] | select(.type != "row"), (.panels[]?.panels[]?)]
        | .[] | .title as $t | .targets[] | {title: $t, ref: .refId,
          expr: (.expr | gsub("\\$__rate_interval|\\$\\{__rate_interval\\}"; "10s")
                 | gsub("\\$\\{?instance\\}?"; $i) | gsub("\\$\\{?stream\\}?"; $s))}' "$DASH"
}
n=0
check_panels() { # INSTANCE_VALUE STREAM_VALUE
    local line title ref expr
    while read -r line; do
        title=$(jq -r .title <<<"$line")
        ref=$(jq -r .ref <<<"$line")
        expr=$(jq -r .expr <<<"$line")
        case "$expr" in *'$'*) fail "$title/$ref: unsubstituted variable in $expr" ;; esac
        wait_for 20 has_data "$expr" || fail "panel '$title' target $ref returns no data: $expr -> $(query "$expr" | head -c 300)"
        n=$((n + 1))
    done < <(exprs "$1" "$2")
}
check_panels '.*' '.*'
check_panels "${INSTANCE//./\\\\.}" room1
echo "# $n panel queries returned data"

# variable queries: label_values(SELECTOR, LABEL) through the labels API
while IFS=$'\t' read -r name q; do
    sel=$(sed -E 's/^label_values\((.*), *([a-zA-Z_]+)\)$/\1/' <<<"$q" | sed 's/\$instance/.*/g')
    label=$(sed -E 's/^label_values\((.*), *([a-zA-Z_]+)\)$/\2/' <<<"$q")
    curl -sf --get --data-urlencode "match[]=$sel" "$PROM/api/v1/label/$label/values" >"$T/body"
    case "$name" in
    instance) jq_body ".data | index(\"$INSTANCE\") != null" ;;
    stream) jq_body '.data | sort == ["dead", "room1", "room2"]' ;;
    *) fail "unexpected variable $name" ;;
    esac
done < <(jq -r '.templating.list[] | select(.type == "query") | [.name, (.query.query // .query)] | @tsv' "$DASH")

# names: everything the dashboard and the rules mention exists in /metrics
curl -s "$URL/metrics" >"$T/metrics.txt"
promtool check metrics <"$T/metrics.txt" || fail "promtool check metrics"
exported=$(awk '/^# TYPE / { print $3; next } !/^#/ { sub(/[{ ].*/, ""); print }' "$T/metrics.txt" | sort -u)
used=$( { jq -r '.. | objects | (.expr?, .query?.query?, .definition?) | strings' "$DASH"
          $PY -c 'import sys, yaml
for g in yaml.safe_load(open(sys.argv[1]))["groups"]:
    for r in g["rules"]: print(r["expr"])' "$RULES"; } |
        grep -oE '\b(vigil|process)_[a-zA-Z0-9_]+' | sort -u)
for m in $used; do
    grep -qx "$m" <<<"$exported" || fail "'$m' is not exported by vigild"
done
echo "# metrics used: $(wc -w <<<"$used"), all exported"
grep -q 'vigil_stream_persons' <<<"$used" || fail "no persons panel"

# the alert rules load and evaluate cleanly; the dead camera is on its way to paging
n_rules=$($PY -c 'import sys, yaml
print(sum(len(g["rules"]) for g in yaml.safe_load(open(sys.argv[1]))["groups"]))' "$RULES")
curl -sf "$PROM/api/v1/rules" >"$T/body"
jq_body "[.data.groups[].rules[]] | length == $n_rules and all(.health == \"ok\")"
wait_for 10 sh -c "curl -sf $PROM/api/v1/alerts | jq -e '.data.alerts | any(.labels.alertname == \"VigilStreamDown\" and .labels.stream_id == \"dead\" and .state == \"pending\")'" ||
    fail "VigilStreamDown not pending for the dead camera: $(curl -s "$PROM/api/v1/alerts" | head -c 600)"
curl -sf "$PROM/api/v1/alerts" >"$T/body"
jq_body '.data.alerts | all(.labels.stream_id != "room1")'
pass "grafana dashboard: $n panel queries answered by Prometheus"
