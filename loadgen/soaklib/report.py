"""report.py — turns what the soak saw into checks and figures: one JSON report and one
summary line. Each check has a name, ok, the measured value and its limit."""
import bisect
import json
import os
import resource
import time

from .consts import (FLOW_GAP_LIMIT_S, GRACE_FAULT, MIN_INCLUDED_S, RATE_LIMIT,
                     RECONNECT_LIMIT_S, RSS_LIMIT_PCT)

MAX_LISTED = 40


def _merge(wins):
    out = []
    for s, e in sorted(wins):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return out


def _absent_windows(s, t_hi):
    """Where the stream did not exist (by completed add/remove acks)."""
    out, since = [], None
    for t, ex in s.exist_changes:
        if not ex and since is None:
            since = t
        elif ex and since is not None:
            out.append([since, t])
            since = None
    if since is not None:
        out.append([since, t_hi + 1])
    return out


def rates(soak, t_lo, t_hi):
    """Per stream: person_detector results against target fps outside its own faults."""
    by_cam = {}
    for f in soak.faults:
        end = f["end"] if f["end"] is not None else t_hi
        by_cam.setdefault(f["cam"], []).append([f["start"] - 0.5, end + GRACE_FAULT])
    out = {}
    for s in soak.world.streams.values():
        ts, cs = soak.counts.get(s.sid, ((), ()))
        wins = _merge([list(w) for w in s.exclusions] + by_cam.get(s.camera, []) +
                      _absent_windows(s, t_hi) + [[-1e18, t_lo]])
        fch = sorted(s.fps_changes)
        f_t = [t for t, _ in fch]

        def fps_at(t):
            return fch[max(0, bisect.bisect_right(f_t, t) - 1)][1]
        k = 0
        inc_s = results = expected = 0.0
        for i in range(1, len(ts)):
            a, b = ts[i - 1], ts[i]
            if a < t_lo or b > t_hi:
                continue
            while k < len(wins) and wins[k][1] < a:
                k += 1
            if k < len(wins) and wins[k][0] <= b:
                continue  # overlaps an excluded window
            dc = cs[i] - cs[i - 1]
            fa, fb = fps_at(a), fps_at(b)
            if dc < 0 or fa != fb:
                continue
            inc_s += b - a
            results += dc
            expected += fa * (b - a)
        excl = sum(min(e, t_hi) - max(st, t_lo) for st, e in wins if e > t_lo and st < t_hi)
        out[s.sid] = {"included_s": round(inc_s, 1), "excluded_s": round(excl, 1),
                      "results": int(results), "expected": round(expected, 1),
                      "ratio": round(results / expected, 3) if expected > 0 else None,
                      "judged": inc_s >= MIN_INCLUDED_S and expected > 0}
    return out


def _daemon_log_ids(path):
    """command_ids of the daemon's audit lines, and lines that are not JSON (crashes)."""
    ids, junk, errors = set(), [], {}
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if '"event":"command"' in line:
                    try:
                        ids.add(json.loads(line).get("command_id"))
                    except ValueError:
                        pass
                elif not line.startswith("{"):
                    if len(junk) < 20:
                        junk.append(line.rstrip()[:300])
                elif '"level":"error"' in line:
                    try:
                        ev = json.loads(line).get("event")
                    except ValueError:
                        ev = "?"
                    errors[ev] = errors.get(ev, 0) + 1
    except OSError:
        pass
    return ids, junk, errors


def _near_restart(t, events, before, after):
    for ev in events:
        kill = ev.get("kill")
        back = ev.get("back") or ev.get("start") or kill
        if kill is not None and kill - before <= t <= (back or kill) + after:
            return True
    return False


