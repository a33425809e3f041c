"""benchlib.py — what vigil's benchmarks share: a scratch folder and the processes a
benchmark started (stopped by PID, never by name), clips, the camera simulator, a
mosquitto broker, vigild with a generated configuration, /proc sampling (CPU ticks,
RSS/PSS, per-thread CPU) and small statistics and table helpers.

Standard library only; runs under Debian's /usr/bin/python3. The benchmarks print
their figures as they go and return a dict that run_all.py turns into RESULTS.md.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # loadgen/, for the soak's helpers
from soaklib.procs import free_port  # noqa: E402,F401 - shared with the soak
SRC = os.environ.get("VIGIL_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("VIGIL_BUILD_DIR") or os.path.join(SRC, "build")
SHARED = os.environ.get("VIGIL_SHARED_DIR") or os.path.join(SRC, "..", "shared")
MODELS = os.path.join(SHARED, "models")
PY = "/usr/bin/python3"  # Debian's, with python3-opencv
HZ = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1

BODY_MODEL_YAML = (
    "  - {model_id: yolo-fastest-body, format: darknet, config: yolo-fastest-1.1_body.cfg,"
    " weights: yolo-fastest-1.1_body.weights, labels: body.names, input_size: 320}\n")


def log(msg):
    print(msg, flush=True)


# ---- scratch folder and owned processes --------------------------------------------------


class Run:
    """A benchmark's scratch folder and every process it started. close() stops them
    (SIGTERM, then SIGKILL after a grace period) by PID and removes the folder unless
    keep is set or the run failed."""

    def __init__(self, name, keep=False):
        self.dir = tempfile.mkdtemp(prefix=f"vigil-bench-{name}.",
                                    dir=os.environ.get("TMPDIR", "/tmp"))
        self.keep = keep or bool(os.environ.get("VIGIL_BENCH_KEEP"))
        self.procs = []

    def path(self, name):
        return os.path.join(self.dir, name)

    def start(self, name, argv, stdout=None, stdin=subprocess.DEVNULL, env=None):
        """Starts argv; stderr goes to <dir>/<name>.log, stdout to `stdout` (a file
        name inside the folder, subprocess.PIPE, or None for the same log)."""
        err = open(self.path(name + ".log"), "ab")
        if stdout is None:
            out = err
        elif stdout is subprocess.PIPE:
            out = subprocess.PIPE
        else:
            out = open(self.path(stdout), "ab")
        p = subprocess.Popen(argv, stdout=out, stderr=err, stdin=stdin, env=env)
        p.bench_name = name
        self.procs.append(p)
        return p

    def stop(self, p, grace=5.0):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.procs:
            self.procs.remove(p)

    def stop_many(self, procs, grace=5.0):
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        end = time.time() + grace
        for p in procs:
            try:
                p.wait(max(0.1, end - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if p in self.procs:
                self.procs.remove(p)

    def close(self, ok=True):
        self.stop_many(list(reversed(self.procs)))
        if ok and not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            log(f"# logs kept in {self.dir}")


def wait_for(pred, timeout, step=0.1):
    end = time.time() + timeout
    while time.time() < end:
        try:
            v = pred()
            if v:
                return v
        except (OSError, ValueError):
            pass
        time.sleep(step)
    return None


# ---- /proc ------------------------------------------------------------------------------


def _stat(path):
    with open(path) as f:
        s = f.read()
    rp = s.rindex(")")
    return s[s.index("(") + 1:rp], s[rp + 2:].split()


def cpu_ticks(pid):
    """utime + stime of a process (all its threads, not its children), in ticks; None
    when it is gone."""
    try:
        _, f = _stat(f"/proc/{pid}/stat")
        return int(f[11]) + int(f[12])
    except (OSError, ValueError):
        return None


def thread_ticks(pid):
    """{thread name: ticks} for a process, summed per name."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            name, f = _stat(f"/proc/{pid}/task/{tid}/stat")
        except (OSError, ValueError):
            continue
        out[name] = out.get(name, 0) + int(f[11]) + int(f[12])
    return out


def thread_group(name):
    """cap:s12 -> cap:*, infer:0 -> infer:N; other thread names as they are."""
    if name.startswith("cap:"):
        return "cap:* (capture)"
    if re.fullmatch(r"infer:\d+", name):
        return "infer:N (executors)"
    return name


