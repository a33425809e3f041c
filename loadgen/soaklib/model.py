"""model.py — what the soak believes the daemon's state is, and every command it sent.

The storm only ever sends one state-changing command per stream at a time (plus the
deliberate probes sent while a model loads), so the stream's configuration follows the
completed acks. What a command may legitimately answer is decided when its answer
arrives, from the operations that overlapped it: a stream that was being added or
removed meanwhile may or may not exist, a stream whose model was loading meanwhile may
answer "busy". Times are time.monotonic() seconds. All access goes through World.lock.
"""
import threading
import time

OK = ("completed", None)
INF = float("inf")


class Stream:
    def __init__(self, sid, camera, core, fps, model_id, workers, exists):
        self.sid, self.camera, self.core = sid, camera, core
        self.fps, self.model_id, self.conf, self.roi = fps, model_id, 0.5, None
        self.workers = workers               # worker types, person_detector first
        self.exists = exists
        self.exist_changes = [(-INF, exists)]  # (t_resolved, exists) of completed add/remove
        self.fps_changes = [(-INF, fps)]       # (t_resolved, fps)
        self.exclusions = []                 # [start, end] of own faults + recovery grace
        self.ops = []                        # add/remove and model loads: Cmd objects
        self.mutating = None                 # the in-flight state-changing Cmd, if any
        self.inflight = set()                # every in-flight Cmd to this stream

    def exists_at(self, t):
        state = self.exist_changes[0][1]
        for tr, ex in self.exist_changes:
            if tr <= t:
                state = ex
        return state

    def fps_at(self, t):
        fps = self.fps_changes[0][1]
        for tr, f in self.fps_changes:
            if tr <= t:
                fps = f
        return fps

    def exclude(self, start, end):
        self.exclusions.append([start, end])


class Cmd:
    """One command sent. `expect` is fixed for defects that do not depend on state;
    otherwise `ok` is what it answers when the stream exists and is not busy."""
    _n = 0

    def __init__(self, kind, channel, stream=None, cid=None, valid=True, defect=None):
        Cmd._n += 1
        self.n = Cmd._n
        self.kind, self.channel, self.stream, self.cid = kind, channel, stream, cid
        self.name = "restart" if kind == "restart_all" else kind  # the "command" sent
        self.valid, self.defect = valid, defect
        self.expect = None       # fixed set of (status, code)
        self.ok = OK             # outcome in the normal state (or a state-dependent defect)
        self.effect = {}         # applied on "completed"
        self.load = False        # accepted -> the stream is busy until it finishes
        self.exist_op = False
        self.mutating = False
        self.payload = None      # what was sent (for repeats)
        self.topic = self.path = self.method = None
        self.http_ok = 200
        self.repeat_of = None    # the original Cmd for repeats
        self.inflight_repeat = False
        self.t_sent = time.monotonic()
        self.t_done = None
        self.status = self.code = None
        self.http_status = None
        self.received = 0
        self.expected_received = 1 if channel.startswith("mqtt") and cid else 0
        self.finals = []         # (t, status, code) of every final ack seen for this record
        self.verdict = None      # None (pending), "ok", or a failure description
        self.allowed = None      # the outcome set it was judged against
        self.broker_epoch = 0    # broker start count when sent

    @property
    def done(self):
        return self.t_done is not None

    def brief(self):
        return {"n": self.n, "command_id": self.cid, "kind": self.kind, "channel": self.channel,
                "stream_id": self.stream, "defect": self.defect, "status": self.status,
                "code": self.code, "http_status": self.http_status,
                "allowed": sorted(f"{s}:{c}" if c else s for s, c in (self.allowed or ())),
                "received_acks": self.received, "final_acks": len(self.finals),
                "verdict": self.verdict}


def http_status_for(outcome, ok_status):
    status, code = outcome
    if status == "completed":
        return ok_status
    if status == "failed":
        return 422
    return {"unknown_stream": 404, "stream_exists": 409, "busy": 409,
            "payload_too_large": 413}.get(code, 400)


