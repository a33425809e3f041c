"""run.py — the soak's timeline: start the peers, warm up, take a baseline, run the
seeded chaos schedule (camera faults, broker restarts, command storms over a trickle of
commands), pause at 25 % of the run for a like-for-like memory checkpoint, restore the
expected streams, take the final measurements, stop the daemon with SIGTERM, and hand
everything to report.py."""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from array import array

from . import report
from .consts import GRACE, KILL_QUIET_S, RECONNECT_LIMIT_S, SAMPLE_S
from .model import Cmd, Stream, World
from .mqttc import MqttClient
from .procs import (Broker, Camsim, Http, Proc, free_port, parse_metrics, proc_cpu_s, proc_stats,
                    wait_until)
from .storm import Storm

PREFIX, INSTANCE = "care", "soak"
MODELS = ("yolo-fastest-body", "yolo-fastest", "yolo-fastest-xl")
MODEL_FILES = {
    "yolo-fastest-body": ("yolo-fastest-1.1_body.cfg", "yolo-fastest-1.1_body.weights", "body.names"),
    "yolo-fastest": ("yolo-fastest-1.1.cfg", "yolo-fastest-1.1.weights", "coco.names"),
    "yolo-fastest-xl": ("yolo-fastest-1.1-xl.cfg", "yolo-fastest-1.1-xl.weights", "coco.names"),
}
BASE_FPS = 1
CAPTURE = {"stall_timeout_s": 3, "reconnect_initial_s": 0.5, "reconnect_max_s": 3}


def log(msg):
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _note_gap(p, t):
    """Records t - p["last"] as the period's longest gap when it is."""
    gap = t - p["last"]
    if gap > p["max_gap"]:
        p["max_gap"], p["max_gap_at"] = gap, p["last"]


class Flow:
    """Inference messages per broker-up period: count and the longest silence."""

    def __init__(self):
        self.periods = []
        self.open = None
        self.total = 0
        self.lock = threading.Lock()

    def start(self, t):
        with self.lock:
            self.open = {"start": t, "end": None, "count": 0, "last": t, "max_gap": 0.0,
                         "max_gap_at": None}
            self.periods.append(self.open)

    def message(self, t):
        with self.lock:
            self.total += 1
            p = self.open
            if p is None:
                return
            _note_gap(p, t)
            p["last"] = t
            p["count"] += 1

    def stop(self, t):
        with self.lock:
            p, self.open = self.open, None
            if p is None:
                return
            _note_gap(p, t)
            p["end"] = t