def children(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def _status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kb(pid):
    return _status_kb(pid, "VmRSS")


def pss_kb(pid):
    """Proportional set size: shared pages (libraries) split between their users."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class CpuWindow:
    """CPU time of a set of processes between begin() and end(). A process that exits
    inside the window keeps its last sampled ticks (so it is undercounted, never
    negative); sample() in between narrows that gap."""

    def __init__(self, pids):
        self.pids = list(pids)
        self.t0 = self.t1 = 0.0
        self.first, self.last = {}, {}

    def begin(self):
        self.t0 = time.monotonic()
        for p in self.pids:
            v = cpu_ticks(p)
            if v is not None:
                self.first[p] = self.last[p] = v

    def sample(self):
        for p in self.first:
            v = cpu_ticks(p)
            if v is not None:
                self.last[p] = v

    def end(self):
        self.sample()
        self.t1 = time.monotonic()
        return self

    @property
    def seconds(self):
        return self.t1 - self.t0

    @property
    def cpu_s(self):
        return sum(self.last[p] - self.first[p] for p in self.first) / HZ

    def sleep(self, seconds, step=1.0):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(min(step, max(0.0, end - time.monotonic())))
            self.sample()


class ThreadWindow:
    """Per-thread-group CPU of one process between begin() and end(), in core-seconds."""

    def __init__(self, pid):
        self.pid = pid
        self.a = {}
        self.b = {}

    def begin(self):
        self.a = thread_ticks(self.pid)

    def end(self):
        self.b = thread_ticks(self.pid)
        groups = {}
        for name, t in self.b.items():
            g = thread_group(name)
            groups[g] = groups.get(g, 0) + (t - self.a.get(name, 0)) / HZ
        return dict(sorted(groups.items(), key=lambda kv: -kv[1]))


def machine_busy_s():
    """Busy CPU time of the whole machine so far (all cores: user, nice, system, irq,
    softirq, steal), in core-seconds, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / HZ


class MachineWindow:
    """Busy cores of the whole machine over a window; minus the CPU of the processes a
    benchmark measured, that is what the neighbours (other users of this shared box)
    took while it ran."""

    def begin(self):
        self.t0, self.b0 = time.monotonic(), machine_busy_s()

    def end(self):
        self.busy_cores = (machine_busy_s() - self.b0) / (time.monotonic() - self.t0)
        return self.busy_cores

    def others(self, our_cores):
        return max(0.0, self.busy_cores - our_cores)


def machine_load():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


# ---- peers ------------------------------------------------------------------------------


def make_clip(name, image="person.jpg", size="1280x720", fps=15, gop=1, seconds=10, pan=None,
              noise=0):
    """A clip from ../shared/fixtures, cached in BUILD/bench-clips (make-clip.sh is
    idempotent: `name` must differ per settings). `pan`: seconds of each loop the picture
    moves (default all of them); `noise`: sensor noise (make-clip.sh CLIP_NOISE)."""
    d = os.path.join(BUILD, "bench-clips")
    os.makedirs(d, exist_ok=True)
    out = os.path.join(d, name + ".mp4")
    env = dict(os.environ, CLIP_SECONDS=str(seconds),
               CLIP_PAN_SECONDS=str(seconds if pan is None else pan), CLIP_NOISE=str(noise))
    subprocess.run([os.path.join(SRC, "scripts", "make-clip.sh"),
                    os.path.join(SHARED, "fixtures", image), out, size, str(fps), str(gop)],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    return out


def make_noisy_clip(base, out_name="person-720p-noise4"):
    """`base` re-encoded with temporal sensor-like noise (noise=alls=4:allf=t, libx264
    ultrafast crf 23, same GOP and profile as make-clip.sh): ~4 Mbit/s with keyframes
    about half of the bytes, closer to a real 720p camera than make-clip's slow pan over
    a still image (keyframes ~89 % of the bytes). Cached next to base."""
    out = os.path.join(os.path.dirname(base), out_name + ".mp4")
    if os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(base):
        return out
    tmp = f"{out}.tmp.{os.getpid()}.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", base,
                    "-vf", "noise=alls=4:allf=t", "-c:v", "libx264", "-preset", "ultrafast",
                    "-crf", "23", "-profile:v", "baseline", "-pix_fmt", "yuv420p", "-bf", "0",
                    "-g", "15", "-keyint_min", "15", "-sc_threshold", "0",
                    "-movflags", "+faststart", tmp], check=True)
    os.replace(tmp, out)
    return out


