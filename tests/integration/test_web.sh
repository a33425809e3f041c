#!/usr/bin/env bash
# The web page (web/) in headless Chromium, driven by web.mjs through playwright-core:
# vigild serves it with two rooms from file clips (a person, an eagle) and one dead
# camera, and a bearer token for changes. The page must load without console errors,
# show every room with live snapshots and a person count, put dead cameras in alarm
# style, drive fps/model/restart/remove/add through the API (asking for the token on
# 401), and raise its header banner when the daemon goes away. Screenshots go to
# $BUILD/artifacts/.
. "$(dirname "$0")/lib.sh"

VIGILD=$BUILD/vigild
CHROMIUM=/usr/bin/chromium
require "$CHROMIUM (Debian chromium)" test -x "$CHROMIUM"
require "node, Node.js 18 or newer (Debian nodejs)" command -v node

# playwright-core lives in a cache outside the repository; installed once.
PW_DIR=${VIGIL_WEB_TEST_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/vigil-web-test}
if [ ! -f "$PW_DIR/node_modules/playwright-core/package.json" ]; then
    require "npm, to install playwright-core (Debian npm)" command -v npm
    mkdir -p "$PW_DIR"
    if ! npm install --prefix "$PW_DIR" --no-audit --no-fund --loglevel=error \
        playwright-core@1 >"$T/npm.log" 2>&1; then
        cat "$T/npm.log" >&2
        fail "npm install playwright-core@1 into $PW_DIR failed (output above)"
    fi
fi

clip() { # clip IMAGE OUT: 4 s of one still picture, 15 fps, a keyframe every second
    ffmpeg -loglevel error -y -loop 1 -i "$SHARED/fixtures/$1" \
        -vf "scale=640:424,format=yuv420p" -t 4 -r 15 -c:v libx264 -preset ultrafast \
        -bf 0 -g 15 "$2" || fail "ffmpeg could not make $2"
}
clip person.jpg "$T/person.mp4"
clip eagle.jpg "$T/eagle.mp4"

TOKEN=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$TOKEN" >"$T/token"
HTTP_PORT=$(free_port)
cat >"$T/vigil.yaml" <<YAML
instance_id: webtest
mqtt: {enabled: false}
http: {listen: 127.0.0.1:$HTTP_PORT, web_root: $SRC/web, auth_token_file: $T/token}
models_dir: $SHARED/models
models:
  - {model_id: yolo-fastest-body, config: yolo-fastest-1.1_body.cfg,
     weights: yolo-fastest-1.1_body.weights, labels: body.names}
capture: {allow_files: true, reconnect_initial_s: 0.5, reconnect_max_s: 2}
streams:
  - stream_id: room-101
    url: $T/person.mp4
    fps: 2
    workers: [{type: person_detector, spec: {model_id: yolo-fastest-body}}]
  - {stream_id: room-102, url: $T/eagle.mp4, fps: 2}
  - {stream_id: room-103, url: "rtsp://127.0.0.1:1/x", fps: 1}
YAML
bg vigild "$VIGILD" -c "$T/vigil.yaml"
VPID=$LAST_PID
URL=http://127.0.0.1:$HTTP_PORT
wait_for 10 curl -sf "$URL/healthz" || fail "vigild did not start"
curl -sf "$URL/" | grep -q 'app.js' || fail "/ does not serve web/index.html"

ARTIFACTS=$BUILD/artifacts
mkdir -p "$ARTIFACTS"
rm -f "$ARTIFACTS"/web*.png
VIGIL_URL=$URL VIGIL_TOKEN=$TOKEN VIGILD_PID=$VPID ARTIFACTS=$ARTIFACTS PW_DIR=$PW_DIR \
    PROFILE_DIR="$T/chromium-profile" PERSON=room-101 OTHER=room-102 DEAD=room-103 \
    timeout 150 node "$SRC/tests/integration/web.mjs" || fail "web page checks failed"

# web.mjs stopped the daemon to see the offline banner: it must have exited cleanly
rc=0
wait "$VPID" || rc=$?
[ "$rc" = 0 ] || fail "vigild exited with $rc"
pass "web page (screenshots: $ARTIFACTS/web.png, web-tablet.png, web-offline.png)"