def acks(soak):
    w = soak.world
    logged, junk, errors = _daemon_log_ids(os.path.join(soak.workdir, "vigild.log"))
    tracked = [c for c in w.cmds if c.verdict != "counted"]
    fig = {"tracked": len(tracked), "ok": 0, "wrong_outcome": 0, "no_final_ack": 0,
           "lost_in_broker_restart": 0, "not_sent": 0, "received_not_as_expected": 0,
           "duplicate_acks": 0, "redelivered_after_restart": 0}
    fails, outcomes, by_channel = [], {}, {}
    for c in tracked:
        if c.verdict == "not sent":
            fig["not_sent"] += 1
            continue
        ch = by_channel.setdefault(c.channel, {"sent": 0, "ok": 0})
        ch["sent"] += 1
        key = f"{c.status}:{c.code}" if c.code else str(c.status)
        if c.channel.startswith("rest"):
            key = f"HTTP {c.http_status} {key}"
        outcomes[key] = outcomes.get(key, 0) + 1
        problem = None
        if not c.done:
            near = c.channel.startswith("mqtt") and _near_restart(c.t_sent, soak.broker_events,
                                                                  3.0, 0)
            if near and c.cid not in logged and c.received == 0:
                fig["lost_in_broker_restart"] += 1
                continue
            fig["no_final_ack"] += 1
            problem = "no final ack" + (" (the daemon logged it)" if c.cid in logged else "")
        elif c.verdict != "ok":
            fig["wrong_outcome"] += 1
            problem = c.verdict
        elif c.channel.startswith("mqtt") and c.received != c.expected_received:
            fig["received_not_as_expected"] += 1
            problem = f"{c.received} 'received' acks, expected {c.expected_received}"
        if problem:
            d = c.brief()
            d["problem"] = problem
            d["t"] = round(c.t_sent - soak.t_ref, 2)
            fails.append(d)
        else:
            fig["ok"] += 1
            ch["ok"] += 1
    for d in w.duplicate_acks:
        # QoS 1 is at least once: acks the daemon had not seen acknowledged when the
        # broker died are sent again after the reconnect (the broker may have passed
        # them on already). Anywhere else a second ack is a bug.
        if _near_restart(d["t"], soak.broker_events, 0, 15.0):
            fig["redelivered_after_restart"] += 1
        else:
            fig["duplicate_acks"] += 1
            fails.append({"command_id": d["command_id"], "problem": "an ack too many",
                          "status": d["status"], "t": round(d["t"] - soak.t_ref, 2)})
    null = {"sent": dict(w.null_sent), "acked": dict(w.null_acks)}
    gen = {"sent": dict(w.gen_sent), "acked": dict(w.gen_acks)}
    null_ok = all(w.null_acks.get(k, 0) == v for k, v in w.null_sent.items()) and \
        all(w.gen_acks.get(k, 0) == v for k, v in w.gen_sent.items())
    if not null_ok:
        fails.append({"problem": "acks with command_id null/generated do not match",
                      "null": null, "generated": gen})
    if w.unexpected_acks:
        fails.append({"problem": "acks for unknown command_ids",
                      "examples": [a["ack"] for a in w.unexpected_acks[:5]]})
    pre = [c for c in tracked if getattr(c, "pre_kill", False)]
    across = {"sent_just_before_kill": len(pre),
              "final_ack_before_kill": sum(1 for c in pre if c.done and
                                           not _after_kill(c, soak.broker_events)),
              "final_ack_after_reconnect": sum(1 for c in pre if c.done and
                                               _after_kill(c, soak.broker_events)),
              "never_answered": sum(1 for c in pre if not c.done)}
    repeats = [c for c in tracked if c.repeat_of is not None and not c.inflight_repeat]
    inflight = [c for c in tracked if c.inflight_repeat]
    fig.update({
        "ok_all": not fails, "by_channel": by_channel, "outcomes": outcomes,
        "busy": sum(1 for c in tracked if c.code == "busy"),
        "repeats": {"sent": len(repeats), "same_outcome": sum(1 for c in repeats
                                                              if c.verdict == "ok")},
        "inflight_repeats": {"sent": len(inflight), "answered_ok": sum(
            1 for c in inflight if c.verdict == "ok"),
            "rest_no_answer": sum(1 for c in inflight if c.channel.startswith("rest")
                                  and c.http_status in (0, None))},
        "null_id": null, "generated_id": gen, "unexpected_acks": len(w.unexpected_acks),
        "across_broker_restarts": across,
        "failures": fails[:MAX_LISTED], "failures_total": len(fails),
        "daemon_log": {"error_events": errors, "non_json_lines": junk},
    })
    return fig


def _after_kill(c, events):
    for ev in events:
        if ev.get("kill") and c.t_sent <= ev["kill"] <= (c.t_done or 0):
            return True
    return False


