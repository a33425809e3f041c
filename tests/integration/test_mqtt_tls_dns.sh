#!/usr/bin/env bash
# MQTT over TLS to a broker named by host name, with the name resolved off the loop and
# the connection made to the address: the certificate is still verified against the
# configured name (a name the certificate does not list is refused, with the reason),
# the name goes out as SNI, and a resolver that hangs never stalls the loop: /healthz
# answers quickly throughout connects and reconnects. Names come from an LD_PRELOAD
# shim (fakedns.c, built here) that maps test names to 127.0.0.1 after a delay.
. "$(dirname "$0")/lib.sh"

DRIVER=$BUILD/tests/vigil-mqtt-driver
[ -x "$DRIVER" ] || fail "driver not built: $DRIVER"
command -v cc >/dev/null || fail "cc needed to build the resolver shim"
cc -shared -fPIC -o "$T/fakedns.so" "$SRC/tests/integration/fakedns.c" -ldl || fail "shim"
export VG_FAKEDNS="broker.test=127.0.0.1,wrong.test=127.0.0.1"
# under ASan the shim (not sanitized) is preloaded ahead of the ASan runtime
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"

cd "$T"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 \
    -subj "/CN=vigil test CA" >/dev/null 2>&1 || fail "CA"
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=broker.test" \
    >/dev/null 2>&1 || fail "csr"
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt \
    -days 2 -extfile <(printf 'subjectAltName=DNS:broker.test\n') >/dev/null 2>&1 || fail "cert"
chmod 600 ./*.key

TLS_PORT=$(free_port)
cat >mosquitto.conf <<CONF
user root
persistence false
allow_anonymous true
listener $TLS_PORT 127.0.0.1
cafile $T/ca.crt
certfile $T/server.crt
keyfile $T/server.key
CONF
start_tls_broker() {
    bg mosquitto mosquitto -c "$T/mosquitto.conf"
    BROKER_PID=$LAST_PID
    wait_for 5 mosquitto_pub -h 127.0.0.1 -p "$TLS_PORT" --cafile ca.crt --insecure -t p -m x ||
        fail "TLS broker did not start"
}
start_tls_broker

drive() { # drive NAME HOST PORT
    VG_FAKEDNS_DELAY_S=0 LD_PRELOAD="$T/fakedns.so" bg "$1" "$DRIVER" --host "$2" --port "$3" \
        --client-id "itest-$1" --keepalive 5 --backoff 0.2:0.5 --ca-file "$T/ca.crt" --rate 1
}

# ---- the name in the certificate: connected by address, verified by name --------------
drive good broker.test "$TLS_PORT"
wait_for 10 grep -q '"event":"connected".*"tls":true' good.log || fail "no TLS connection by name"
pass "TLS by host name: resolved off the loop, connected to the address, certificate verified"

# ---- a name the certificate does not list: refused, with the reason ----------------------
drive wrong wrong.test "$TLS_PORT"
wait_for 10 grep -q '"event":"tls_verify_failed".*"reason":"hostname mismatch"' wrong.log ||
    fail "name mismatch not detected: $(grep -m3 event wrong.log)"
wait_for 5 grep -q '"event":"connect_failed"' wrong.log || fail "no connect_failed"
grep -q '"event":"connected"' wrong.log && fail "connected although the certificate names broker.test"
grep -q '"after":"refused"' wrong.log || fail "a refused certificate should back off as refused"
pass "certificate that does not name the host: refused (hostname mismatch)"

# ---- SNI carries the configured name, not the address -----------------------------------
SNI_PORT=$(free_port)
bg sni "$PY" -c "
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain('$T/server.crt', '$T/server.key')
ctx.sni_callback = lambda s, name, c: print('sni', name, flush=True)
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('127.0.0.1', $SNI_PORT)); srv.listen(4)
while True:
    c, _ = srv.accept()
    try: ctx.wrap_socket(c, server_side=True).close()
    except Exception: pass
"
wait_for 5 "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $SNI_PORT))" ||
    fail "SNI recorder did not start"
drive snicheck broker.test "$SNI_PORT"
wait_for 10 grep -q '^sni broker.test$' sni.log || fail "SNI was not the host name: $(head -3 sni.log)"
pass "SNI is the configured host name"

# ---- a resolver that hangs: the loop keeps answering ------------------------------------
HTTP_PORT=$(free_port)
cat >vigil.yaml <<YAML
instance_id: dns
mqtt: {host: broker.test, port: $TLS_PORT, keepalive_s: 5, tls: {ca_file: $T/ca.crt}}
http: {listen: 127.0.0.1:$HTTP_PORT}
telemetry: {interval_s: 1}
streams: []
YAML
export VG_FAKEDNS_DELAY_S=2.5
LD_PRELOAD="$T/fakedns.so" start_vigild "$T/vigil.yaml"
unset VG_FAKEDNS_DELAY_S
MAX_MS=0
probe_for() { # probe_for SECONDS: /healthz every 0.1 s; keeps the slowest answer in MAX_MS
    local end=$(( $(date +%s) + $1 )) t ms
    while [ "$(date +%s)" -lt "$end" ]; do
        t=$(curl -s -o /dev/null -m 5 -w '%{time_total}' "$URL/healthz") || fail "/healthz failed"
        ms=$("$PY" -c "print(int($t * 1000))")
        [ "$ms" -gt "$MAX_MS" ] && MAX_MS=$ms
        sleep 0.1
    done
    [ "$MAX_MS" -lt 500 ] || fail "/healthz took $MAX_MS ms while the resolver hung (2.5 s per lookup)"
}
probe_for 8
grep -q '"event":"connected".*"tls":true' vigild.log || fail "vigild did not connect over TLS"
kill -KILL "$BROKER_PID"
probe_for 4
start_tls_broker
probe_for 8
[ "$(grep -c '"event":"connected".*"tls":true' vigild.log)" -ge 2 ] ||
    fail "vigild did not reconnect: $(grep -c '"event":"reconnect_scheduled"' vigild.log) attempts"
pass "resolver hanging 2.5 s per lookup: /healthz answered within ${MAX_MS} ms throughout"