class Camsim:
    def __init__(self, run, clip, count, name="camsim", spread=False):
        """`spread`: camera i starts the clip at its own point of the loop (camsim
        --spread 1), so a clip's active seconds fall at different moments per camera."""
        self.run = run
        self.p = run.start(name, [os.path.join(BUILD, "vigil-camsim"), "--port", "0",
                                  "--count", str(count), "--clip", clip,
                                  "--spread", "1" if spread else "0",
                                  "--log-level", "warn"], stdout=name + ".out")
        line = wait_for(lambda: _ready_line(run.path(name + ".out")), 20)
        if not line:
            raise RuntimeError("camsim did not start")
        self.port = int(re.search(r"port=(\d+)", line).group(1))
        self.count = count

    def url(self, i):
        return f"rtsp://127.0.0.1:{self.port}/cam{i}"


def _ready_line(path):
    with open(path) as f:
        for line in f:
            if line.startswith("camsim ready"):
                return line
    return None


class Broker:
    def __init__(self, run):
        self.port = free_port()
        conf = run.path("mosquitto.conf")
        with open(conf, "w") as f:
            f.write(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                    "persistence false\nmax_queued_messages 100000\n")
        self.p = run.start("mosquitto", ["mosquitto", "-c", conf])
        ok = wait_for(lambda: subprocess.run(
            ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.port), "-t", "bench/probe",
             "-m", "x"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0,
            10)
        if not ok:
            raise RuntimeError("mosquitto did not start")


class Subscriber:
    """mosquitto_sub on care/inferences/#, one line per message: receipt time (unix, ns
    precision) then the payload."""

    def __init__(self, run, broker, name="sub"):
        self.file = run.path(name + ".txt")
        self.p = run.start(name, ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port),
                                  "-t", "care/inferences/#", "-q", "0", "-F", "%U %p"],
                           stdout=name + ".txt")
        time.sleep(0.3)

    def messages(self):
        """[(received_at, payload dict)] so far."""
        out = []
        try:
            with open(self.file) as f:
                for line in f:
                    ts, _, body = line.partition(" ")
                    try:
                        out.append((float(ts), json.loads(body)))
                    except ValueError:
                        pass
        except OSError:
            pass
        return out


def iso_to_epoch(s):
    """'2026-11-24T13:50:49.123Z' -> epoch seconds (UTC)."""
    import calendar
    base, _, frac = s.rstrip("Z").partition(".")
    t = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    return t + (float("0." + frac) if frac else 0.0)


PERSON_WORKER = [{"type": "person_detector", "spec": {"model_id": "yolo-fastest-body"}}]
# the same detector on every sampled frame, as before the motion gate
UNGATED_WORKER = [{"type": "person_detector", "spec": {"model_id": "yolo-fastest-body",
                                                       "motion_gate": {"enabled": False}}}]
MOTION_WORKER = [{"type": "motion_detector"}]


