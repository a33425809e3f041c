#!/usr/bin/env bash
# Inference on real clips with the real models: a person is found in the person clip
# (body, COCO, XL and builtin-hog models), never in the animal clips; a roi without the
# person finds none; a live model change switches results without a capture gap; a
# broken model is refused and the old one keeps producing; executors are fair.
. "$(dirname "$0")/lib.sh"

for img in person dog horses eagle giraffe; do
    eval "CLIP_$img=\$(clip $img-640 $img.jpg 640x360 15 1)"
done
cp "$SHARED/models/yolo-fastest-1.1_body.cfg" "$T/broken.cfg"
head -c 4000 "$SHARED/models/yolo-fastest-1.1_body.weights" >"$T/broken.weights"
HTTP_PORT=$(free_port)
person_worker() { echo "[{type: person_detector, spec: {model_id: $1}}]"; }
cat >"$T/vigil.yaml" <<YAML
instance_id: infertest
capture: {allow_files: true} # the streams read clip files
log: {level: debug}
mqtt: {enabled: false}
http: {listen: 127.0.0.1:$HTTP_PORT}
models_dir: $SHARED/models
models:
  - {model_id: body, config: yolo-fastest-1.1_body.cfg, weights: yolo-fastest-1.1_body.weights, labels: body.names}
  - {model_id: coco, config: yolo-fastest-1.1.cfg, weights: yolo-fastest-1.1.weights, labels: coco.names}
  - {model_id: xl, config: yolo-fastest-1.1-xl.cfg, weights: yolo-fastest-1.1-xl.weights, labels: coco.names}
  - {model_id: broken, config: $T/broken.cfg, weights: $T/broken.weights}
inference: {threads: 2}
streams:
  - {stream_id: p_body, url: $CLIP_person, fps: 2, workers: $(person_worker body)}
  - {stream_id: p_coco, url: $CLIP_person, fps: 1, workers: $(person_worker coco)}
  - {stream_id: p_xl, url: $CLIP_person, fps: 1, workers: $(person_worker xl)}
  - {stream_id: p_hog, url: $CLIP_person, fps: 1, workers: $(person_worker builtin-hog)}
  - stream_id: p_roi
    url: $CLIP_person
    fps: 2
    workers: [{type: person_detector, spec: {model_id: body, roi: {x: 420, y: 0, w: 220, h: 360}}}]
  - {stream_id: dog, url: $CLIP_dog, fps: 2, workers: $(person_worker body)}
  - {stream_id: horses, url: $CLIP_horses, fps: 2, workers: $(person_worker body)}
  - {stream_id: eagle, url: $CLIP_eagle, fps: 2, workers: $(person_worker body)}
  - {stream_id: giraffe, url: $CLIP_giraffe, fps: 2, workers: $(person_worker body)}
YAML
start_vigild "$T/vigil.yaml"

# results of one stream, one JSON per line, from the debug log
results() { grep '"event":"inference"' "$T/vigild.log" | jq -c "select(.stream_id == \"$1\") | .result"; }
max_conf() { results "$1" | jq -s '[.[].detections[].confidence] | max // 0'; }

for s in p_body p_coco p_xl p_hog; do
    wait_for 10 sh -c "grep '\"event\":\"inference\"' $T/vigild.log | grep -q '\"stream_id\":\"$s\".*\"person_count\":[1-9]'" ||
        fail "$s: no person within 10 s"
done
sleep 4 # let every stream produce several results
for s in p_body p_coco p_xl; do
    c=$(max_conf "$s")
    jq -en "$c > 0.5" >/dev/null || fail "$s: best person confidence $c"
done
for s in p_roi dog horses eagle giraffe; do
    n=$(results "$s" | wc -l)
    [ "$n" -ge 3 ] || fail "$s: only $n results"
    hits=$(results "$s" | jq -s '[.[] | select(.person_count > 0)] | length')
    [ "$hits" = 0 ] || fail "$s: a person in $hits of $n frames"
done
# boxes are normalised, inside the frame, and sensible for the standing person
results p_body | tail -1 | jq -e '.detections[0].box | .x >= 0 and .y >= 0 and .w > 0.05 and
    .h > 0.3 and .x + .w <= 1.0001 and .y + .h <= 1.0001' >/dev/null || fail "box malformed"
results p_body | jq -s -e 'map(select(.detector_ran)) | last | .frame.width == 640 and
    .frame.height == 360 and .latency_ms >= 0 and .inference_ms > 0 and .seq > 0 and
    .model_id == "body"' >/dev/null ||
    fail "result fields"

# live model change: results switch model, capture never reconnects
sampled() { curl -s "$URL/api/v1/streams/p_body" | jq '.frames_sampled'; }
before=$(sampled)
expect_code 200 PATCH /api/v1/streams/p_body -H 'Content-Type: application/json' -d '{"model_id":"coco"}'
wait_for 10 sh -c "curl -s $URL/api/v1/streams/p_body/detections | jq -e '.results[0].model_id == \"coco\" and .results[0].person_count >= 1'" ||
    fail "results did not switch to coco"
expect_code 200 GET /api/v1/streams/p_body
jq_body '.reconnects == 0 and .state == "running"'
[ "$(sampled)" -gt "$before" ] || fail "capture stalled during the model change"

# a broken model: refused after trying, the old model keeps producing
expect_code 422 PATCH /api/v1/streams/p_body -H 'Content-Type: application/json' -d '{"model_id":"broken"}'
jq_body '.status == "failed" and .error.code == "model_load_failed" and (.error.message | contains("broken.weights"))'
n0=$(results p_body | wc -l)
sleep 2
results p_body | tail -1 | jq -e '.model_id == "coco"' >/dev/null || fail "old model not kept"
[ "$(results p_body | wc -l)" -gt "$n0" ] || fail "no results after the refused change"
kill -0 "$VPID" || fail "daemon died"
pass "inference"
