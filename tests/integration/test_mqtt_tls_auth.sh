#!/usr/bin/env bash
# The MQTT client's security and failure paths against a real broker: TLS with CA and
# host name verification (by name, through the off-loop resolver), username + password
# from a file (never logged), a refused login retried with backoff, a certificate that
# does not match the host, a client certificate on a listener that requires one, and a
# peer that accepts TCP but never answers CONNECT (connect timeout).
. "$(dirname "$0")/lib.sh"

DRIVER=$BUILD/tests/vigil-mqtt-driver
[ -x "$DRIVER" ] || fail "driver not built: $DRIVER"
PASSWORD='s3cr3t-Pw-7f1d'

# ---- a CA, a server certificate for "localhost" only, a client certificate --------------
cd "$T"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 \
    -subj "/CN=vigil test CA" >/dev/null 2>&1 || fail "CA"
cert() { # cert NAME CN [EXT]
    openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$2" \
        >/dev/null 2>&1 || fail "csr $1"
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" \
        -days 2 ${3:+-extfile <(printf '%s\n' "$3")} >/dev/null 2>&1 || fail "cert $1"
}
cert server localhost "subjectAltName=DNS:localhost"
cert client vigil-client
chmod 600 ./*.key
printf '%s\n' "$PASSWORD" >password.txt
printf 'wrong-%s\n' "$PASSWORD" >bad-password.txt
mosquitto_passwd -c -b passwd vigil "$PASSWORD" >/dev/null 2>&1 || fail "mosquitto_passwd"

TLS_PORT=$(free_port)
MTLS_PORT=$(free_port)
# "user root": when the tests run as root, keep root so the broker can read the temp dir
cat >mosquitto.conf <<CONF
user root
persistence false
allow_anonymous false
password_file $T/passwd
listener $TLS_PORT 127.0.0.1
cafile $T/ca.crt
certfile $T/server.crt
keyfile $T/server.key
listener $MTLS_PORT 127.0.0.1
cafile $T/ca.crt
certfile $T/server.crt
keyfile $T/server.key
require_certificate true
CONF
bg mosquitto mosquitto -c "$T/mosquitto.conf"
sub() { mosquitto_sub -h localhost -p "$TLS_PORT" --cafile ca.crt -u vigil -P "$PASSWORD" "$@"; }
pub() { mosquitto_pub -h localhost -p "$TLS_PORT" --cafile ca.crt -u vigil -P "$PASSWORD" "$@"; }
wait_for 5 pub -t vigil/probe -m x || fail "TLS broker did not start: $(tail -3 mosquitto.log)"

drive() { # drive NAME PORT HOST [args...]
    local name=$1 port=$2 host=$3; shift 3
    bg "$name" "$DRIVER" --host "$host" --port "$port" --client-id "itest-$name" --keepalive 5 \
        --backoff 0.2:0.5 --sub "test/$name/in" --echo "test/$name/echo" --seq-topic "test/$name/seq" \
        --username vigil "$@"
}
echo_ok() { pub -q 1 -t "test/$1/in" -m "$2" && grep -qx "$2" "$T/echo-$1.log"; }

# ---- TLS + password by host name ---------------------------------------------------------
bg echo-good sub -t test/good/echo
sub_ready() { pub -t test/good/echo -m probe && grep -q probe echo-good.log; }
wait_for 5 sub_ready || fail "echo subscriber not ready"
drive good "$TLS_PORT" localhost --ca-file "$T/ca.crt" --password-file "$T/password.txt"
wait_for 10 grep -q '"event":"connected".*"tls":true' good.log || fail "no TLS connection"
wait_for 5 echo_ok good hello-tls || fail "no echo over TLS"
pass "TLS (CA + host name verified) with username and password file"

# ---- a wrong password is refused and retried with backoff -------------------------------
drive badpw "$TLS_PORT" localhost --ca-file "$T/ca.crt" --password-file "$T/bad-password.txt"
refused_twice() { [ "$(grep -c '"event":"connect_refused"' badpw.log)" -ge 2 ]; }
wait_for 10 refused_twice ||
    fail "refused login not logged and retried"
grep -q '"reason":"Connection Refused: not authorised."' badpw.log || fail "refusal reason"
grep -q '"event":"reconnect_scheduled"' badpw.log || fail "no backoff after refusal"
grep -q '"event":"connected"' badpw.log && fail "connected with a wrong password"
pass "wrong password: refused, logged with the reason, retried with backoff"

# ---- the certificate names localhost: 127.0.0.1 must fail verification ------------------
drive badname "$TLS_PORT" 127.0.0.1 --ca-file "$T/ca.crt" --password-file "$T/password.txt"
wait_for 10 grep -q '"event":"connect_failed"' badname.log || fail "name mismatch not detected"
sleep 1
grep -q '"event":"connected"' badname.log && fail "connected despite a host name mismatch"
pass "certificate host name mismatch: refused"

# ---- client certificate on a listener that requires one ---------------------------------
drive nocert "$MTLS_PORT" localhost --ca-file "$T/ca.crt" --password-file "$T/password.txt"
drive mtls "$MTLS_PORT" localhost --ca-file "$T/ca.crt" --password-file "$T/password.txt" \
    --cert-file "$T/client.crt" --key-file "$T/client.key"
wait_for 10 grep -q '"event":"connected".*"tls":true' mtls.log || fail "mutual TLS failed"
wait_for 10 grep -q '"event":"connect_failed"' nocert.log || fail "no failure without a cert"
grep -q '"event":"connected"' nocert.log && fail "connected without the required certificate"
pass "client certificate: accepted when given, refused when missing"

# ---- no secret in any log ------------------------------------------------------------------
for f in good badpw badname nocert mtls; do
    grep -q "$PASSWORD" "$f.log" && fail "$f.log contains the password"
done
pass "the password appears in no log"

# ---- a peer that accepts TCP but never answers CONNECT ------------------------------------
SILENT_PORT=$(free_port)
bg silent /usr/bin/python3 -c "
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $SILENT_PORT)); s.listen(8); conns = []
while True:
    c, _ = s.accept(); conns.append(c)
"
wait_for 5 python3 -c "import socket; socket.create_connection(('127.0.0.1', $SILENT_PORT))" ||
    fail "silent peer did not start"
START=$(date +%s)
bg silent-drv "$DRIVER" --port "$SILENT_PORT" --client-id itest-silent --keepalive 5 --backoff 0.2:0.5
wait_for 12 grep -q '"event":"connect_failed"' silent-drv.log || fail "connect never timed out"
ELAPSED=$(( $(date +%s) - START ))
[ "$ELAPSED" -ge 4 ] || fail "timed out too early (${ELAPSED}s)"
grep -q '"event":"reconnect_scheduled"' silent-drv.log || fail "no retry after the timeout"
pass "silent peer: connect timed out after ~${ELAPSED}s and was retried"
