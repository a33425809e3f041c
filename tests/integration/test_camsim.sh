#!/bin/bash
# test_camsim.sh — vigil-camsim serves looping H.264 over RTSP/TCP in real time, and
# freeze / resume / disconnect / outage behave as the control protocol promises, and
# --spread starts cameras at different points of the loop.
# Real peers: make-clip.sh (ffmpeg), ffprobe, ffmpeg readers, bash /dev/tcp control.
source "$(dirname "$0")/lib.sh"
declare -A md5

FPS=15
CLIP=$T/person.mp4
CLIP_SECONDS=3 make_clip "$SHARED/fixtures/person.jpg" "$CLIP" 640x360 $FPS 1
[ -s "$CLIP" ] || fail "no clip made"

RTSP_PORT=$(free_port)
CTL_PORT=$(free_port)
bg camsim "$BUILD/vigil-camsim" --port "$RTSP_PORT" --count 2 --clip "$CLIP" --control "$CTL_PORT"
CAMSIM_PID=$LAST_PID
wait_for 10 grep -q "camsim ready port=$RTSP_PORT cameras=2" "$T/camsim.log" || fail "camsim not ready"
pass "camsim ready"

URL=rtsp://127.0.0.1:$RTSP_PORT
# ctl CMD: sends one command, prints the whole answer (status has one more line per camera).
ctl() {
    local line n=0
    exec 9<>"/dev/tcp/127.0.0.1/$CTL_PORT"
    printf '%s\n' "$1" >&9
    IFS= read -r -t 5 line <&9 || line="(no answer)"
    echo "$line"
    if [[ $1 == status* && $line =~ ^ok\ cameras=([0-9]+)$ ]]; then n=${BASH_REMATCH[1]}; fi
    while [ "$n" -gt 0 ] && IFS= read -r -t 5 line <&9; do
        echo "$line"
        n=$((n - 1))
    done
    exec 9>&-
}
probe() {
    timeout 10 ffprobe -v error -rtsp_transport tcp \
        -show_entries stream=codec_name,width,height -of csv=p=0 "$URL/$1"
}
frames() { grep -vc '^#' "$1" 2>/dev/null || true; }
# more_frames FILE N: FILE holds more than N packets (re-evaluated by each wait_for try).
more_frames() { [ "$(frames "$1")" -gt "$2" ] 2>/dev/null; }
gone() { ! kill -0 "$1" 2>/dev/null; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# reader NAME CAM: an ffmpeg that writes one framemd5 line per received packet.
reader() {
    bg "$1" ffmpeg -nostdin -v error -rtsp_transport tcp -i "$URL/$2" -c copy \
        -flush_packets 1 -f framemd5 "$T/$1.md5"
}

# --- what is served ------------------------------------------------------------------
got=$(probe cam0) || fail "ffprobe cam0 failed"
[ "$got" = "h264,640,360" ] || fail "cam0 serves '$got', want h264,640,360"
pass "cam0 serves h264 640x360 over TCP"

answer=$(ctl "bogus cam0")
[[ $answer == error* ]] || fail "bogus command answered '$answer'"
answer=$(ctl "freeze nosuchcam")
[[ $answer == error* ]] || fail "unknown camera answered '$answer'"
pass "control rejects bad commands"

# --- real-time pacing ------------------------------------------------------------------
reader rec0 cam0
REC0=$LAST_PID
reader rec1 cam1
REC1=$LAST_PID
wait_for 10 more_frames "$T/rec0.md5" 0 || fail "no frames from cam0"
wait_for 10 more_frames "$T/rec1.md5" 0 || fail "no frames from cam1"
sleep 1 # let the readers' probing backlog drain
c0=$(frames "$T/rec0.md5")
t0=$(now_ms)
sleep 4
c1=$(frames "$T/rec0.md5")
t1=$(now_ms)
want=$(((t1 - t0) * FPS / 1000))
got=$((c1 - c0))
[ "$got" -ge $((want * 85 / 100)) ] && [ "$got" -le $((want * 115 / 100)) ] ||
    fail "cam0 delivered $got frames in $((t1 - t0)) ms, want $want ±15%"
pass "cam0 paced in real time: $got frames in $((t1 - t0)) ms (want $want)"

status=$(ctl status)
grep -qx "cam0 live 1" <<<"$status" || fail "status: $status"
grep -qx "cam1 live 1" <<<"$status" || fail "status: $status"
pass "status lists both cameras live with one client"

# --- freeze: cam1 stops, cam0 continues ------------------------------------------------
answer=$(ctl "freeze cam1")
[ "$answer" = "ok freeze cam1 cameras=1 closed=0" ] || fail "freeze cam1: $answer"
sleep 0.5 # packets already on the wire
b0=$(frames "$T/rec1.md5")
a0=$(frames "$T/rec0.md5")
sleep 3
b1=$(frames "$T/rec1.md5")
a1=$(frames "$T/rec0.md5")
[ "$b1" -eq "$b0" ] || fail "frozen cam1 still delivered $((b1 - b0)) frames"
[ $((a1 - a0)) -ge $((3 * FPS * 80 / 100)) ] || fail "cam0 delivered only $((a1 - a0)) frames in 3 s"
kill -0 "$REC1" 2>/dev/null || fail "cam1 reader died during freeze"
grep -qx "cam1 frozen 1" <<<"$(ctl 'status cam1')" || fail "cam1 not frozen with 1 client"
pass "freeze: cam1 silent for 3 s with its session open; cam0 +$((a1 - a0)) frames"

answer=$(ctl "resume cam1")
[[ $answer == ok* ]] || fail "resume cam1: $answer"
wait_for 5 more_frames "$T/rec1.md5" "$b1" || fail "cam1 did not resume"
pass "resume: cam1 delivers again"

# --- timestamps across loop boundaries (cam0 has played > 2 loops of the 3 s clip) ----
kill -INT "$REC0"
wait "$REC0" || true
awk -F, -v fps=$FPS '
    /^#tb 0:/ { split($0, a, "/"); tb = a[2] + 0 }
    /^#/ { next }
    { n++; dts[n] = $2 + 0 }
    END {
        if (tb == 0 || n < 3 * fps * 3) { print "too few frames: " n; exit 1 }
        step = tb / fps
        for (i = 2; i <= n; i++) {
            d = dts[i] - dts[i - 1]
            if (d < 0) { print "dts goes back at frame " i; exit 1 }
            # ffmpeg may stamp its first two packets alike before RTCP sync; after
            # that every step is one frame interval, across loop boundaries too
            if (i > 3 && (d < step * 0.9 || d > step * 1.1)) {
                print "dts step " d " at frame " i " (want " step ")"; exit 1
            }
        }
        printf "%d frames, %.1f s of timestamps\n", n, (dts[n] - dts[1]) / tb
    }' "$T/rec0.md5" >"$T/ts.txt" || fail "cam0 timestamps: $(cat "$T/ts.txt")"
pass "cam0 timestamps step one frame interval across loops: $(cat "$T/ts.txt")"

# --- disconnect closes the open cam1 session ------------------------------------------
answer=$(ctl "disconnect cam1")
[ "$answer" = "ok disconnect cam1 cameras=1 closed=1" ] || fail "disconnect cam1: $answer"
wait_for 5 gone "$REC1" || fail "cam1 reader survived disconnect"
grep -qx "cam1 live 0" <<<"$(ctl 'status cam1')" || fail "cam1 still has clients"
pass "disconnect: cam1 reader ended"

# --- a new client of a frozen camera must not stall the server -----------------------
answer=$(ctl "freeze cam1")
[[ $answer == ok* ]] || fail "freeze idle cam1: $answer"
bg late timeout 10 ffprobe -v error -rtsp_transport tcp "$URL/cam1"
LATE=$LAST_PID
[ "$(probe cam0)" = "h264,640,360" ] || fail "cam0 stalled by a client of frozen cam1"
grep -qx "cam1 frozen 1" <<<"$(ctl 'status cam1')" || fail "late cam1 client has no session"
answer=$(ctl "resume cam1")
[[ $answer == ok* ]] || fail "resume cam1: $answer"
wait "$LATE" || fail "late cam1 client failed after resume"
pass "frozen cam1 accepts a session without stalling cam0; it streams after resume"

# --- outage refuses cam1, cam0 unaffected; resume restores it -------------------------
answer=$(ctl "outage cam1")
[[ $answer == ok* ]] || fail "outage cam1: $answer"
if out=$(probe cam1 2>&1); then fail "cam1 answered during outage: $out"; fi
grep -q 503 <<<"$out" || fail "cam1 outage error was: $out"
[ "$(probe cam0)" = "h264,640,360" ] || fail "cam0 broken during cam1 outage"
grep -qx "cam1 outage 0" <<<"$(ctl 'status cam1')" || fail "cam1 not in outage"
answer=$(ctl "resume *")
[ "$answer" = "ok resume * cameras=2 closed=0" ] || fail "resume *: $answer"
[ "$(probe cam1)" = "h264,640,360" ] || fail "cam1 not back after resume"
pass "outage: cam1 refused with 503 while cam0 served; resume restored it"

# --- --spread 1: each camera starts the loop at its own keyframe ------------------------
first_md5() { timeout 10 ffmpeg -nostdin -v error -rtsp_transport tcp -i "$1" -frames:v 1 -f md5 - ; }
for spread in 0 1; do # fresh servers: no pipeline is running before the first reader
    port=$(free_port)
    bg "camsim-spread$spread" "$BUILD/vigil-camsim" --port "$port" --count 2 --clip "$CLIP" --spread $spread
    wait_for 10 grep -q "camsim ready port=$port" "$T/camsim-spread$spread.log" || fail "--spread $spread: not ready"
    for cam in 0 1; do
        md5[$spread$cam]=$(first_md5 "rtsp://127.0.0.1:$port/cam$cam") || fail "--spread $spread: cam$cam"
    done
done
[ "${md5[00]}" = "${md5[01]}" ] || fail "--spread 0: cameras start apart: ${md5[00]} ${md5[01]}"
[ "${md5[10]}" = "${md5[00]}" ] || fail "--spread 1 moved cam0: ${md5[10]} vs ${md5[00]}"
[ "${md5[11]}" != "${md5[10]}" ] || fail "--spread 1: cam1 starts where cam0 does"
pass "--spread 1: cam1 starts at another point of the loop, cam0 at its start"

# --- clean shutdown ----------------------------------------------------------------------
kill -TERM "$CAMSIM_PID"
rc=0
wait "$CAMSIM_PID" || rc=$?
[ "$rc" -eq 0 ] || fail "camsim exited $rc on SIGTERM"
pass "SIGTERM: exit 0"