class Soak:
    def __init__(self, args):
        self.a = args
        self.rng = random.Random(args.seed)
        self.world = World(GRACE)
        self.procs = []
        self.flow = Flow()
        self.samples_t = array("d")
        self.rss, self.threads, self.fds = array("d"), array("d"), array("d")
        self.cpu = array("d")     # vigild's CPU seconds so far
        self.counts = {}          # sid -> (array t, array count)
        self.daemon_exit = None   # (t, code) if it exited by itself
        self.broker_events = []   # {kill, start, down_s, back, reconnect_s}
        self.faults = []          # {cam, kind, start, end}
        self.active_faults = {}   # cam -> fault
        self.checkpoints = {}
        self.notes = []
        self.paused = 0.0
        self.pause_at = None
        self.stop_sampler = threading.Event()
        self.broker_started_at = 0.0
        self.daemon_back_at = None
        self.mqtt_quiet = False   # a broker kill is coming: no ordinary MQTT commands
        self.broker_live = True
        self.force_mqtt = False
        self.mqtt_metric = {}
        self.t_chaos0 = self.t_chaos_end = None
        self.error = None
        self.t_created = time.monotonic()

    # ---- setup ---------------------------------------------------------------------------------
    def setup(self):
        a = self.a
        self.build = os.path.abspath(a.build)
        src = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
        self.shared = os.path.abspath(a.shared or os.environ.get("VIGIL_SHARED_DIR") or
                                      os.path.join(src, "..", "shared"))
        self.workdir = a.workdir or tempfile.mkdtemp(prefix="vigil-soak.")
        os.makedirs(self.workdir, exist_ok=True)
        log(f"work folder {self.workdir}")
        clips = os.path.join(self.build, "test-clips")
        os.makedirs(clips, exist_ok=True)
        self.clip = os.path.join(clips, "person-640.mp4")
        env = dict(os.environ, CLIP_SECONDS="6")
        subprocess.run([os.path.join(src, "scripts", "make-clip.sh"),
                        os.path.join(self.shared, "fixtures", "person.jpg"), self.clip,
                        "640x360", "15", "1"], check=True, env=env)
        self.token = f"soak-{self.rng.getrandbits(64):016x}"
        with open(os.path.join(self.workdir, "token"), "w") as f:
            f.write(self.token + "\n")
        self.broker = Broker(self.workdir)
        self.broker.start()
        self.broker_started_at = time.monotonic()
        self.camsim = Camsim(self.build, self.workdir, a.cameras, self.clip)
        self.procs.append(self.camsim.proc)
        self.sub = MqttClient("127.0.0.1", self.broker.port, f"soak-sub-{os.getpid()}",
                              [(f"{PREFIX}/control/{INSTANCE}/ack", 1),
                               (f"{PREFIX}/inferences/#", 1), (f"{PREFIX}/status/#", 1),
                               (f"{PREFIX}/telemetry/#", 1)], on_message=self.on_message)
        self.pub = MqttClient("127.0.0.1", self.broker.port, f"soak-pub-{os.getpid()}")
        self.sub.start()
        self.pub.start()
        if not (self.sub.wait_connected(10) and self.pub.wait_connected(10)):
            raise RuntimeError("the soak's MQTT clients could not connect")
        self.http_port = free_port()
        self.http = Http(self.http_port, self.token)
        n_extra = max(1, a.cameras // 4)
        for i in range(a.cameras):
            self.world.add_stream(Stream(f"s{i}", i, True, BASE_FPS, MODELS[0],
                                         ["person_detector", "motion_detector"], True))
        for i in range(n_extra):
            self.world.add_stream(Stream(f"x{i}", (i * 3 + 1) % a.cameras, False, BASE_FPS,
                                         MODELS[0], ["person_detector"], False))
        self.write_config()
        self.start_vigild()
        self.storm = Storm(self.world, random.Random(a.seed * 7919 + 1), prefix=PREFIX,
                           instance=INSTANCE, run_id=f"soak{a.seed}", models=list(MODELS),
                           camsim=self.camsim, http=self.http, pub=self.pub,
                           mqtt_ok=self.mqtt_ok, invalid_fraction=a.invalid_fraction,
                           skip=a.skip)

    def write_config(self):
        a, w = self.a, self.workdir
        models = "\n".join(
            f"  - {{model_id: {m}, config: {c}, weights: {wt}, labels: {lb}}}"
            for m, (c, wt, lb) in MODEL_FILES.items())
        streams = "\n".join(
            f"  - {{stream_id: {s.sid}, rtsp_url: {self.camsim.url(s.camera)}, fps: {BASE_FPS}, "
            f"workers: [{{type: person_detector, spec: {{model_id: {MODELS[0]}}}}}, "
            f"{{type: motion_detector}}]}}"
            for s in self.world.streams.values() if s.core)
        cap = ", ".join(f"{k}: {v}" for k, v in CAPTURE.items())
        self.config = os.path.join(w, "vigil.yaml")
        with open(self.config, "w") as f:
            f.write(f"""# written by loadgen/soak
instance_id: {INSTANCE}
log: {{level: info}}
mqtt: {{host: 127.0.0.1, port: {self.broker.port}, qos: 1, topic_prefix: {PREFIX}}}
http: {{listen: 127.0.0.1:{self.http_port}, auth_token_file: {w}/token}}
telemetry: {{interval_s: 10}}
state_file: {w}/state.json
models_dir: {self.shared}/models
models:
{models}
capture: {{rtsp_transport: tcp, {cap}}}
streams:
{streams}
""")

    def start_vigild(self):
        self.vigild = Proc("vigild", [os.path.join(self.build, "vigild"), "-c", self.config],
                           os.path.join(self.workdir, "vigild.log"))
        self.procs.append(self.vigild)
        if not wait_until(lambda: self.http.request("GET", "/healthz", token=None,
                                                    timeout=1)[0] == 200, 20):
            raise RuntimeError("vigild did not become healthy (see vigild.log)")

    # ---- MQTT observations -----------------------------------------------------------------------
    def on_message(self, topic, payload, t):
        parts = topic.split("/")
        if len(parts) < 3 or parts[0] != PREFIX:
            return
        if parts[1] == "inferences":
            self.flow.message(t)
            self.daemon_seen(t)
        elif parts[1] == "control" and parts[-1] == "ack":
            self.daemon_seen(t)
            try:
                ack = json.loads(payload)
            except ValueError:
                self.notes.append(f"unparsable ack {payload[:200]!r}")
                return
            self.world.on_mqtt_ack(ack, t)
        elif parts[1] in ("status", "telemetry") and len(parts) >= 3 and parts[2] == INSTANCE:
            if payload:
                self.daemon_seen(t)

    def daemon_seen(self, t):
        if self.daemon_back_at is None and self.broker_live and t >= self.broker_started_at:
            self.daemon_back_at = t
            if self.broker_events and self.broker_events[-1].get("back") is None:
                ev = self.broker_events[-1]
                ev["back"] = t
                ev["reconnect_s"] = round(t - ev["start"], 3)
            self.flow.start(t)

    def mqtt_ok(self):
        if self.force_mqtt:
            return self.pub.is_connected()
        if self.mqtt_quiet:
            return False
        return (self.broker.up() and self.daemon_back_at is not None and
                self.pub.is_connected() and self.sub.is_connected())

    # ---- sampling --------------------------------------------------------------------------------
    def sampler(self):
        while not self.stop_sampler.is_set():
            t = time.monotonic()
            if not self.vigild.alive() and self.daemon_exit is None:
                self.daemon_exit = (t, self.vigild.returncode())
                log(f"vigild exited by itself with code {self.daemon_exit[1]}")
            st = proc_stats(self.vigild.pid) if self.daemon_exit is None else None
            cpu = proc_cpu_s(self.vigild.pid) if st else None
            if st and cpu is not None:
                self.samples_t.append(t)
                self.rss.append(st[0])
                self.threads.append(st[1])
                self.fds.append(st[2])
                self.cpu.append(cpu)
            text = self.http.metrics(timeout=3) if self.daemon_exit is None else None
            if text:
                self.take_metrics(time.monotonic(), parse_metrics(text))
            self.stop_sampler.wait(max(0.1, SAMPLE_S - (time.monotonic() - t)))

    def take_metrics(self, t, m):
        per = {}
        for labels, v in m.get("vigil_inferences_total", []):
            if labels.get("worker") == "person_detector":
                sid = labels.get("stream_id")
                per[sid] = per.get(sid, 0) + v
        for sid, v in per.items():
            ts, cs = self.counts.setdefault(sid, (array("d"), array("d")))
            ts.append(t)
            cs.append(v)
        for name in ("vigil_mqtt_reconnects_total", "vigil_mqtt_connected"):
            for _, v in m.get(name, []):
                self.mqtt_metric[name] = v
        self.mqtt_metric["vigil_mqtt_outbox_dropped_total"] = {
            labels.get("reason", "?"): v for labels, v in
            m.get("vigil_mqtt_outbox_dropped_total", []) if v}

    def stats_now(self, n=5, step=1.0):
        """Median (rss_kb, threads, fds) over n samples."""
        vals = []
        for i in range(n):
            st = proc_stats(self.vigild.pid)
            if st:
                vals.append(st)
            if i + 1 < n:
                time.sleep(step)
        if not vals:
            return None
        med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
        return tuple(med([v[i] for v in vals]) for i in range(3))

    # ---- streams -----------------------------------------------------------------------------------
    def streams_state(self):
        body = self.http.get_json("/api/v1/streams")
        if not body:
            return None
        return {s["stream_id"]: s for s in body.get("streams", [])}

    def all_running(self, sids):
        st = self.streams_state()
        return st is not None and all(st.get(s, {}).get("state") == "running" for s in sids)

    def rest_cmd(self, kind, sid, method, path, body, effect, ok_status=200, exist=False,
                 load=False):
        """A command of the soak's own (warm-up, restore), tracked like the storm's."""
        c = Cmd(kind, "rest-route", sid)
        c.effect, c.http_ok, c.exist_op, c.load, c.mutating = effect, ok_status, exist, load, True
        c.payload, c.method, c.path = body, method, path
        c.own = True
        self.world.register(c)
        status, resp = self.http.request(method, path, body=body, timeout=15)
        st = resp.get("status") if isinstance(resp, dict) else None
        code = (resp.get("error") or {}).get("code") if isinstance(resp, dict) and \
            isinstance(resp.get("error"), dict) else None
        self.world.resolve(c, st, code, time.monotonic(), http_status=status)
        return c

    def restore(self):
        """Brings the stream set and configuration back to the baseline (REST)."""
        base_model = MODELS[0]
        for s in list(self.world.streams.values()):
            if s.core and not s.exists:
                body = self.storm.add_params(s, BASE_FPS, base_model)
                self.rest_cmd("add_stream", s.sid, "POST", "/api/v1/streams", body,
                              {"add": {"fps": BASE_FPS, "model_id": base_model,
                                       "workers": list(s.workers)}}, 201, exist=True)
            elif not s.core and s.exists:
                self.rest_cmd("remove_stream", s.sid, "DELETE", f"/api/v1/streams/{s.sid}",
                              None, {"remove": True}, exist=True)
            elif s.core and (s.fps != BASE_FPS or s.model_id != base_model or s.conf != 0.5):
                body = {"fps": BASE_FPS, "model_id": base_model, "confidence_threshold": 0.5}
                self.rest_cmd("reconfigure", s.sid, "PATCH", f"/api/v1/streams/{s.sid}", body,
                              {"fps": BASE_FPS, "model_id": base_model, "conf": 0.5},
                              load=True)

    def config_mismatches(self):
        """Streams whose served configuration differs from what the acks said."""
        st = self.streams_state() or {}
        out = []
        for s in self.world.streams.values():
            got = st.get(s.sid)
            if s.exists != (got is not None):
                out.append({"stream_id": s.sid, "expected_exists": s.exists,
                            "exists": got is not None})
                continue
            if not got:
                continue
            pw = next((w for w in got.get("workers", []) if w.get("type") == "person_detector"),
                      {})
            diffs = {}
            if abs((got.get("fps_target") or 0) - s.fps) > 1e-6:
                diffs["fps"] = [s.fps, got.get("fps_target")]
            if pw.get("model_id") != s.model_id:
                diffs["model_id"] = [s.model_id, pw.get("model_id")]
            if abs((pw.get("confidence_threshold") or 0) - s.conf) > 1e-6:
                diffs["confidence_threshold"] = [s.conf, pw.get("confidence_threshold")]
            if (pw.get("roi") or None) != s.roi:
                diffs["roi"] = [s.roi, pw.get("roi")]
            if diffs:
                out.append({"stream_id": s.sid, "expected_vs_served": diffs})
        return out

    # ---- phases ------------------------------------------------------------------------------------
    def warmup(self):
        core = [s.sid for s in self.world.streams.values() if s.core]
        if not wait_until(lambda: self.all_running(core), 60, 0.5):
            raise RuntimeError(f"streams not running after 60 s: {self.streams_state()}")
        if not wait_until(lambda: self.daemon_back_at is not None, 15):
            raise RuntimeError("no MQTT message from vigild")
        log(f"{len(core)} streams running; priming every model on every stream")
        # every model on every executor, and full decoding (fps above the keyframe rate)
        # on every stream, once: the baseline is the steady state, not a cold start
        for m in MODELS[1:] + MODELS[:1]:
            fps = 2 if m != MODELS[0] else BASE_FPS
            for sid in core:
                self.rest_cmd("reconfigure", sid, "PATCH", f"/api/v1/streams/{sid}",
                              {"model_id": m, "fps": fps}, {"model_id": m, "fps": fps},
                              load=True)
            time.sleep(4)
        time.sleep(4)
        st = self.stats_now()
        self.checkpoints["baseline"] = {"t": time.monotonic(), "rss_kb": st[0],
                                        "threads": st[1], "fds": st[2]}
        log(f"baseline: rss {st[0] / 1024:.1f} MiB, {st[1]} threads, {st[2]} fds")

    def chaos_time(self):
        return time.monotonic() - self.t_chaos0 - self.paused

    def schedule(self, dur):
        """The seeded fault timeline, in chaos seconds: (t, kind, args)."""
        r, n = self.rng, self.a.cameras
        ev = []
        t = r.uniform(3, 8)
        while t < dur - 12:
            kind = r.choices(["outage", "freeze", "disconnect"], [0.35, 0.35, 0.3])[0]
            ev.append((t, "camera", (kind, r.randrange(n), r.uniform(3, 12))))
            t += r.expovariate(n / 60.0)
        checkpoint = 0.25 * dur
        t = r.uniform(20, 40)
        while t < dur - 25:
            down = r.uniform(3, 8)
            if checkpoint - 15 < t + down and t < checkpoint + 3:
                t = checkpoint + 5
                continue
            ev.append((t, "broker", (down,)))
            t += down + r.uniform(45, 90)
        t = r.uniform(8, 15)
        while t < dur - 10:
            ev.append((t, "storm", (r.randint(15, 40), r.uniform(2, 4))))
            t += r.uniform(20, 40)
        ev.append((checkpoint, "checkpoint", ()))
        ev.sort(key=lambda e: e[0])
        return ev

    def chaos(self):
        dur = self.a.minutes * 60.0
        events = self.schedule(dur)
        self.plan = {"camera_faults": sum(1 for e in events if e[1] == "camera"),
                     "broker_restarts": sum(1 for e in events if e[1] == "broker"),
                     "storms": sum(1 for e in events if e[1] == "storm")}
        log(f"chaos for {dur:.0f} s: {self.plan}")
        self.t_chaos0 = time.monotonic()
        if self.flow.open is not None:  # measure the flow from here on
            self.flow.stop(self.t_chaos0)
            self.flow.periods.clear()
            self.flow.start(self.t_chaos0)
        storm_q = []        # chaos times of storm commands still to send
        timers = []         # (chaos t, fn)
        next_trickle = self.rng.expovariate(self.a.rate) if self.a.rate > 0 else float("inf")
        next_progress = 30.0
        max_faulted = max(1, self.a.cameras // 4)
        i = 0
        while self.daemon_exit is None:
            t = self.chaos_time()
            if t >= dur:
                break
            while i < len(events) and events[i][0] <= t:
                et, kind, args = events[i]
                i += 1
                if kind == "camera" and "camera" not in self.a.skip:
                    fk, cam, length = args
                    if cam in self.active_faults or len(self.active_faults) >= max_faulted:
                        continue
                    self.camera_fault(fk, cam)
                    if fk != "disconnect":
                        timers.append((t + length, lambda c=cam: self.camera_resume(c)))
                elif kind == "broker" and "broker" not in self.a.skip:
                    down = args[0]
                    self.mqtt_quiet = True  # ordinary MQTT commands pause until it is back
                    timers.append((t + KILL_QUIET_S - 0.05, self.pre_kill_burst))
                    timers.append((t + KILL_QUIET_S, self.broker_kill))
                    timers.append((t + KILL_QUIET_S + down, self.broker_start))
                elif kind == "storm" and "storm" not in self.a.skip:
                    count, secs = args
                    storm_q += [t + secs * k / count for k in range(count)]
                    storm_q.sort()
                elif kind == "checkpoint":
                    self.quiesce("at_25pct")
            timers.sort(key=lambda x: x[0])
            while timers and timers[0][0] <= self.chaos_time():
                timers.pop(0)[1]()
            t = self.chaos_time()
            while storm_q and storm_q[0] <= t:
                storm_q.pop(0)
                self.storm.one()
            if t >= next_trickle:
                self.storm.one()
                next_trickle = t + self.rng.expovariate(self.a.rate) if self.a.rate > 0 \
                    else float("inf")
            if t >= next_progress:
                self.progress(t, dur)
                next_progress += 30.0
            time.sleep(0.02)
        # pending camera resumes and a broker still down are undone by the final checkpoint
        self.mqtt_quiet = False
        self.t_chaos_end = time.monotonic()

    def progress(self, t, dur):
        n = len(self.world.cmds)
        bad = sum(1 for c in self.world.cmds if c.verdict not in (None, "ok", "counted"))
        rss = self.rss[-1] / 1024 if self.rss else 0
        log(f"t={t:.0f}/{dur:.0f}s commands={n} not-ok={bad} faults={len(self.faults)} "
            f"broker_restarts={len(self.broker_events)} rss={rss:.1f}MiB "
            f"fds={self.fds[-1] if self.fds else '?':.0f} threads="
            f"{self.threads[-1] if self.threads else '?':.0f}")

    # ---- chaos actions --------------------------------------------------------------------------------
    def camera_fault(self, kind, cam):
        ans = self.camsim.control(f"{kind} cam{cam}")
        now = time.monotonic()
        f = {"cam": cam, "kind": kind, "start": now, "end": now if kind == "disconnect" else None,
             "answer": ans}
        self.faults.append(f)
        if not ans.startswith("ok"):
            self.notes.append(f"camsim {kind} cam{cam}: {ans}")
        if kind != "disconnect":
            self.active_faults[cam] = f

    def camera_resume(self, cam):
        f = self.active_faults.pop(cam, None)
        if f is None:
            return
        ans = self.camsim.control(f"resume cam{cam}")
        f["end"] = time.monotonic()
        if not ans.startswith("ok"):
            self.notes.append(f"camsim resume cam{cam}: {ans}")

    def pre_kill_burst(self):
        """Valid commands over MQTT just before the broker dies: their acks must follow."""
        if not (self.pub.is_connected() and self.daemon_back_at is not None):
            return
        self.force_mqtt = True
        try:
            for c in self.storm.burst_before_kill():
                c.pre_kill = True
        finally:
            self.force_mqtt = False

    def broker_kill(self):
        t = time.monotonic()
        self.broker_live = False  # what still trickles in from the old broker is not "back"
        self.flow.stop(t)
        self.broker.stop()
        self.daemon_back_at = None
        self.broker_events.append({"kill": t, "start": None, "back": None, "reconnect_s": None,
                                   "epoch": self.broker.starts})
        log("broker stopped")

    def broker_start(self):
        if self.broker.up():
            return
        self.broker.start()
        t = time.monotonic()
        self.broker_started_at = t
        self.broker_live = True
        self.mqtt_quiet = False
        if self.broker_events and self.broker_events[-1]["start"] is None:
            ev = self.broker_events[-1]
            ev["start"] = t
            ev["down_s"] = round(t - ev["kill"], 3)
        log("broker started again")

    # ---- checkpoints ---------------------------------------------------------------------------------
    def quiesce(self, label):
        """Everything back to the baseline shape, then measure. Chaos time stands still."""
        t0 = time.monotonic()
        log(f"checkpoint {label}: restoring the baseline streams")
        for cam in list(self.active_faults):
            self.camera_resume(cam)
        if not self.broker.up():
            self.broker_start()
        # judged against RECONNECT_LIMIT_S in the report; waited for longer so a slow
        # reconnect is measured rather than cascading into the checkpoint
        ok_mqtt = wait_until(lambda: self.daemon_back_at is not None, 6 * RECONNECT_LIMIT_S)
        idle = self.world.wait_idle(30)
        mismatches = self.config_mismatches() if idle else None
        self.restore()
        core = [s.sid for s in self.world.streams.values() if s.core]
        running = wait_until(lambda: self.all_running(core), 60, 0.5)
        if not running:
            self.notes.append(f"{label}: not all streams running: "
                              f"{ {k: v.get('state') for k, v in (self.streams_state() or {}).items()} }")
        time.sleep(6)
        st = self.stats_now()
        self.checkpoints[label] = {"t": time.monotonic(), "rss_kb": st[0] if st else None,
                                   "threads": st[1] if st else None,
                                   "fds": st[2] if st else None, "mqtt_back": ok_mqtt,
                                   "commands_idle": idle, "streams_running": running,
                                   "config_mismatches": mismatches,
                                   "pause_s": round(time.monotonic() - t0, 1)}
        if st:
            log(f"checkpoint {label}: rss {st[0] / 1024:.1f} MiB, {st[1]} threads, {st[2]} fds")
        if self.t_chaos0 is not None:
            self.paused += time.monotonic() - t0

    # ---- the whole run ------------------------------------------------------------------------------
    def run(self):
        t_start = time.time()
        sampler = None
        exit_code = None
        try:
            self.setup()
            sampler = threading.Thread(target=self.sampler, name="sampler", daemon=True)
            sampler.start()
            self.warmup()
            self.chaos()
            if self.daemon_exit is None:
                log("chaos over: restoring, settling, measuring")
                self.quiesce("final")
                final = self.checkpoints["final"]
                base = self.checkpoints["baseline"]
                # descriptors and threads: give stragglers up to 30 s to close
                wait_until(lambda: (proc_stats(self.vigild.pid) or (0, 1e9, 1e9))[1:] <=
                           (base["threads"], base["fds"]), 30, 1.0)
                st = self.stats_now(3, 1.0)
                if st:
                    final["threads_settled"], final["fds_settled"] = st[1], st[2]
                self.final_streams = self.streams_state()
                self.final_state_file = self.read_state_file()
            self.stop_sampler.set()
            if sampler:
                sampler.join(5)
            self.flow.stop(time.monotonic())
            if self.daemon_exit is None:
                t = time.monotonic()
                exit_code = self.vigild.stop(15)
                self.shutdown_s = round(time.monotonic() - t, 2)
                log(f"vigild stopped with SIGTERM: exit code {exit_code} in {self.shutdown_s} s")
        except KeyboardInterrupt:
            self.error = "interrupted"
        except Exception:  # noqa: BLE001 - reported, and the peers still get stopped
            self.error = traceback.format_exc()
            log(f"soak error:\n{self.error}")
        finally:
            self.stop_sampler.set()
            for c in (getattr(self, "sub", None), getattr(self, "pub", None)):
                if c:
                    c.stop()
            if getattr(self, "storm", None):
                self.storm.close()
            for p in reversed(self.procs):
                p.stop(5)
            if getattr(self, "broker", None):
                self.broker.stop()
        rep = report.build(self, exit_code, t_start)
        report.write(rep, self.a.report)
        print(report.summary_line(rep), flush=True)
        if rep["ok"] and not self.a.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
        else:
            log(f"logs kept in {self.workdir}")
        return 0 if rep["ok"] else 1

    def read_state_file(self):
        try:
            with open(os.path.join(self.workdir, "state.json")) as f:
                return sorted(s["stream_id"] for s in json.load(f).get("streams", []))
        except (OSError, ValueError, KeyError):
            return None


def install_signal_handlers():
    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