def _series(soak, n_max=400):
    t, r = soak.samples_t, soak.rss
    if not t:
        return []
    step = max(1, len(t) // n_max)
    return [[round(t[i] - soak.t_ref, 1), int(r[i]), int(soak.threads[i]), int(soak.fds[i]),
             round(soak.cpu[i], 1)] for i in range(0, len(t), step)]


def _cpu(soak):
    """vigild's average CPU (% of one core) during the chaos, and the soak's own."""
    t, c = soak.samples_t, soak.cpu
    lo, hi = soak.t_chaos0, getattr(soak, "t_chaos_end", None)
    idx = [i for i in range(len(t)) if lo is not None and hi is not None and lo <= t[i] <= hi]
    out = {"vigild_percent_avg": None, "soak_percent_avg": None}
    if len(idx) >= 2:
        a, b = idx[0], idx[-1]
        out["vigild_percent_avg"] = round(100 * (c[b] - c[a]) / (t[b] - t[a]), 1)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.monotonic() - soak.t_created
    out["soak_percent_avg"] = round(100 * (ru.ru_utime + ru.ru_stime) / wall, 1) if wall else None
    return out


def build(soak, exit_code, t_start):
    a = soak.a
    soak.t_ref = getattr(soak, "t_chaos0", None) or (soak.samples_t[0] if soak.samples_t
                                                     else time.monotonic())
    checks = []

    def check(name, ok, value, limit, **detail):
        checks.append({"name": name, "ok": bool(ok), "value": value, "limit": limit, **detail})

    ran = soak.t_chaos0 is not None and getattr(soak, "t_chaos_end", None) is not None
    herr = getattr(getattr(soak, "sub", None), "handler_errors", [])
    check("soak_ran", ran and not soak.error and not herr, soak.error or (herr[:3] or None), None)
    # the daemon never exits; SIGTERM exits 0
    ex = soak.daemon_exit
    check("daemon_never_exited", ex is None,
          None if ex is None else {"t": round(ex[0] - soak.t_ref, 1), "code": ex[1]}, None)
    check("sigterm_exit_0", exit_code == 0, exit_code, 0,
          shutdown_s=getattr(soak, "shutdown_s", None))
    # acks
    ackfig = acks(soak)
    check("acks", ran and ackfig["ok_all"], ackfig["failures_total"], 0,
          note="every command with a command_id: exactly one final ack with the expected "
               "status (REST: the HTTP answer); acks with command_id null counted per code")
    # streams after chaos
    fin = getattr(soak, "final_streams", None) or {}
    core = sorted(s.sid for s in soak.world.streams.values() if s.core)
    present = sorted(fin)
    running = sorted(k for k, v in fin.items() if v.get("state") == "running")
    check("streams_exist_and_running", present == core and running == core,
          {"expected": core, "present": present, "running": running}, None)
    mism = [m for cp in ("at_25pct", "final")
            for m in (soak.checkpoints.get(cp, {}).get("config_mismatches") or [])]
    check("stream_config_follows_acks", ran and not mism, mism[:MAX_LISTED], [])
    sf = getattr(soak, "final_state_file", None)
    check("state_file_lists_streams", sf == core, sf, core)
    # rates
    t_hi = soak.checkpoints.get("final", {}).get("t") or time.monotonic()
    rt = rates(soak, soak.t_chaos0 or t_hi, t_hi)
    judged = {k: v for k, v in rt.items() if v["judged"]}
    worst = min(judged.items(), key=lambda kv: kv[1]["ratio"]) if judged else (None, None)
    check("result_rate", ran and bool(judged) and worst[1]["ratio"] >= RATE_LIMIT,
          {"min_ratio": worst[1]["ratio"] if worst[1] else None, "stream": worst[0],
           "streams_judged": len(judged)}, RATE_LIMIT)
    # MQTT: inference flow while the broker is up, reconnects
    periods = [{"start": round(p["start"] - soak.t_ref, 1),
                "end": round(p["end"] - soak.t_ref, 1) if p["end"] else None,
                "messages": p["count"], "max_gap_s": round(p["max_gap"], 2),
                "max_gap_at": round(p["max_gap_at"] - soak.t_ref, 1) if p["max_gap_at"] else None}
               for p in soak.flow.periods]
    max_gap = max((p["max_gap_s"] for p in periods), default=None)
    check("inference_flow_while_broker_up", ran and bool(periods) and max_gap <= FLOW_GAP_LIMIT_S,
          max_gap, FLOW_GAP_LIMIT_S)
    recon = [ev.get("reconnect_s") for ev in soak.broker_events]
    check("mqtt_reconnect_after_broker_restart",
          all(r is not None and r <= RECONNECT_LIMIT_S for r in recon),
          {"reconnect_s": recon, "max": max((r for r in recon if r is not None), default=None)},
          RECONNECT_LIMIT_S)
    # memory, fds, threads
    for cp in soak.checkpoints.values():  # checkpoint times relative to the chaos start
        if "t" in cp:
            cp["t_s"] = round(cp.pop("t") - soak.t_ref, 1)
    cp25, cpf, base = (soak.checkpoints.get(k, {}) for k in ("at_25pct", "final", "baseline"))
    growth = None
    if cp25.get("rss_kb") and cpf.get("rss_kb"):
        growth = round(100.0 * (cpf["rss_kb"] - cp25["rss_kb"]) / cp25["rss_kb"], 2)
    check("rss_growth_25_to_100pct", growth is not None and growth < RSS_LIMIT_PCT, growth,
          RSS_LIMIT_PCT, rss_kb={"baseline": base.get("rss_kb"), "at_25pct": cp25.get("rss_kb"),
                                 "final": cpf.get("rss_kb"),
                                 "max": int(max(soak.rss)) if soak.rss else None})
    fds_end, thr_end = cpf.get("fds_settled"), cpf.get("threads_settled")
    check("fds_back_to_baseline", fds_end is not None and fds_end <= base.get("fds", -1),
          fds_end, base.get("fds"), max=int(max(soak.fds)) if soak.fds else None)
    check("threads_back_to_baseline", thr_end is not None and thr_end <= base.get("threads", -1),
          thr_end, base.get("threads"), max=int(max(soak.threads)) if soak.threads else None)

    kinds = {}
    for c in soak.world.cmds:
        if getattr(c, "own", False):
            continue
        k = ("valid " if c.valid else "invalid ") + (c.defect or c.kind)
        if c.repeat_of is not None:
            k = "valid " + ("inflight_repeat" if c.inflight_repeat else "repeat")
        kinds[k] = kinds.get(k, 0) + 1
    storm_cmds = [c for c in soak.world.cmds if not getattr(c, "own", False)]
    n_invalid = sum(1 for c in storm_cmds if not c.valid)
    faults = {}
    for f in soak.faults:
        faults[f["kind"]] = faults.get(f["kind"], 0) + 1
    rep = {
        "ok": all(c["ok"] for c in checks),
        "failed_checks": [c["name"] for c in checks if not c["ok"]],
        "seed": a.seed, "cameras": a.cameras, "minutes": a.minutes,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t_start)),
        "wall_s": round(time.time() - t_start, 1),
        "checks": checks,
        "figures": {
            "commands": {"sent": len(storm_cmds), "invalid": n_invalid,
                         "invalid_fraction": round(n_invalid / len(storm_cmds), 3)
                         if storm_cmds else None,
                         "own_commands": len(soak.world.cmds) - len(storm_cmds),
                         "by_kind": dict(sorted(kinds.items())),
                         "by_channel": dict(sorted(soak.storm.by_channel.items()))
                         if getattr(soak, "storm", None) else {}},
            "acks": ackfig,
            "faults": {"camera": faults, "planned": getattr(soak, "plan", None),
                       "broker_restarts": [{k: (round(v - soak.t_ref, 2)
                                                if k in ("kill", "start", "back") and v else v)
                                            for k, v in ev.items()}
                                           for ev in soak.broker_events]},
            "rates": {"limit": RATE_LIMIT, "min_included_s": MIN_INCLUDED_S, "per_stream": rt},
            "mqtt": {"inference_messages": soak.flow.total, "periods": periods,
                     "daemon_metrics": soak.mqtt_metric},
            "resources": {"baseline": base, "at_25pct": cp25, "final": cpf,
                          "cpu": _cpu(soak),
                          "series_t_rss_kb_threads_fds_cpus": _series(soak)},
        },
        "notes": soak.notes + [f"MQTT handler error: {e}" for e in
                               getattr(getattr(soak, "sub", None), "handler_errors", [])[:20]],
        "workdir": soak.workdir,
    }
    return rep


