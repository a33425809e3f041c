#!/usr/bin/env bash
# The demo: installs what is missing, builds, then runs a small ward on this machine:
# mosquitto, vigil-camsim serving rooms made from ../shared/fixtures (some with a person,
# some empty), and vigild watching them with a configuration generated from
# config/vigil.yaml. The broker is locked down as deploy/mosquitto ships it: no anonymous
# clients, passwords made by make-passwd.sh (in build/demo/secrets), and the ACL (only
# the orchestrator user commands vigild, only vigil publishes results and status).
# Prints the web page URL and mosquitto_sub commands; Ctrl-C stops everything it started.
#   VIGIL_BUILD_DIR        build folder (default: build)
#   VIGIL_DEMO_NO_BUILD=1  skip install-deps and the build (use what VIGIL_BUILD_DIR has)
#   VIGIL_SHARED_DIR       fixtures and models (default: ../shared)
#   VIGIL_DEMO_HTTP_PORT   web page port (default 8080; a free one if 8080 is taken)
#   VIGIL_DEMO_MQTT_PORT   broker port (default 1883; a free one if 1883 is taken)
# Without model files in VIGIL_SHARED_DIR/models the rooms use builtin-hog.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
BUILD_DIR=${VIGIL_BUILD_DIR:-build}
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR=$REPO/$BUILD_DIR ;; esac
SHARED=${VIGIL_SHARED_DIR:-$REPO/../shared}
PY=/usr/bin/python3

if [ "${VIGIL_DEMO_NO_BUILD:-0}" != 1 ]; then
    ./scripts/install-deps.sh
    cmake -S . -B "$BUILD_DIR" >/dev/null
    cmake --build "$BUILD_DIR" -j"$(nproc)"
fi
for bin in vigild vigil-camsim; do
    [ -x "$BUILD_DIR/$bin" ] || { echo "demo: $BUILD_DIR/$bin is missing (build first)" >&2; exit 1; }
done
[ -d "$SHARED/fixtures" ] || { echo "demo: no fixtures in $SHARED/fixtures" >&2; exit 1; }

RUN=$BUILD_DIR/demo
mkdir -p "$RUN" "$BUILD_DIR/demo-clips"
PIDS=()
stopping=0
stop_all() { # reverse start order: vigild drains first, then the cameras, then the broker
    stopping=1
    trap '' INT TERM
    local i p
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        p=${PIDS[i]}
        kill -TERM "$p" 2>/dev/null || continue
        for _ in $(seq 80); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
}
on_signal() {
    echo
    echo "demo: stopping"
    stop_all
    exit 0
}
trap on_signal INT TERM
trap '[ "$stopping" = 1 ] || stop_all' EXIT

in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
    $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
pick_port() { # WANTED: WANTED unless something listens there, else a free port
    if in_use "$1"; then free_port; else echo "$1"; fi
}
wait_for() { # SECONDS PID CMD...: until CMD succeeds; fails early if PID died
    local end=$((SECONDS + $1)) pid=$2
    shift 2
    until "$@" >/dev/null 2>&1; do
        kill -0 "$pid" 2>/dev/null || return 1
        [ "$SECONDS" -lt "$end" ] || return 1
        sleep 0.2
    done
}
die_with_log() { # MESSAGE LOG
    echo "demo: $1; last lines of $2:" >&2
    tail -n 20 "$2" >&2 || true
    exit 1
}

