#!/usr/bin/python3
"""baseline_detect.py — one camera of the common NVR architecture, the baseline of
bench_side_by_side.py: an ffmpeg process decodes the RTSP stream and scales it to
320x320 BGR at the detection fps, piped into this Python process, which runs the same
model (yolo-fastest-body) with OpenCV DNN and decodes the boxes like vigil does
(best class >= threshold, NMS 0.45).

ffmpeg is this process's child:
  ffmpeg -threads 1 -use_wallclock_as_timestamps 1 -rtsp_transport tcp -i URL
         -vf fps=F,scale=320:320,showinfo -f rawvideo -pix_fmt bgr24 -
-threads 1 matches vigil's one decoder thread per stream. The two additions serve the
latency estimate only: -use_wallclock_as_timestamps stamps each packet with the wall
clock when ffmpeg read it (vigil's captured_at is the same thing) and showinfo logs
each output frame's slot index on stderr (at F frames/s, on a 320x320 picture: a few
microseconds). ffmpeg prints the first packet's wall time as "start:"; the fps filter
fills output slot n with the last input frame whose time rounds to n, i.e. the one
just before (n + 0.5) / F, so the source frame was read at about
start + (n + 0.5) / F - 1 / (2 x source fps), within +-half a source frame interval
(+-33 ms at 15 fps). latency = result time - that estimate.
Measured with checksums (showinfo's adler32 against the bytes that reach the pipe):
ffmpeg 5.1 writes output frame n to the pipe only when frame n + 1 leaves the filter
graph, so the baseline's latency includes one whole output interval (1 s at 1 fps);
-flush_packets 1 and -fps_mode passthrough do not change that. It is part of this
architecture as commonly deployed, so it is measured, not corrected.

stdout: "ready pid=P ffmpeg=Q" once the net is loaded and ffmpeg started.
--out FILE: one line per frame, "n src_est arrival done detections" (epoch seconds).
SIGTERM stops ffmpeg and exits.
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time

import cv2
import numpy as np

SIZE = 320


class Slots:
    """ffmpeg's stderr: the input's start time and each output frame's slot index."""

    def __init__(self, stream):
        self.start = None
        self.slots = {}
        self.cv = threading.Condition()
        threading.Thread(target=self.read, args=(stream,), daemon=True).start()

    def read(self, stream):
        start_re = re.compile(rb"start: (-?[0-9.]+)")
        show_re = re.compile(rb"showinfo.* n: *(\d+) pts: *(-?\d+)")
        for line in iter(stream.readline, b""):
            m = show_re.search(line)
            with self.cv:
                if m:
                    self.slots[int(m.group(1))] = int(m.group(2))
                    self.cv.notify_all()
                elif self.start is None:
                    s = start_re.search(line)
                    if s:
                        self.start = float(s.group(1))

    def get(self, n, timeout=0.5):
        with self.cv:
            self.cv.wait_for(lambda: n in self.slots, timeout)
            return self.start, self.slots.pop(n, None)


def read_exact(f, buf):
    view = memoryview(buf)
    got = 0
    while got < len(buf):
        k = f.readinto(view[got:])
        if not k:
            return False
        got += k
    return True


def detect(net, names, frame, conf):
    blob = cv2.dnn.blobFromImage(frame, 1 / 255.0, (SIZE, SIZE), swapRB=True, crop=False)
    net.setInput(blob)
    outs = net.forward(names)
    boxes, scores = [], []
    for out in outs:
        cls = out[:, 5:]
        best = cls.max(axis=1)
        for row, s in zip(out[best >= conf], best[best >= conf]):
            cx, cy, w, h = row[:4]
            boxes.append([float(cx - w / 2), float(cy - h / 2), float(w), float(h)])
            scores.append(float(s))
    if not boxes:
        return 0
    return len(cv2.dnn.NMSBoxes(boxes, scores, conf, 0.45))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--fps", type=float, required=True)
    ap.add_argument("--models", required=True)
    ap.add_argument("--cv-threads", type=int, default=1,
                    help="cv2.setNumThreads (default 1, as vigil's executors); -1 leaves "
                         "OpenCV's default")
    ap.add_argument("--conf", type=float, default=0.5)
    ap.add_argument("--src-fps", type=float, default=15.0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.cv_threads >= 0:
        cv2.setNumThreads(a.cv_threads)
    net = cv2.dnn.readNetFromDarknet(os.path.join(a.models, "yolo-fastest-1.1_body.cfg"),
                                     os.path.join(a.models, "yolo-fastest-1.1_body.weights"))
    names = net.getUnconnectedOutLayersNames()
    frame = np.zeros((SIZE, SIZE, 3), np.uint8)
    detect(net, names, frame, a.conf)  # warm-up, as vigil's detector does at load
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-loglevel", "info",
           "-threads", "1", "-use_wallclock_as_timestamps", "1", "-rtsp_transport", "tcp",
           "-i", a.url, "-vf", f"fps={a.fps:g},scale={SIZE}:{SIZE},showinfo",
           "-f", "rawvideo", "-pix_fmt", "bgr24", "-"]
    ff = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)

    def stop(signum, frm):
        if ff.poll() is None:
            ff.terminate()
            try:
                ff.wait(3)
            except subprocess.TimeoutExpired:
                ff.kill()
        os._exit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    slots = Slots(ff.stderr)
    print(f"ready pid={os.getpid()} ffmpeg={ff.pid}", flush=True)
    buf = bytearray(SIZE * SIZE * 3)
    half_src = 0.5 / a.src_fps
    with open(a.out, "w", buffering=1) as out:
        n = 0
        while read_exact(ff.stdout, buf):
            arrival = time.time()
            img = np.frombuffer(buf, np.uint8).reshape(SIZE, SIZE, 3)
            k = detect(net, names, img, a.conf)
            done = time.time()
            start, slot = slots.get(n)
            src = (start + (slot + 0.5) / a.fps - half_src
                   if start is not None and slot is not None else float("nan"))
            out.write(f"{n} {src:.4f} {arrival:.4f} {done:.4f} {k}\n")
            n += 1
    stop(0, None)


if __name__ == "__main__":
    sys.exit(main())
