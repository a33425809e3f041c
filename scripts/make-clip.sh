#!/bin/sh
# make-clip.sh — turn a still image into a looping H.264 test clip for vigil-camsim.
#
# Usage: make-clip.sh IMAGE OUT.mp4 [WxH] [FPS] [GOP_SECONDS]
#   defaults: 1280x720, 15 fps, one keyframe per second; CLIP_SECONDS (env, default 10)
#   sets the duration; CLIP_PAN_SECONDS (env, default the duration) how long of it the
#   picture moves: 0 is a still camera, 3 of 10 a room with 3 s of activity in every 10;
#   CLIP_PAN_START (env, default 0) when it starts moving (still before).
#   CLIP_NOISE (env, default 0): sensor noise, the strength of ffmpeg's `noise` filter
#   (temporal, all planes; 8-12 looks like a real camera indoors), so still P-frames are
#   not empty. CLIP_CBR_KBPS (env, default off): constant bitrate (x264 nal-hrd=cbr with
#   filler), so P-frames are about the same size whatever moves, like a CBR camera.
# The image is letterboxed into the frame and slowly panned (a window moving on a cosine
# path whose period is the pan time; it then rests where it started), so the last frame
# flows into the first and a looped clip has no jump.
# Encoding: libx264 ultrafast, yuv420p, no B-frames, fixed GOP (-g = -keyint_min,
# scene-cut detection off), +faststart. Idempotent: does nothing when OUT is newer than
# IMAGE. Writes to a temporary file and renames, so concurrent callers never see half
# a clip.
set -eu

usage() { echo "usage: $0 IMAGE OUT.mp4 [WxH] [FPS] [GOP_SECONDS]" >&2; exit 2; }
[ $# -ge 2 ] && [ $# -le 5 ] || usage

IMAGE=$1
OUT=$2
SIZE=${3:-1280x720}
FPS=${4:-15}
GOP_S=${5:-1}
SECONDS_=${CLIP_SECONDS:-10}
PAN=${CLIP_PAN_SECONDS:-$SECONDS_}
PAN_START=${CLIP_PAN_START:-0}
NOISE=${CLIP_NOISE:-0}
CBR=${CLIP_CBR_KBPS:-0}

[ -r "$IMAGE" ] || { echo "$0: cannot read image $IMAGE" >&2; exit 1; }
W=${SIZE%x*}
H=${SIZE#*x}
case "$W$H$FPS$GOP_S$SECONDS_$PAN$PAN_START$NOISE$CBR" in
*[!0-9]*) echo "$0: WxH, FPS, GOP_SECONDS and the CLIP_* settings must be integers" >&2
    exit 2 ;;
esac
[ $((PAN + PAN_START)) -le "$SECONDS_" ] || { echo "$0: CLIP_PAN_SECONDS is longer than CLIP_SECONDS" >&2; exit 2; }
[ $((W % 2)) -eq 0 ] && [ $((H % 2)) -eq 0 ] || { echo "$0: W and H must be even" >&2; exit 2; }
[ "$FPS" -gt 0 ] && [ "$GOP_S" -gt 0 ] && [ "$SECONDS_" -gt 0 ] || usage

if [ -f "$OUT" ] && [ -n "$(find "$OUT" -newer "$IMAGE" 2>/dev/null)" ]; then
    exit 0
fi

GOP=$((GOP_S * FPS))
FRAMES=$((SECONDS_ * FPS))
# Fit the whole picture into a frame 6 % larger than the target (letterboxed, never
# cropped, so everything the test image shows stays in view and keeps its aspect), then
# move a WxH window over the margin: x and y follow (1 - cos(2*pi*min(t,P)/P)) / 2, so the
# path starts and ends at the same spot and rests there after P seconds.
BW=$(( (W * 106 / 100) / 2 * 2 ))
BH=$(( (H * 106 / 100) / 2 * 2 ))
if [ "$PAN" -gt 0 ]; then
    PHASE="(1-cos(2*PI*min(max(t-$PAN_START\,0)\,$PAN)/$PAN))"
    XY="x='(iw-ow)*$PHASE/2':y='(ih-oh)*$PHASE/4'"
else
    XY="x=0:y=0"
fi
VF="scale=$BW:$BH:force_original_aspect_ratio=decrease,pad=$BW:$BH:(ow-iw)/2:(oh-ih)/2,\
crop=$W:$H:$XY,format=yuv420p"
[ "$NOISE" -eq 0 ] || VF="$VF,noise=alls=$NOISE:allf=t"
RATE=""
[ "$CBR" -eq 0 ] || RATE="-b:v ${CBR}k -minrate ${CBR}k -maxrate ${CBR}k -bufsize $((CBR / 2))k \
-x264-params nal-hrd=cbr:filler=1"

TMP="$OUT.tmp.$$.mp4"
trap 'rm -f "$TMP"' EXIT INT TERM
ffmpeg -hide_banner -loglevel error -nostdin -y \
    -loop 1 -framerate "$FPS" -i "$IMAGE" \
    -vf "$VF" -frames:v "$FRAMES" -r "$FPS" -an \
    -c:v libx264 -preset ultrafast -pix_fmt yuv420p -profile:v baseline \
    -bf 0 -g "$GOP" -keyint_min "$GOP" -sc_threshold 0 $RATE \
    -movflags +faststart "$TMP"
mv -f "$TMP" "$OUT"
trap - EXIT INT TERM
