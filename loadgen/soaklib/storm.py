"""storm.py — the command generator. Each call to one() picks a command kind from a
seeded table (valid commands of every kind, about 30 % invalid ones), a target stream
and a channel (MQTT stream topic, MQTT instance topic, REST /api/v1/commands, or the
REST route of that command), builds the payload, records what it should answer in the
World, and sends it. MQTT commands are only sent while the daemon is connected; REST
requests run on a small thread pool so a deferred answer (a model load) never stalls
the schedule."""
import json
import time
from concurrent.futures import ThreadPoolExecutor

from .model import Cmd, OK

FPS_VALUES = (0.5, 1, 2)
FRAME_W, FRAME_H = 640, 360
OVERSIZE = 70 * 1024

VALID_KINDS = [  # (kind, weight)
    ("set_fps", 12), ("set_confidence", 10), ("change_model", 10), ("set_roi", 8),
    ("reconfigure", 10), ("restart", 6), ("restart_all", 1), ("add_stream", 6),
    ("remove_stream", 6), ("repeat", 6), ("inflight_repeat", 2),
]
INVALID_KINDS = [
    ("bad_json", 8), ("oversized", 4), ("unknown_command", 6), ("missing_command", 3),
    ("missing_param", 10), ("out_of_range", 10), ("unknown_param", 6), ("unknown_stream", 8),
    ("unknown_model", 5), ("unknown_worker", 3), ("stream_exists", 4), ("wrong_token", 8),
    ("bad_command_id", 3), ("params_not_object", 3),
]


def _pick(rng, table):
    total = sum(w for _, w in table)
    r = rng.uniform(0, total)
    for k, w in table:
        r -= w
        if r <= 0:
            return k
    return table[-1][0]