class World:
    def __init__(self, grace):
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.grace = grace       # dict: fault, restart, fps, model, add
        self.streams = {}
        self.cmds = []
        self.by_cid = {}         # cid -> list of records awaiting/holding MQTT acks
        self.unexpected_acks = []  # acks we cannot attribute
        self.null_acks = {}      # code -> count (command_id null: unreadable payloads)
        self.gen_acks = {}       # code -> count (command_id generated: bad command_id)
        self.null_sent = {}
        self.gen_sent = {}
        self.duplicate_acks = []  # acks beyond those expected: {command_id, t, status}
        self.failures = []

    # ---- streams -----------------------------------------------------------------------
    def add_stream(self, s):
        self.streams[s.sid] = s

    def existing(self):
        return [s for s in self.streams.values() if s.exists]

    # ---- sending -----------------------------------------------------------------------
    def register(self, c):
        """Call before sending: marks what is in flight."""
        with self.lock:
            self.cmds.append(c)
            s = self.streams.get(c.stream)
            if s:
                s.inflight.add(c)
                if c.mutating:
                    s.mutating = c
                if c.exist_op or c.load:
                    s.ops.append(c)
            if c.cid and c.channel.startswith("mqtt"):
                self.by_cid.setdefault(c.cid, []).append(c)

    # ---- answers -----------------------------------------------------------------------
    def on_mqtt_ack(self, ack, t):
        cid = ack.get("command_id")
        status = ack.get("status")
        code = (ack.get("error") or {}).get("code") if isinstance(ack.get("error"), dict) else None
        with self.lock:
            if cid is None:
                self.null_acks[code] = self.null_acks.get(code, 0) + 1
                return
            if isinstance(cid, str) and cid.startswith("gen-"):
                self.gen_acks[code] = self.gen_acks.get(code, 0) + 1
                return
            recs = self.by_cid.get(cid)
            if not recs:
                self.unexpected_acks.append({"t": t, "ack": ack})
                return
            if status == "received":
                self._on_received(recs, cid, t)
            else:
                self._on_final(recs, cid, status, code, t)

    def _on_received(self, recs, cid, t):
        # the original's "received", then in-flight repeats (answered "received" again)
        for r in recs:
            if r.repeat_of is None and r.received == 0:
                r.received += 1
                return
        for r in recs:
            if r.inflight_repeat and not r.done:
                r.received += 1
                self.resolve(r, "received", None, t)
                return
        # surplus: a QoS 1 re-send after a broker restart, or a daemon bug (report.py)
        self.duplicate_acks.append({"command_id": cid, "t": t, "status": "received"})

    def _on_final(self, recs, cid, status, code, t):
        for r in recs:
            if not r.done:
                r.finals.append((t, status, code))
                self.resolve(r, status, code, t)
                return
        recs[0].finals.append((t, status, code))
        self.duplicate_acks.append({"command_id": cid, "t": t, "status": status})

    def resolve(self, c, status, code, t, http_status=None):
        """Records the final answer of c, judges it, applies its effect."""
        with self.lock:
            if c.done:
                return
            c.t_done, c.status, c.code, c.http_status = t, status, code, http_status
            s = self.streams.get(c.stream)
            if s:
                s.inflight.discard(c)
                if s.mutating is c:
                    s.mutating = None
            allowed = self.allowed(c)
            c.allowed = allowed
            c.verdict = self.judge(c, allowed, status, code, http_status)
            if status == "completed" and c.repeat_of is None:
                self.apply(c, t)
            self.cond.notify_all()

    @staticmethod
    def judge(c, allowed, status, code, http_status):
        if c.channel.startswith("rest"):
            codes = {cd if st == "http" else http_status_for((st, cd), c.http_ok)
                     for st, cd in allowed if st != "received"}
            if http_status not in codes:
                return f"HTTP {http_status or 'no answer'}, expected {sorted(codes)}"
            if ("http", http_status) in allowed or status is None:
                return "ok"
        if (status, code) in allowed:
            return "ok"
        return f"{status}:{code}, expected " + ", ".join(
            sorted(f"{s}:{k}" if k else str(s) for s, k in allowed))

    def allowed(self, c):
        if c.repeat_of is not None:
            o = c.repeat_of
            outs = {(o.status, o.code)} if o.done else self.allowed(o)
            if not c.inflight_repeat:
                return outs
            # a repeat of a command still in progress: "received" again, or its outcome,
            # or (REST) an answer saying it is in progress
            return outs | {("received", None), ("http", 202), ("http", 409)}
        if c.expect is not None:
            return set(c.expect)
        if c.kind == "restart_all":
            return {OK}
        s = self.streams.get(c.stream)
        if s is None:
            return {("rejected", "unknown_stream")}
        exists = self._possible_exists(s, c)
        out = set()
        if c.kind == "add_stream":
            if False in exists:
                out.add(c.ok)
            if True in exists:
                out.add(("rejected", "stream_exists"))
            return out
        if False in exists:
            out.add(("rejected", "unknown_stream"))
        if True in exists:
            out.add(c.ok)
            if self._possible_busy(s, c):
                out.add(("rejected", "busy"))
        return out

    def _overlaps(self, o, c):
        end = o.t_done if o.t_done is not None else INF
        cend = c.t_done if c.t_done is not None else INF
        return o.t_sent <= cend and end >= c.t_sent

    def _possible_exists(self, s, c):
        states = {s.exists_at(c.t_sent)}
        for o in s.ops:
            if o is not c and o.exist_op and self._overlaps(o, c) and \
                    (not o.done or o.status == "completed"):
                states |= {True, False}
        return states

    def _possible_busy(self, s, c):
        for o in s.ops:
            if o is not c and o.load and self._overlaps(o, c) and \
                    (not o.done or o.status in ("completed", "failed")):
                return True
        return False

    def apply(self, c, t):
        e, g = c.effect, self.grace
        if c.kind == "restart_all":
            for s in self.existing():
                s.exclude(c.t_sent - 0.5, t + g["restart"])
            return
        s = self.streams.get(c.stream)
        if s is None:
            return
        if "add" in e:
            s.exists = True
            s.exist_changes.append((t, True))
            s.fps, s.model_id, s.conf, s.roi = e["add"]["fps"], e["add"]["model_id"], 0.5, None
            s.workers = e["add"]["workers"]
            s.fps_changes.append((t, s.fps))
            s.exclude(c.t_sent - 0.5, t + g["add"])
            return
        if e.get("remove"):
            s.exists = False
            s.exist_changes.append((t, False))
            s.exclude(c.t_sent - 0.5, t + g["add"])
            return
        if e.get("restart"):
            s.exclude(c.t_sent - 0.5, t + g["restart"])
        if "fps" in e:
            s.fps = e["fps"]
            s.fps_changes.append((t, s.fps))
            s.exclude(c.t_sent - 0.5, t + g["fps"])
        if "model_id" in e:
            s.model_id = e["model_id"]
            s.exclude(c.t_sent - 0.5, t + g["model"])
        if "conf" in e:
            s.conf = e["conf"]
        if "roi" in e:
            s.roi = e["roi"]

    # ---- waiting -----------------------------------------------------------------------
    def pending(self):
        with self.lock:
            return [c for c in self.cmds if not c.done]

    def wait_idle(self, timeout):
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                if not any(not c.done for c in self.cmds):
                    return True
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.5))