def write(rep, path):
    if not path:
        return
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(rep, f, indent=1, default=str)
        f.write("\n")
    os.replace(tmp, path)


def summary_line(rep):
    c = {x["name"]: x for x in rep["checks"]}
    f = rep["figures"]
    ak = f["acks"]
    rate = c["result_rate"]["value"]
    recon = c["mqtt_reconnect_after_broker_restart"]["value"]
    parts = [
        "soak " + ("PASS" if rep["ok"] else "FAIL [" + ",".join(rep["failed_checks"]) + "]"),
        f"seed={rep['seed']} cameras={rep['cameras']} minutes={rep['minutes']}",
        f"commands={f['commands']['sent']} invalid={f['commands']['invalid_fraction']}",
        f"acks ok={ak['ok']}/{ak['tracked'] - ak['not_sent']} wrong={ak['wrong_outcome']} "
        f"missing={ak['no_final_ack']} busy={ak['busy']}",
        f"streams={len(c['streams_exist_and_running']['value']['running'])}/"
        f"{len(c['streams_exist_and_running']['value']['expected'])} running",
        f"rate_min={rate['min_ratio']}({rate['stream']})",
        f"broker_restarts={len(recon['reconnect_s'])} reconnect_max_s={recon['max']}",
        f"inference_gap_max_s={c['inference_flow_while_broker_up']['value']}",
        f"rss_growth={c['rss_growth_25_to_100pct']['value']}%",
        f"fds={c['fds_back_to_baseline']['value']}/{c['fds_back_to_baseline']['limit']} "
        f"threads={c['threads_back_to_baseline']['value']}/"
        f"{c['threads_back_to_baseline']['limit']}",
        f"exit={c['sigterm_exit_0']['value']}",
    ]
    return " | ".join(parts)
