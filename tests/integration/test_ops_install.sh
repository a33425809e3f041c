#!/usr/bin/env bash
# `cmake --install` for a bare Debian box, staged with DESTDIR: the daemon, the web page,
# the Grafana/Prometheus files, the systemd unit (paths of this prefix, verifies) and the
# example configuration (checks, and the installed daemon serves the installed web page
# with it); a second install keeps an edited configuration; --prefix relocates it all.
. "$(dirname "$0")/lib.sh"
require "systemd-analyze (Debian systemd)" command -v systemd-analyze

cache() { sed -n "s/^$1:[A-Z]*=//p" "$BUILD/CMakeCache.txt"; }
PREFIX=$(cache CMAKE_INSTALL_PREFIX)
CONFDIR=$(cache VIGIL_CONFIG_DIR)
UNITDIR=$(cache VIGIL_SYSTEMD_UNIT_DIR)
case "$PREFIX" in /usr | /usr/local) : "${CONFDIR:=/etc/vigil}" ;; *) : "${CONFDIR:=$PREFIX/etc/vigil}" ;; esac
: "${UNITDIR:=$PREFIX/lib/systemd/system}"
R=$T/root
DESTDIR=$R cmake --install "$BUILD" >"$T/install.log" 2>&1 || { cat "$T/install.log" >&2; fail "cmake --install"; }
for f in "$PREFIX/bin/vigild" "$PREFIX/share/vigil/web/index.html" "$PREFIX/share/vigil/web/app.js" \
    "$PREFIX/share/vigil/grafana/dashboards/vigil.json" \
    "$PREFIX/share/vigil/grafana/provisioning/datasources/prometheus.yaml" \
    "$PREFIX/share/vigil/prometheus/alerts.yml" "$PREFIX/share/doc/vigil/README.md" \
    "$UNITDIR/vigild.service" "$CONFDIR/vigil.yaml"; do
    [ -f "$R$f" ] || fail "not installed: $f"
done
[ -x "$R$PREFIX/bin/vigild" ] || fail "vigild not executable"

# the unit names this install's paths; with them pointed into the stage it verifies
UNIT=$R$UNITDIR/vigild.service
grep -qx "ExecStart=$PREFIX/bin/vigild -c $CONFDIR/vigil.yaml" "$UNIT" || fail "unit: $(grep ExecStart= "$UNIT")"
mkdir -p "$T/unit"
sed "s#$PREFIX/bin/vigild#$R$PREFIX/bin/vigild#g" "$UNIT" >"$T/unit/vigild.service"
systemd-analyze verify "$T/unit/vigild.service" >"$T/verify.log" 2>&1 && [ ! -s "$T/verify.log" ] ||
    { cat "$T/verify.log" >&2; fail "installed unit does not verify"; }

# the example configuration: valid, and it finds the installed web page
CONF=$R$CONFDIR/vigil.yaml
grep -q "web_root: $PREFIX/share/vigil/web\$" "$CONF" || fail "config web_root: $(grep web_root "$CONF")"
"$R$PREFIX/bin/vigild" --check-config -c "$CONF" >/dev/null || fail "installed config does not check"
HTTP_PORT=$(free_port)
sed -e "s#$PREFIX/share/vigil#$R$PREFIX/share/vigil#" -e "s#state_file: .*#state_file: $T/state.json#" \
    -e "s#^events_file: [^ ]*#events_file: $T/events.jsonl#" \
    -e "s#listen: 127.0.0.1:8080#listen: 127.0.0.1:$HTTP_PORT#" -e "0,/enabled: true/s//enabled: false/" \
    "$CONF" >"$T/run.yaml"
grep -q "enabled: false" "$T/run.yaml" || fail "could not disable MQTT for the run"
BUILD=$R$PREFIX/bin start_vigild "$T/run.yaml"
curl -sf "$URL/" | grep -qi '<html' || fail "installed web page not served"
[ -f "$T/events.jsonl" ] || fail "the installed config's events_file was not opened"
curl -sf "$URL/api/v1/info" | jq -e '.instance_id == "edge-1"' >/dev/null || fail "info"
kill -TERM "$VPID"
wait "$VPID" || fail "installed vigild exited with $?"

# a second install keeps an edited configuration
echo "# edited by the admin" >>"$CONF"
DESTDIR=$R cmake --install "$BUILD" >"$T/install2.log" 2>&1 || fail "second install"
grep -q "Keeping: $CONF" "$T/install2.log" || fail "second install did not keep the config"
tail -1 "$CONF" | grep -q 'edited by the admin' || fail "config overwritten"

# --prefix relocates binaries, data, unit and configuration
if [ -z "$(cache VIGIL_CONFIG_DIR)" ] && [ -z "$(cache VIGIL_SYSTEMD_UNIT_DIR)" ]; then
    DESTDIR=$T/root2 cmake --install "$BUILD" --prefix /opt/vigil >"$T/install3.log" 2>&1 || fail "--prefix install"
    O=$T/root2/opt/vigil
    grep -qx "ExecStart=/opt/vigil/bin/vigild -c /opt/vigil/etc/vigil/vigil.yaml" "$O/lib/systemd/system/vigild.service" ||
        fail "relocated unit"
    grep -q "web_root: /opt/vigil/share/vigil/web\$" "$O/etc/vigil/vigil.yaml" || fail "relocated config"
    [ -x "$O/bin/vigild" ] && [ -f "$O/share/vigil/web/index.html" ] || fail "relocated files"
    [ ! -e "$T/root2/etc" ] || fail "--prefix /opt/vigil wrote outside the prefix"
fi
pass "install: $(grep -c 'Installing:' "$T/install.log") files under $PREFIX and $CONFDIR; unit verifies; config serves the page"