class Storm:
    def __init__(self, world, rng, *, prefix, instance, run_id, models, camsim, http,
                 pub, mqtt_ok, invalid_fraction, skip=(), core_workers=None):
        self.w, self.rng = world, rng
        self.prefix, self.instance, self.run_id = prefix, instance, run_id
        self.models, self.camsim, self.http, self.pub = models, camsim, http, pub
        self.mqtt_ok = mqtt_ok          # callable: may MQTT commands be sent now?
        self.invalid_fraction = invalid_fraction
        self.skip = set(skip)
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="rest")
        self.seq = 0
        self.sent = {}                  # kind -> count
        self.by_channel = {}
        self.ghost = 0

    def close(self):
        self.pool.shutdown(wait=True)

    # ---- helpers -------------------------------------------------------------------------
    def _cid(self):
        self.seq += 1
        return f"{self.run_id}-{self.seq}"

    def _roi(self):
        r = self.rng
        if r.random() < 0.15:  # valid but partly or wholly outside the picture
            return {"x": r.randrange(0, 5000), "y": r.randrange(0, 3000),
                    "w": r.randrange(1, 800), "h": r.randrange(1, 800)}
        x, y = r.randrange(0, 400), r.randrange(0, 200)
        return {"x": x, "y": y, "w": r.randrange(100, FRAME_W - x + 1),
                "h": r.randrange(80, FRAME_H - y + 1)}

    def _idle_streams(self):
        """Existing streams with no state change in flight: targets for valid changes."""
        return [s for s in self.w.streams.values() if s.exists and s.mutating is None]

    def _any_stream(self):
        live = [s for s in self.w.streams.values() if s.exists]
        return self.rng.choice(live) if live else None

    def _channel(self, scope, routes=()):
        """scope: 'stream' | 'instance'. routes: REST route channels this kind has."""
        r = self.rng.random()
        if self.mqtt_ok() and "mqtt" not in self.skip:
            if r < 0.5:
                return "mqtt-stream" if scope == "stream" and r < 0.35 else "mqtt-instance"
        if routes and self.rng.random() < 0.5:
            return self.rng.choice(routes)
        return "rest-commands"

    def add_params(self, s, fps=None, model_id=None):
        workers = [{"type": "person_detector", "spec": {"model_id": model_id or self.models[0]}}]
        if "motion_detector" in s.workers:
            workers.append({"type": "motion_detector"})
        return {"stream_id": s.sid, "rtsp_url": self.camsim.url(s.camera),
                "fps": fps if fps is not None else s.fps, "workers": workers}

    # ---- one command -----------------------------------------------------------------------
    def one(self, valid=None):
        """Generates and sends one command; returns its Cmd (or None if nothing fit)."""
        if valid is None:
            valid = self.rng.random() >= self.invalid_fraction
        table = [(k, wt) for k, wt in (VALID_KINDS if valid else INVALID_KINDS)
                 if k not in self.skip]
        for _ in range(8):
            kind = _pick(self.rng, table)
            c = getattr(self, ("v_" if valid else "i_") + kind)()
            if c is not None:
                self.sent[kind] = self.sent.get(kind, 0) + 1
                return c
        return None

    # ---- valid commands ------------------------------------------------------------------------
    def _stream_change(self, kind, params, effect, s=None, load=False, probe=False):
        if s is None:
            idle = self._idle_streams()
            if not idle:
                return None
            s = self.rng.choice(idle)
        routes = ("rest-patch",) if kind == "reconfigure" else ()
        c = Cmd(kind, self._channel("stream", routes), s.sid, valid=True)
        c.params, c.effect, c.load, c.mutating = params, effect, load, not probe
        return self.send(c)

    def v_set_fps(self, s=None, probe=False):
        f = self.rng.choice(FPS_VALUES)
        return self._stream_change("set_fps", {"max_fps": f}, {"fps": f}, s, probe=probe)

    def v_set_confidence(self, s=None, probe=False):
        v = round(self.rng.uniform(0.3, 0.8), 2)
        p = {"confidence_threshold": v}
        if self.rng.random() < 0.3:
            p["worker_id"] = "person_detector"
        return self._stream_change("set_confidence", p, {"conf": v}, s, probe=probe)

    def v_change_model(self):
        m = self.rng.choice(self.models)
        c = self._stream_change("change_model", {"model_id": m}, {"model_id": m}, load=True)
        if c is not None:
            self._after_load(c)
        return c

    def v_set_roi(self):
        roi = self._roi()
        return self._stream_change("set_roi", dict(roi), {"roi": roi})

    def v_reconfigure(self):
        p, e = {}, {}
        while not p:
            if self.rng.random() < 0.5:
                p["fps"] = e["fps"] = self.rng.choice(FPS_VALUES)
            if self.rng.random() < 0.4:
                p["confidence_threshold"] = e["conf"] = round(self.rng.uniform(0.3, 0.8), 2)
            if self.rng.random() < 0.3:
                p["roi"] = e["roi"] = self._roi()
            if self.rng.random() < 0.25:
                p["model_id"] = e["model_id"] = self.rng.choice(self.models)
        c = self._stream_change("reconfigure", p, e, load="model_id" in p)
        if c is not None and c.load:
            self._after_load(c)
        return c

    def _after_load(self, c):
        """Right after a model change: maybe a probe (may answer busy), maybe a repeat."""
        s = self.w.streams[c.stream]
        r = self.rng.random()
        if r < 0.35:
            self.rng.choice([self.v_set_fps, self.v_set_confidence])(s=s, probe=True)
        elif r < 0.5:
            self.v_restart(s=s)
        if "inflight_repeat" not in self.skip and self.rng.random() < 0.15 and c.cid:
            self._repeat(c, inflight=True)

    def v_restart(self, s=None):
        s = s or self._any_stream()
        if s is None:
            return None
        c = Cmd("restart", self._channel("stream", ("rest-restart",)), s.sid)
        c.params, c.effect = None, {"restart": True}
        return self.send(c)

    def v_restart_all(self):
        c = Cmd("restart_all", self._channel("instance"))
        c.params = None
        return self.send(c)

    def v_add_stream(self):
        absent = [s for s in self.w.streams.values()
                  if not s.exists and s.mutating is None and not s.inflight]
        if not absent:
            return None
        s = self.rng.choice(absent)
        fps = s.fps if s.core else self.rng.choice(FPS_VALUES)
        model = self.models[0] if s.core else self.rng.choice(self.models)
        c = Cmd("add_stream", self._channel("instance", ("rest-add",)), s.sid)
        c.params = self.add_params(s, fps, model)
        c.effect = {"add": {"fps": fps, "model_id": model, "workers": list(s.workers)}}
        c.exist_op = c.mutating = True
        return self.send(c)

    def v_remove_stream(self):
        extras = [s for s in self.w.streams.values()
                  if s.exists and not s.core and s.mutating is None and not s.inflight]
        cores = [s for s in self.w.streams.values()
                 if s.exists and s.core and s.mutating is None and not s.inflight]
        pool = extras if extras and (self.rng.random() < 0.75 or not cores) else cores
        if not pool or (pool is cores and sum(1 for x in self.w.streams.values()
                                               if x.core and not x.exists) >= 2):
            return None
        s = self.rng.choice(pool)
        c = Cmd("remove_stream", self._channel("stream", ("rest-delete",)), s.sid)
        c.params = {"stream_id": s.sid} if self.rng.random() < 0.5 else None
        c.effect = {"remove": True}
        c.exist_op = c.mutating = True
        return self.send(c)

    def v_repeat(self):
        # only commands the control module answered (not those the HTTP layer refused:
        # a repeat with the right token would be a new command)
        recent = [c for c in self.w.cmds[-300:]
                  if c.done and c.cid and c.repeat_of is None and c.payload is not None
                  and c.channel in ("mqtt-stream", "mqtt-instance", "rest-commands", "rest-add")
                  and c.status in ("completed", "rejected", "failed")
                  and c.defect != "wrong_token"]
        if not recent:
            return None
        o = self.rng.choice(recent)
        if o.channel.startswith("mqtt") and not self.mqtt_ok():
            return None
        return self._repeat(o)

    def burst_before_kill(self):
        """Model changes (acks come after a load) and a few others, all over MQTT."""
        out = []
        for _ in range(2):
            idle = self._idle_streams()
            if not idle:
                break
            s = self.rng.choice(idle)
            m = self.rng.choice(self.models)
            c = Cmd("change_model", "mqtt-stream", s.sid)
            c.params, c.effect, c.load, c.mutating = {"model_id": m}, {"model_id": m}, True, True
            out.append(self.send(c))
        for _ in range(self.rng.randint(1, 3)):
            out.append(self.one(valid=True))
        return [c for c in out if c is not None and c.channel.startswith("mqtt")]

    def v_inflight_repeat(self):
        return None  # sent right after a model change (see _after_load)

    def _repeat(self, o, inflight=False):
        c = Cmd(o.kind, o.channel, o.stream, cid=o.cid)
        c.repeat_of, c.inflight_repeat = o, inflight
        c.http_ok = o.http_ok
        c.topic, c.payload, c.path, c.method = o.topic, o.payload, o.path, o.method
        c.expected_received = 1 if inflight and o.channel.startswith("mqtt") else 0
        return self._dispatch(c)

    # ---- invalid commands --------------------------------------------------------------------------
    def _fixed(self, kind, params, expect, stream=None, defect=None, scope="stream",
               routes=(), command=None):
        s = stream if stream is not None else (self._any_stream() if scope == "stream" else None)
        sid = s.sid if hasattr(s, "sid") else s
        c = Cmd(kind, self._channel(scope, routes), sid, valid=False, defect=defect)
        c.params, c.expect = params, expect
        if command is not None:
            c.name = command or None
        return self.send(c)

    def i_bad_json(self):
        ch = self._channel("stream", ("rest-patch",))
        s = self._any_stream()
        c = Cmd("bad_json", ch, s.sid if s else "s0", valid=False, defect="bad_json")
        c.expect = {("http", 400)}
        c.raw = self.rng.choice(['{"command": "set_fps", "command_id": ', "not json at all",
                                 '{"command":"restart",}', "[1, 2", '{"a":1}{"b":2}'])
        return self.send(c)

    def i_oversized(self):
        ch = self._channel("stream", ("rest-patch",))
        s = self._any_stream()
        c = Cmd("oversized", ch, s.sid if s else "s0", valid=False, defect="oversized")
        c.expect = {("http", 413)}
        pad = "x" * OVERSIZE
        c.raw = json.dumps({"command": "set_fps", "command_id": self._cid(),
                            "params": {"max_fps": 1}, "pad": pad})
        return self.send(c)

    def i_unknown_command(self):
        name = self.rng.choice(["fly", "reboot", "SET_FPS", "set-fps", "x" * 80])
        return self._fixed("unknown_command", {}, {("rejected", "unknown_command")},
                           defect="unknown_command", command=name)

    def i_missing_command(self):
        return self._fixed("missing_command", {"max_fps": 1},
                           {("rejected", "missing_param")}, defect="missing_command",
                           command="")

    def i_missing_param(self):
        choice = self.rng.choice(["set_fps", "set_confidence", "change_model", "set_roi",
                                  "reconfigure", "add_stream"])
        if choice == "add_stream":
            s = self._any_stream()
            p = {"rtsp_url": self.camsim.url(0), "fps": 1}
            return self._fixed("add_stream", p, {("rejected", "missing_param")},
                               stream="", defect="missing_param", scope="instance",
                               routes=("rest-add",))
        p = {"set_fps": {}, "set_confidence": {"worker_id": "person_detector"},
             "change_model": {}, "set_roi": {"x": 0, "y": 0, "w": 10},
             "reconfigure": {}}[choice]
        routes = ("rest-patch",) if choice == "reconfigure" else ()
        return self._fixed(choice, p, {("rejected", "missing_param")}, defect="missing_param",
                           routes=routes)

    def i_out_of_range(self):
        choice = self.rng.choice(["set_fps", "set_confidence", "set_roi", "add_stream",
                                  "reconfigure"])
        if choice == "add_stream":
            s = self.rng.choice(list(self.w.streams.values()))
            p = {"stream_id": f"bad-{self.seq}", "rtsp_url": self.camsim.url(s.camera),
                 "fps": self.rng.choice([0, 45, -1, "fast"])}
            return self._fixed("add_stream", p, {("rejected", "invalid_param")}, stream="",
                               defect="out_of_range", scope="instance", routes=("rest-add",))
        p = {"set_fps": lambda: {"max_fps": self.rng.choice([0, 99, -1, 30.5, "fast", None])},
             "set_confidence": lambda: {"confidence_threshold": self.rng.choice([1.5, -0.1, "x"])},
             "set_roi": lambda: {"x": -5, "y": 0, "w": 10, "h": 10} if self.rng.random() < 0.5
             else {"x": 0, "y": 0, "w": 0, "h": 10},
             "reconfigure": lambda: {"fps": self.rng.choice([0, 31, "x"])}}[choice]()
        routes = ("rest-patch",) if choice == "reconfigure" else ()
        return self._fixed(choice, p, {("rejected", "invalid_param")}, defect="out_of_range",
                           routes=routes)

    def i_unknown_param(self):
        choice = self.rng.choice(["set_fps", "restart", "change_model", "reconfigure"])
        p = {"set_fps": {"max_fps": 1, "turbo": True}, "restart": {"hard": 1},
             "change_model": {"model_id": self.models[0], "gpu": 0},
             "reconfigure": {"speed": 3}}[choice]
        routes = ("rest-patch",) if choice == "reconfigure" else ()
        return self._fixed(choice, p, {("rejected", "unknown_param")}, defect="unknown_param",
                           routes=routes)

    def i_unknown_stream(self):
        self.ghost += 1
        ghost = f"ghost-{self.ghost}"
        choice = self.rng.choice(["set_fps", "restart", "remove_stream", "set_roi",
                                  "reconfigure"])
        p = {"set_fps": {"max_fps": 1}, "restart": None, "remove_stream": None,
             "set_roi": {"x": 1, "y": 1, "w": 10, "h": 10}, "reconfigure": {"fps": 1}}[choice]
        routes = {"restart": ("rest-restart",), "remove_stream": ("rest-delete",),
                  "reconfigure": ("rest-patch",)}.get(choice, ())
        return self._fixed(choice, p, {("rejected", "unknown_stream")}, stream=ghost,
                           defect="unknown_stream", routes=routes)

    def _state_dependent(self, kind, params, ok, defect, routes=()):
        s = self._any_stream()
        if s is None:
            return None
        c = Cmd(kind, self._channel("stream", routes), s.sid, valid=False, defect=defect)
        c.params, c.ok = params, ok
        return self.send(c)

    def i_unknown_model(self):
        if self.rng.random() < 0.5:
            return self._state_dependent("change_model", {"model_id": "no-such-model"},
                                         ("rejected", "unknown_model"), "unknown_model")
        return self._state_dependent("reconfigure", {"model_id": "nope", "fps": 1},
                                     ("rejected", "unknown_model"), "unknown_model",
                                     ("rest-patch",))

    def i_unknown_worker(self):
        return self._state_dependent("set_confidence", {"confidence_threshold": 0.5,
                                                        "worker_id": "no_worker"},
                                     ("rejected", "invalid_param"), "unknown_worker")

    def i_stream_exists(self):
        live = [s for s in self.w.streams.values()
                if s.exists and s.mutating is None and not s.inflight]
        if not live:
            return None
        s = self.rng.choice(live)
        c = Cmd("add_stream", self._channel("instance", ("rest-add",)), s.sid, valid=False,
                defect="stream_exists")
        c.params = self.add_params(s)
        c.effect = {"add": {"fps": s.fps, "model_id": self.models[0],
                            "workers": list(s.workers)}}
        c.exist_op = True
        return self.send(c)

    def i_wrong_token(self):
        s = self._any_stream()
        if s is None:
            return None
        route = self.rng.choice(["rest-delete", "rest-restart", "rest-patch", "rest-commands",
                                 "rest-add"])
        c = Cmd("wrong_token", route, s.sid, valid=False, defect="wrong_token")
        c.token = self.rng.choice(["wrong-token", None, self.http.token + "x", ""])
        c.params = {"rest-patch": {"fps": 1}, "rest-add": self.add_params(s)}.get(route)
        if route == "rest-commands":
            c.name, c.params = "remove_stream", None
        c.expect = {("http", 401)}
        return self.send(c)

    def i_bad_command_id(self):
        s = self._any_stream()
        if s is None:
            return None
        c = Cmd("set_fps", self._channel("stream"), s.sid, valid=False, defect="bad_command_id")
        c.params = {"max_fps": 1}
        c.bad_id = self.rng.choice([42, "", "y" * 200, ["a"], {"id": 1}])
        c.expect = {("rejected", "invalid_param")}
        return self.send(c)

    def i_params_not_object(self):
        return self._fixed("set_fps", self.rng.choice([[1], "fast", 3]),
                           {("rejected", "invalid_param")}, defect="params_not_object")

    # ---- serialising and sending ----------------------------------------------------------------------
    def send(self, c):
        """Builds topic/path and payload for c's channel, registers it, sends it."""
        params = getattr(c, "params", None)
        raw = getattr(c, "raw", None)
        stream_cmd = bool(c.stream) and c.kind not in ("add_stream", "restart_all")
        if c.channel.startswith("mqtt"):
            if c.channel == "mqtt-stream" and not stream_cmd:
                c.channel = "mqtt-instance"
            c.topic = f"{self.prefix}/control/{self.instance}"
            if c.channel == "mqtt-stream":
                c.topic += f"/{c.stream}"
            if raw is None:
                raw = json.dumps(self._command_body(
                    c, params, c.channel == "mqtt-instance" and stream_cmd))
            c.payload = raw
        else:
            c.method, c.path, body = self._rest_request(c, params, stream_cmd)
            c.payload = raw if raw is not None else body
        c.expected_received = 1 if c.channel.startswith("mqtt") and c.cid else 0
        return self._dispatch(c)

    def _rest_request(self, c, params, stream_cmd):
        ch, sid = c.channel, c.stream
        if ch == "rest-patch":
            return "PATCH", f"/api/v1/streams/{sid}", params if params is not None else {}
        if ch == "rest-delete":
            return "DELETE", f"/api/v1/streams/{sid}", None
        if ch == "rest-restart":
            return "POST", f"/api/v1/streams/{sid}/restart", None
        if ch == "rest-add":
            c.http_ok = 201
            body = dict(params or {})
            if c.defect != "wrong_token":
                c.cid = self._cid()
                body["command_id"] = c.cid
            return "POST", "/api/v1/streams", body
        return "POST", "/api/v1/commands", self._command_body(c, params, stream_cmd)

    def _command_body(self, c, params, with_stream):
        """A command's JSON body; gives c a fresh command_id unless it carries a bad one."""
        body = {}
        if c.name:
            body["command"] = c.name
        if hasattr(c, "bad_id"):
            body["command_id"] = c.bad_id
        else:
            c.cid = self._cid()
            body["command_id"] = c.cid
        if with_stream:
            body["stream_id"] = c.stream
        if params is not None:
            body["params"] = params
        return body

    def _null_code(self, c):
        if c.defect == "bad_command_id":
            return self.w.gen_sent, "invalid_param"
        return self.w.null_sent, {"bad_json": "invalid_json",
                                  "oversized": "payload_too_large"}.get(c.defect, "?")

    def _dispatch(self, c):
        self.by_channel[c.channel] = self.by_channel.get(c.channel, 0) + 1
        c.t_sent = time.monotonic()
        if c.channel.startswith("mqtt") and c.cid is None:
            # answered with command_id null (unreadable) or generated (bad command_id):
            # counted per error code, not tracked one by one
            with self.w.lock:
                c.t_done, c.verdict = c.t_sent, "counted"
                self.w.cmds.append(c)
                if self.pub.publish(c.topic, c.payload) is None:
                    c.verdict = "not sent"
                else:
                    tally, code = self._null_code(c)
                    tally[code] = tally.get(code, 0) + 1
            return c
        self.w.register(c)
        if c.channel.startswith("mqtt"):
            c.mid = self.pub.publish(c.topic, c.payload)
            if c.mid is None:  # the connection dropped under us: never sent
                self.w.resolve(c, None, None, time.monotonic())
                c.verdict = "not sent"
        else:
            self.pool.submit(self._rest_send, c)
        return c

    def _rest_send(self, c):
        status, resp = self.http.request(c.method, c.path, body=c.payload,
                                         token=getattr(c, "token", "default"), timeout=10.0)
        t = time.monotonic()
        st = code = None
        if isinstance(resp, dict):
            st = resp.get("status")
            err = resp.get("error")
            code = err.get("code") if isinstance(err, dict) else None
            if st is None and code:
                st = "http-error"
        self.w.resolve(c, st, code, t, http_status=status)
