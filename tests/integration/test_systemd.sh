#!/usr/bin/env bash
# systemd integration: deploy/systemd/vigild.service passes `systemd-analyze verify`
# (ExecStart pointed at this build), and vigild speaks the sd_notify protocol to a
# NOTIFY_SOCKET this test listens on: READY=1 with STATUS and MAINPID, WATCHDOG=1 every
# WATCHDOG_USEC/2 from the loop, RELOADING=1 then READY=1 on SIGHUP, STOPPING=1 on
# SIGTERM; no watchdog pings when WATCHDOG_PID names another process.
. "$(dirname "$0")/lib.sh"
require "systemd-analyze (Debian systemd)" command -v systemd-analyze

UNIT=$SRC/deploy/systemd/vigild.service
mkdir -p "$T/unit"
sed "s#/usr/local/bin/vigild#$BUILD/vigild#g" "$UNIT" >"$T/unit/vigild.service"
grep -q "ExecStart=$BUILD/vigild -c /etc/vigil/vigil.yaml" "$T/unit/vigild.service" || fail "ExecStart not rewritten"
systemd-analyze verify "$T/unit/vigild.service" >"$T/verify.log" 2>&1 || { cat "$T/verify.log" >&2; fail "systemd-analyze verify"; }
[ ! -s "$T/verify.log" ] || { cat "$T/verify.log" >&2; fail "systemd-analyze verify printed warnings"; }
for want in Type=notify WatchdogSec= DynamicUser=yes ProtectSystem=strict StateDirectory=vigil \
    NoNewPrivileges=yes ExecReload=; do
    grep -q "^$want" "$UNIT" || fail "unit lacks $want"
done

# a notify socket: one line per datagram, newlines inside shown as '|'
listen() { # NAME: listens on $T/NAME.sock, logs to $T/NAME.msgs
    $PY - "$T/$1.sock" >"$T/$1.msgs" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
t0 = time.monotonic()
while True:
    data = s.recv(4096).decode()
    print("%.3f %s" % (time.monotonic() - t0, data.strip().replace("\n", "|")), flush=True)
PY
    PIDS+=("$!")
    wait_for 5 test -S "$T/$1.sock" || fail "notify socket $1"
}
HTTP_PORT=$(free_port)
CLIP=$(clip eagle-640 eagle.jpg 640x360 15 1)
cat >"$T/vigil.yaml" <<YAML
instance_id: sdtest
capture: {allow_files: true} # the streams read clip files
mqtt: {enabled: false}
http: {listen: 127.0.0.1:$HTTP_PORT}
streams:
  - {stream_id: room1, url: $CLIP, fps: 1}
YAML

listen notify
NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=2000000 start_vigild "$T/vigil.yaml"
wait_for 5 grep -q 'READY=1' "$T/notify.msgs" || fail "no READY=1"
grep 'READY=1' "$T/notify.msgs" | head -1 | grep -q "STATUS=running, 1 streams|MAINPID=$VPID" ||
    fail "READY line: $(grep READY=1 "$T/notify.msgs" | head -1)"
sleep 3.6
pings=$(grep -c 'WATCHDOG=1' "$T/notify.msgs" || true)
[ "$pings" -ge 3 ] && [ "$pings" -le 5 ] || fail "$pings watchdog pings in ~3.6 s, want one a second"
grep 'WATCHDOG=1' "$T/notify.msgs" | tail -1 | grep -q 'STATUS=running, 1 streams' || fail "watchdog ping without STATUS"
# the gaps between pings are about WATCHDOG_USEC / 2
awk '/WATCHDOG=1/ { if (last != "") { d = $1 - last; if (d < 0.8 || d > 1.3) bad = 1 } last = $1 }
     END { exit bad }' "$T/notify.msgs" || fail "irregular pings: $(grep WATCHDOG "$T/notify.msgs" | cut -d' ' -f1 | tr '\n' ' ')"

kill -HUP "$VPID"
wait_for 5 sh -c "grep -A1 'RELOADING=1' $T/notify.msgs | grep -q 'READY=1'" || fail "no RELOADING=1 then READY=1 on SIGHUP"
kill -TERM "$VPID"
rc=0
wait "$VPID" || rc=$?
[ "$rc" = 0 ] || fail "exit code $rc"
grep -q 'STOPPING=1' "$T/notify.msgs" || fail "no STOPPING=1"
echo "# $(wc -l <"$T/notify.msgs") notifications: $(cut -d' ' -f2- "$T/notify.msgs" | sed 's/|.*//' | sort | uniq -c | tr -s ' \n' ' ')"

# WATCHDOG_PID names another process: the watchdog is not ours, so no pings
listen other
NOTIFY_SOCKET=$T/other.sock WATCHDOG_USEC=400000 WATCHDOG_PID=1 start_vigild "$T/vigil.yaml" vigild2
wait_for 5 grep -q 'READY=1' "$T/other.msgs" || fail "no READY=1 (second run)"
sleep 1
! grep -q 'WATCHDOG=1' "$T/other.msgs" || fail "pinged a watchdog that belongs to pid 1"
pass "systemd unit verifies; READY, STATUS, $pings watchdog pings, RELOADING, STOPPING"
