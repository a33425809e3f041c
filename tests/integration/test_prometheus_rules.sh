#!/usr/bin/env bash
# deploy/prometheus: both scrape configurations and the alert rules pass promtool's
# checks, and the rules' unit tests (alerts_test.yml, one case per alert) pass.
. "$(dirname "$0")/lib.sh"
require promtool command -v promtool
require "python3 yaml (Debian python3-yaml)" $PY -c "import yaml"

P=$SRC/deploy/prometheus
for cfg in prometheus.yml prometheus-compose.yml; do
    promtool check config "$P/$cfg" >"$T/check.log" 2>&1 || { cat "$T/check.log" >&2; fail "promtool check config $cfg"; }
done
promtool check rules "$P/alerts.yml" >"$T/check.log" 2>&1 || { cat "$T/check.log" >&2; fail "promtool check rules"; }
promtool test rules "$P/alerts_test.yml" >"$T/test.log" 2>&1 || { cat "$T/test.log" >&2; fail "promtool test rules"; }

# every alert has a unit test that expects it to fire
alerts=$($PY -c 'import sys, yaml
print("\n".join(r["alert"] for g in yaml.safe_load(open(sys.argv[1]))["groups"] for r in g["rules"] if "alert" in r))' "$P/alerts.yml")
for a in $alerts; do
    $PY - "$P/alerts_test.yml" "$a" <<'PY' || fail "no promtool test expects $a to fire"
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
ok = any(t["alertname"] == sys.argv[2] and t.get("exp_alerts")
         for case in doc["tests"] for t in case.get("alert_rule_test", []))
sys.exit(0 if ok else 1)
PY
done
for want in VigilStreamDown VigilStreamStalls VigilStreamReconnects VigilFrameDropRate \
    VigilLatencyHigh VigilMqttDisconnected VigilStateWriteFailing VigilInstanceDown \
    VigilInstanceAbsent VigilCriticalEventUnacknowledged; do
    grep -qx "$want" <<<"$alerts" || fail "alert $want missing"
done
pass "prometheus configs and $(wc -l <<<"$alerts") alert rules, each unit-tested"