# ---- rooms: clips from the fixtures (made once, cached in the build folder)
ROOMS=(room-101=person.jpg room-102=dog.jpg room-103=person.jpg room-104=eagle.jpg room-105=horses.jpg)
CAMS=()
for r in "${ROOMS[@]}"; do
    room=${r%%=*} image=${r#*=}
    clip=$BUILD_DIR/demo-clips/${image%.jpg}-640.mp4
    CLIP_SECONDS=6 ./scripts/make-clip.sh "$SHARED/fixtures/$image" "$clip" 640x360 15 1 >/dev/null 2>&1 ||
        { echo "demo: could not make a clip from $SHARED/fixtures/$image" >&2; exit 1; }
    CAMS+=(--camera "$room=$clip")
done

# ---- broker: deploy/mosquitto's ACL, passwords made for this run
MQTT_PORT=${VIGIL_DEMO_MQTT_PORT:-$(pick_port 1883)}
SECRETS=$RUN/secrets
"$REPO/deploy/mosquitto/make-passwd.sh" "$SECRETS" >/dev/null
{
    printf 'listener %s 127.0.0.1\npersistence false\nallow_anonymous false\n' "$MQTT_PORT"
    printf 'password_file %s\nacl_file %s\n' "$SECRETS/passwd" "$REPO/deploy/mosquitto/acl"
    [ "$(id -u)" != 0 ] || echo "user root" # as root, keep the rights to read $SECRETS
} >"$RUN/mosquitto.conf"
mosquitto -c "$RUN/mosquitto.conf" >"$RUN/mosquitto.log" 2>&1 &
PIDS+=($!)
wait_for 10 "${PIDS[-1]}" mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -u dashboard \
    -P "$(cat "$SECRETS/dashboard.password")" -t care/probe -E -W 2 ||
    die_with_log "mosquitto did not start on port $MQTT_PORT" "$RUN/mosquitto.log"

# ---- cameras
"$BUILD_DIR/vigil-camsim" --port 0 "${CAMS[@]}" >"$RUN/camsim.out" 2>"$RUN/camsim.log" &
PIDS+=($!)
wait_for 15 "${PIDS[-1]}" grep -q '^camsim ready' "$RUN/camsim.out" ||
    die_with_log "vigil-camsim did not start" "$RUN/camsim.log"
RTSP_PORT=$(sed -n 's/^camsim ready port=\([0-9]*\).*/\1/p' "$RUN/camsim.out")

# ---- vigild, configured from config/vigil.yaml
HTTP_PORT=${VIGIL_DEMO_HTTP_PORT:-$(pick_port 8080)}
rooms_arg=()
for r in "${ROOMS[@]}"; do rooms_arg+=("${r%%=*}=rtsp://127.0.0.1:$RTSP_PORT/${r%%=*}"); done
MODEL=$($PY - "$REPO/config/vigil.yaml" "$RUN/vigil.yaml" "$SHARED/models" "$REPO/web" \
    "$MQTT_PORT" "$HTTP_PORT" "$SECRETS/vigil.password" "${rooms_arg[@]}" <<'PY'
import os, sys, yaml
base, out, models_dir, web, mqtt_port, http_port, mqtt_pw = sys.argv[1:8]
rooms = [a.split("=", 1) for a in sys.argv[8:]]
cfg = yaml.safe_load(open(base))
cfg["mqtt"]["port"] = int(mqtt_port)
cfg["mqtt"]["username"] = "vigil"  # deploy/mosquitto/acl
cfg["mqtt"]["password_file"] = mqtt_pw
cfg["http"]["listen"] = "127.0.0.1:" + http_port
cfg["http"]["web_root"] = web
cfg["models_dir"] = models_dir
# keep the models whose files are there; builtin-hog always exists
have = lambda m: all(os.path.isfile(os.path.join(models_dir, m[k])) for k in ("config", "weights", "labels") if m.get(k))
cfg["models"] = [m for m in cfg.get("models") or [] if have(m)]
detect = [m["model_id"] for m in cfg["models"] if m.get("task", "detect") == "detect"]
model = detect[0] if detect else "builtin-hog"
cfg["streams"] = [{"stream_id": room, "rtsp_url": url, "fps": 1,
                   "workers": [{"type": "person_detector", "spec": {"model_id": model}}]}
                  for room, url in rooms]
cfg["streams"][1]["workers"].append({"type": "motion_detector"})
with open(out, "w") as f:
    f.write("# generated by scripts/demo.sh from config/vigil.yaml\n")
    yaml.safe_dump(cfg, f, sort_keys=False, default_flow_style=None, width=100)
print(model)
PY
)
"$BUILD_DIR/vigild" --check-config -c "$RUN/vigil.yaml" >/dev/null || { echo "demo: generated configuration is invalid" >&2; exit 1; }
"$BUILD_DIR/vigild" -c "$RUN/vigil.yaml" 2>"$RUN/vigild.log" &
PIDS+=($!)
VIGILD=${PIDS[-1]}
wait_for 20 "$VIGILD" curl -sf "http://127.0.0.1:$HTTP_PORT/healthz" ||
    die_with_log "vigild did not start" "$RUN/vigild.log"

SUB="mosquitto_sub -h 127.0.0.1 -p $MQTT_PORT -u dashboard -P \"\$(cat $SECRETS/dashboard.password)\""
cat <<EOF

vigil demo is running ($((${#ROOMS[@]})) rooms, model $MODEL):
  web page    http://127.0.0.1:$HTTP_PORT/
  results     $SUB -t 'care/inferences/#' -v
  everything  $SUB -t 'care/#' -v
  commands    mosquitto_pub -h 127.0.0.1 -p $MQTT_PORT -u orchestrator -P "\$(cat $SECRETS/orchestrator.password)" -t care/control/vigil-demo -m '{"command": ...}'
  broker      only vigil, orchestrator and dashboard may log in (deploy/mosquitto/acl); passwords in $SECRETS
  REST        curl -s http://127.0.0.1:$HTTP_PORT/api/v1/streams
  metrics     curl -s http://127.0.0.1:$HTTP_PORT/metrics
  cameras     rtsp://127.0.0.1:$RTSP_PORT/{$(IFS=,; echo "${ROOMS[*]%%=*}")}
              (room-101 and room-103 have a person in them; the others do not)
  logs        $RUN/{vigild,camsim,mosquitto}.log
Ctrl-C stops everything.
EOF

# until Ctrl-C, or until vigild stops on its own
while kill -0 "$VIGILD" 2>/dev/null; do
    wait "$VIGILD" 2>/dev/null || true
done
[ "$stopping" = 1 ] || die_with_log "vigild exited" "$RUN/vigild.log"