class Vigild:
    """vigild with a generated configuration: streams is a list of dicts
    {stream_id, url, fps, workers (a list of worker dicts, or None)}.

    stagger_s: instead of listing the streams in the file (every capture then connects
    at the same instant, and since camsim starts a camera's clip at its first DESCRIBE,
    every camera's keyframes arrive together: at 1 fps on a 1 s GOP all streams then
    sample in the same few milliseconds), add them through POST /api/v1/streams spread
    evenly over stagger_s seconds, so keyframe phases spread over the GOP like
    independent real cameras."""

    def __init__(self, run, streams, mqtt_port=None, threads=0, name="vigild",
                 stagger_s=None):
        self.run = run
        self.http_port = free_port()
        mqtt = (f"mqtt: {{enabled: true, host: 127.0.0.1, port: {mqtt_port}}}\n"
                if mqtt_port else "mqtt: {enabled: false}\n")
        lines = [f"instance_id: bench\nlog: {{level: warn}}\n{mqtt}",
                 f"http: {{listen: 127.0.0.1:{self.http_port}}}\n",
                 f"models_dir: {MODELS}\nmodels:\n{BODY_MODEL_YAML}",
                 f"inference: {{threads: {threads}}}\n",
                 "capture: {rtsp_transport: tcp, stall_timeout_s: 10, reconnect_initial_s: 0.5,"
                 " reconnect_max_s: 5}\n",
                 "streams:\n" if streams and not stagger_s else "streams: []\n"]
        for s in streams if not stagger_s else []:
            w = json.dumps(s.get("workers") or [])
            lines.append(f"  - {{stream_id: {s['stream_id']}, rtsp_url: {s['url']}, "
                         f"fps: {s['fps']}, workers: {w}}}\n")
        self.config = run.path(name + ".yaml")
        with open(self.config, "w") as f:
            f.write("".join(lines))
        self.ids = [s["stream_id"] for s in streams]
        self.p = run.start(name, [os.path.join(BUILD, "vigild"), "-c", self.config])
        self.pid = self.p.pid
        self.url = f"http://127.0.0.1:{self.http_port}"
        if not wait_for(lambda: self.get("/healthz"), 30):
            raise RuntimeError(f"vigild did not start (see {run.path(name + '.log')})")
        if stagger_s and streams:
            t0 = time.monotonic()
            for i, st in enumerate(streams):
                time.sleep(max(0.0, t0 + i * stagger_s / len(streams) - time.monotonic()))
                self.post("/api/v1/streams", {"stream_id": st["stream_id"], "url": st["url"],
                                              "fps": st["fps"],
                                              "workers": st.get("workers") or []})

    def post(self, path, body):
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"},
                                     method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.read().decode()

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=5) as r:
            return r.read().decode()

    def metrics(self):
        """{(name, labels text): value} from /metrics."""
        out = {}
        for line in self.get("/metrics").splitlines():
            if not line or line[0] == "#":
                continue
            m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
            if m:
                try:
                    out[(m.group(1), m.group(2) or "")] = float(m.group(3))
                except ValueError:
                    pass
        return out

    @staticmethod
    def total(metrics, name):
        return sum(v for (n, _), v in metrics.items() if n == name)

    def wait_up(self, timeout):
        """True once every stream reports vigil_stream_up 1."""
        want = len(self.ids)

        def up():
            m = self.metrics()
            return sum(1 for (n, _), v in m.items() if n == "vigil_stream_up" and v == 1) >= want
        return bool(wait_for(up, timeout, 0.5)) if want else True

    def stop(self):
        self.run.stop(self.p, grace=10)


# ---- statistics and output ----------------------------------------------------------------


def histogram_quantile(m0, m1, name, q):
    """The q-quantile (0..1) of a histogram's observations between two /metrics
    snapshots (Vigild.metrics()), summed over every series; linear inside a bucket, the
    way Prometheus' histogram_quantile does. None without observations."""
    def buckets(m):
        out = {}
        for (n, labels), v in m.items():
            if n == name + "_bucket":
                le = re.search(r'le="([^"]+)"', labels).group(1)
                out[float(le)] = out.get(float(le), 0) + v
        return out
    b0, b1 = buckets(m0), buckets(m1)
    cum = sorted((le, b1[le] - b0.get(le, 0)) for le in b1)
    if not cum or cum[-1][1] <= 0:
        return None
    want, prev_le, prev_c = q * cum[-1][1], 0.0, 0.0
    for le, c in cum:
        if c >= want:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * ((want - prev_c) / (c - prev_c) if c > prev_c else 0)
        prev_le, prev_c = le, c
    return prev_le


def percentile(values, p):
    """Linear interpolation between closest ranks; None for an empty list."""
    v = sorted(values)
    if not v:
        return None
    k = (len(v) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def fmt(v, spec=".3f", na="n/a"):
    if v is None:
        return na
    return format(v, spec)


def ratio(a, b):
    return a / b if a is not None and b else None


def verdict(value, limit, higher_is_better=False):
    if value is None:
        return "n/a"
    ok = value >= limit if higher_is_better else value <= limit
    return "met" if ok else "MISSED"


def table(header, rows):
    """A Markdown table as text."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


def save_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)


def main_guard(fn):
    """Runs fn(run) with a Run that is always closed; SIGINT/SIGTERM stop cleanly."""
    def handler(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, handler)

    def wrapped(run):
        ok = False
        try:
            r = fn(run)
            ok = True
            return r
        finally:
            run.close(ok)
    return wrapped


def bench_main(name, bench, args):
    """A benchmark's main(): checks the build, runs bench(run, args) in a Run called
    name (always closed), writes the figures to args.json when given, returns them."""
    require_built()
    res = main_guard(lambda run: bench(run, args))(Run(name))
    if args.json:
        save_json(args.json, res)
    return res


def require_built():
    for b in ("vigild", "vigil-camsim", "vigil-bench-executor"):
        if not os.access(os.path.join(BUILD, b), os.X_OK):
            sys.exit(f"{b} is not built in {BUILD}: cmake --build {BUILD} -j2")
