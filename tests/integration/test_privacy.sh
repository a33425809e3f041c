#!/usr/bin/env bash
# Privacy masks hold whatever the camera sends: 20 masks (more than the 16 that once
# reached the snapshot), stored as fractions of the frame, on a camera that switches from
# 640x360 to 1280x960 mid-stream; every masked pixel of every snapshot.jpg is black at
# both resolutions. Masks that are pixels, reach past the frame or are too many are
# refused by the config file and by add_stream over REST, naming the field.
. "$(dirname "$0")/lib.sh"

SMALL=$(CLIP_SECONDS=3 clip person-640 person.jpg 640x360 15 1)
LARGE=$(CLIP_SECONDS=3 clip person-1280x960 person.jpg 1280x960 15 1)
SIZES=$(clip_sizes person-640-1280x960 "$SMALL" "$LARGE")
ffprobe -v error -show_entries frame=width,height -of csv=p=0 "$SIZES" | cut -d, -f1,2 | grep , | sort -u >"$T/sizes"
[ "$(wc -l <"$T/sizes")" = 2 ] || fail "the clip does not change size: $(cat "$T/sizes")"
start_camsim --camera sizes="$SIZES"
HTTP_PORT=$(free_port)

# 20 masks on a 5 x 4 grid: x from k/20, y from k/15 of the frame, so their edges fall
# on JPEG block edges in both 640x360 and 640x480 snapshots (no ringing inside them)
MASKS=$($PY -c '
import json
print(json.dumps([{"x": (1 + 4 * c) / 20, "y": (1 + 4 * r) / 15, "w": 2 / 20, "h": 2 / 15}
                  for r in range(4) for c in range(5)]))')
echo "$MASKS" >"$T/masks.json"
cat >"$T/vigil.yaml" <<YAML
instance_id: privacytest
mqtt: {enabled: false}
http: {listen: 127.0.0.1:$HTTP_PORT}
streams:
  - stream_id: room
    rtsp_url: rtsp://127.0.0.1:$RTSP_PORT/sizes
    fps: 5
    workers: [{type: motion_detector}]
    privacy_masks: $MASKS
YAML
start_vigild "$T/vigil.yaml"
wait_for 20 sh -c "curl -sf $URL/api/v1/streams/room | jq -e '.state == \"running\"'" ||
    fail "room not running"
expect_code 200 GET /api/v1/streams/room
jq_body '.workers | length == 1'

# snapshots until both resolutions were seen (the clip loops every 6 s)
mkdir -p "$T/snaps"
end=$(($(date +%s) + 40))
n=0
while [ "$(date +%s)" -lt "$end" ]; do
    n=$((n + 1))
    curl -sf -o "$T/snaps/$n.jpg" "$URL/api/v1/streams/room/snapshot.jpg?boxes=1" || rm -f "$T/snaps/$n.jpg"
    heights=$(for f in "$T"/snaps/*.jpg; do ffprobe -v error -show_entries stream=height -of csv=p=0 "$f"; done | sort -u | tr '\n' ' ')
    [ "$heights" = "360 480 " ] && [ "$n" -ge 20 ] && break
    sleep 0.3
done
[ "$heights" = "360 480 " ] || fail "snapshots never showed both sizes: heights '$heights'"

# The check reads the JPEG's own luma (ffmpeg, gray = the Y plane): RGB from a decoder
# upsamples chroma across block edges and tints the mask's border pixels.
$PY - "$T/masks.json" "$T"/snaps/*.jpg <<'PYEOF' || fail "masked pixels not black"
import sys, json, math, subprocess
import numpy as np
masks = json.load(open(sys.argv[1]))
assert len(masks) == 20
seen = {}
for path in sys.argv[2:]:
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=width,height",
                            "-of", "csv=p=0", path], capture_output=True, text=True, check=True)
    w, h = map(int, probe.stdout.strip().split(","))
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", "gray",
                          "-"], capture_output=True, check=True).stdout
    y = np.frombuffer(raw, np.uint8).reshape(h, w)
    seen[h] = seen.get(h, 0) + 1
    outside = np.ones((h, w), bool)
    for i, m in enumerate(masks):
        e = 1e-6  # as src/privacy.c: outward, float error aside
        x0, y0 = math.floor(m["x"] * w + e), math.floor(m["y"] * h + e)
        x1, y1 = math.ceil((m["x"] + m["w"]) * w - e), math.ceil((m["y"] + m["h"]) * h - e)
        inside = y[y0:y1, x0:x1]
        assert inside.size and inside.max() <= 16, \
            f"{path} ({w}x{h}): mask {i} not black, max {inside.max()} in {x0},{y0}-{x1},{y1}"
        outside[y0:y1, x0:x1] = False
    assert y[outside].mean() > 40, f"{path}: unmasked picture looks black ({y[outside].mean():.1f})"
print("snapshots by height:", seen)
PYEOF
pass "20 masks black in every snapshot at 640x360 and 1280x960"

# the same masks are refused, naming the field, when they are pixels, too many or outside
J=(-H "Content-Type: application/json")
expect_code 400 POST /api/v1/streams "${J[@]}" -d "{\"stream_id\":\"p1\",\"rtsp_url\":\"rtsp://127.0.0.1:1/x\",\"privacy_masks\":[{\"x\":0,\"y\":0,\"w\":200,\"h\":120}]}"
jq_body '.error.code == "invalid_param" and .error.field == "privacy_masks[0].w" and (.error.message | test("fractions of the frame"))'
expect_code 400 POST /api/v1/streams "${J[@]}" -d "{\"stream_id\":\"p2\",\"rtsp_url\":\"rtsp://127.0.0.1:1/x\",\"privacy_masks\":[{\"x\":0.8,\"y\":0,\"w\":0.5,\"h\":0.1}]}"
jq_body '.error.field == "privacy_masks[0].w"'
MANY=$($PY -c 'import json; print(json.dumps([{"x": 0, "y": 0, "w": 0.1, "h": 0.1}] * 65))')
expect_code 400 POST /api/v1/streams "${J[@]}" -d "{\"stream_id\":\"p3\",\"rtsp_url\":\"rtsp://127.0.0.1:1/x\",\"privacy_masks\":$MANY}"
jq_body '.error.field == "privacy_masks" and (.error.message | test("at most 64"))'
expect_code 201 POST /api/v1/streams "${J[@]}" -d "{\"stream_id\":\"p4\",\"rtsp_url\":\"rtsp://127.0.0.1:1/x\",\"privacy_masks\":$MASKS}"
expect_code 404 GET /api/v1/streams/p3
sed 's/privacy_masks: .*/privacy_masks: [{x: 0, y: 0, w: 200, h: 120}]/' "$T/vigil.yaml" >"$T/pixels.yaml"
if "$BUILD/vigild" --check-config -c "$T/pixels.yaml" 2>"$T/pixels.err"; then fail "pixel masks accepted"; fi
grep -q "key 'streams\[0\].privacy_masks\[0\].w'" "$T/pixels.err" || fail "config error: $(cat "$T/pixels.err")"
pass "pixel, outside and too many masks refused by field"
term_within "$VPID" 5000
