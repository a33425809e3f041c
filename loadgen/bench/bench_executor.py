#!/usr/bin/python3
"""bench_executor.py — the inference executor pool against bare forward passes, and
vigild's end-to-end latency, in one run.

1. build/vigil-bench-executor (bench_executor.c): the same model (yolo-fastest-body),
   the same 320x320 frame, alternating rounds of a bare vg_detector_run() loop on one
   thread and the vg_infer pool (1 executor, 4 streams, closed loop: each result
   re-posts the stream's frame), then both with 2 threads. CPU per result from
   CLOCK_PROCESS_CPUTIME_ID. Target (inference issue): pool / bare <= 1.10.
2. vigild with 8 camsim streams at 1 fps (person_detector, yolo-fastest-body) publishing
   to a real mosquitto; mosquitto_sub collects care/inferences/#. latency_ms (capture ->
   result, set by the executor) p50/p95, and the delivery latency (receipt at the
   subscriber - captured_at) that adds the loop, MQTT and the broker.
"""
import argparse
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402


def parse_rounds(text):
    rows = []
    for line in text.splitlines():
        if not line.startswith("mode="):
            continue
        kv = dict(f.split("=", 1) for f in line.split())
        rows.append({k: (v if k == "mode" else float(v)) for k, v in kv.items()})
    return rows


def micro(args):
    cmd = [os.path.join(B.BUILD, "vigil-bench-executor"), "--models", B.MODELS,
           "--image", os.path.join(B.SHARED, "fixtures", "person.jpg"),
           "--rounds", str(args.rounds), "--seconds", str(args.round_s), "--warmup", "0.3",
           "--streams", "4", "--threads", "2"]
    B.log("$ " + " ".join(cmd))
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rows = parse_rounds(out)
    for line in out.splitlines():
        if line.startswith("warning="):
            B.log("# " + line)

    def pick(mode, threads):
        return [r for r in rows if r["mode"] == mode and r["threads"] == threads]
    bare1, pool1 = pick("bare", 1), pick("pool", 1)
    bare2, pool2 = pick("bare", 2), pick("pool", 2)
    cb = [r["cpu_ms_per_result"] for r in bare1]
    cp = [r["cpu_ms_per_result"] for r in pool1]
    wb = [r["wall_ms_per_result"] for r in bare1]
    wp = [r["wall_ms_per_result"] for r in pool1]
    res = {
        "rounds": args.rounds, "round_s": args.round_s,
        "bare_cpu_ms": cb, "pool_cpu_ms": cp, "bare_wall_ms": wb, "pool_wall_ms": wp,
        "ratio_cpu_min": min(cp) / min(cb),
        "ratio_cpu_median": statistics.median(cp) / statistics.median(cb),
        "ratio_cpu_paired_median": statistics.median(p / b for p, b in zip(cp, cb)),
        "ratio_wall_min": min(wp) / min(wb),
        "forward_cpu_ms_min": min(cb), "forward_cpu_ms_median": statistics.median(cb),
        "results_per_s": {
            "bare_1": max(r["results_per_s"] for r in bare1),
            "pool_1": max(r["results_per_s"] for r in pool1),
            "bare_2": max(r["results_per_s"] for r in bare2) if bare2 else None,
            "pool_2": max(r["results_per_s"] for r in pool2) if pool2 else None,
        },
        "pool2_cpu_ms": min(r["cpu_ms_per_result"] for r in pool2) if pool2 else None,
        "bare2_cpu_ms": min(r["cpu_ms_per_result"] for r in bare2) if bare2 else None,
    }
    rps = res["results_per_s"]
    B.log(f"bare loop: cpu ms/forward min {min(cb):.3f} median {statistics.median(cb):.3f} "
          f"(rounds: {', '.join(f'{x:.2f}' for x in cb)})")
    B.log(f"pool (1 executor): cpu ms/result min {min(cp):.3f} median {statistics.median(cp):.3f} "
          f"(rounds: {', '.join(f'{x:.2f}' for x in cp)})")
    B.log(f"pool/bare cpu per result: min-based {res['ratio_cpu_min']:.3f}, median-based "
          f"{res['ratio_cpu_median']:.3f}, paired median {res['ratio_cpu_paired_median']:.3f}; "
          f"wall min-based {res['ratio_wall_min']:.3f}")
    B.log(f"results/s: bare 1 thread {rps['bare_1']:.1f}, pool 1 thread {rps['pool_1']:.1f}, "
          f"bare 2 threads {B.fmt(rps['bare_2'], '.1f')}, pool 2 threads {B.fmt(rps['pool_2'], '.1f')} "
          f"(best of {len(pool2)} rounds; CPU ms/result with 2 threads: bare "
          f"{B.fmt(res['bare2_cpu_ms'], '.2f')}, pool {B.fmt(res['pool2_cpu_ms'], '.2f')})")
    return res


def e2e(run, args):
    n, fps = args.e2e_streams, 1
    cam = B.Camsim(run, B.make_clip("person-720p"), n)
    broker = B.Broker(run)
    sub = B.Subscriber(run, broker)
    v = B.Vigild(run, [{"stream_id": f"c{i}", "url": cam.url(i), "fps": fps,
                        "workers": B.PERSON_WORKER} for i in range(n)],
                 mqtt_port=broker.port, name="vigild-e2e", stagger_s=1.0)
    if not v.wait_up(40):
        B.log("# e2e: not every stream came up within 40 s")
    B.time.sleep(args.warmup)
    cw, tw = B.CpuWindow([v.pid]), B.ThreadWindow(v.pid)
    t0 = B.time.time()
    cw.begin()
    tw.begin()
    cw.sleep(args.window)
    cw.end()
    threads = tw.end()
    t1 = B.time.time()
    B.time.sleep(0.5)  # let the last messages arrive
    v.stop()
    msgs = [(rt, m) for rt, m in sub.messages() if t0 <= rt <= t1]
    lat = [m["latency_ms"] for _, m in msgs if "latency_ms" in m]
    inf = [m["inference_ms"] for _, m in msgs if "inference_ms" in m and m.get("detector_ran", True)]
    deliv = [1e3 * (rt - B.iso_to_epoch(m["captured_at"])) for rt, m in msgs if "captured_at" in m]
    res = {
        "streams": n, "fps": fps, "window_s": t1 - t0, "messages": len(msgs),
        "results_per_cam_s": len(msgs) / (n * (t1 - t0)),
        "latency_ms_p50": B.percentile(lat, 50), "latency_ms_p95": B.percentile(lat, 95),
        "delivery_ms_p50": B.percentile(deliv, 50), "delivery_ms_p95": B.percentile(deliv, 95),
        "inference_ms_p50": B.percentile(inf, 50),
        "cpu_cores": cw.cpu_s / cw.seconds,
        "core_s_per_cam_s": cw.cpu_s / (n * cw.seconds), "threads": threads,
    }
    B.log(f"e2e: {n} streams at {fps} fps, {len(msgs)} messages in {t1 - t0:.0f} s "
          f"({res['results_per_cam_s']:.2f}/s/camera); latency_ms p50 "
          f"{B.fmt(res['latency_ms_p50'], '.1f')} p95 {B.fmt(res['latency_ms_p95'], '.1f')}; "
          f"delivered p50 {B.fmt(res['delivery_ms_p50'], '.1f')} p95 "
          f"{B.fmt(res['delivery_ms_p95'], '.1f')}; inference_ms p50 {B.fmt(res['inference_ms_p50'], '.1f')}")
    B.log("  threads (core-s over the window): " +
          ", ".join(f"{k}={val:.2f}" for k, val in threads.items() if val > 0))
    return res


def bench(run, args):
    B.log(f"## executor: load {B.machine_load()}")
    res = {"micro": micro(args)}
    res["e2e"] = e2e(run, args)
    r = res["micro"]["ratio_cpu_min"]
    res["targets"] = {"executor / bare loop <= 1.10": (r, B.verdict(r, 1.10))}
    B.log(f"executor ratio line: pool/bare {r:.3f} (target <= 1.10, "
          f"{res['targets']['executor / bare loop <= 1.10'][1]}); e2e p50/p95 "
          f"{B.fmt(res['e2e']['latency_ms_p50'], '.0f')}/{B.fmt(res['e2e']['latency_ms_p95'], '.0f')} ms")
    return res


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer, shorter rounds (~45 s)")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--round-s", type=float)
    ap.add_argument("--e2e-streams", type=int, default=8)
    ap.add_argument("--window", type=float)
    ap.add_argument("--warmup", type=float)
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    a.rounds = a.rounds or (3 if a.quick else 8)
    a.round_s = a.round_s or (1.0 if a.quick else 1.5)
    a.window = a.window or (10 if a.quick else 30)
    a.warmup = a.warmup or (3 if a.quick else 6)
    return a


def main(argv=None):
    args = parse(argv)
    return B.bench_main("executor", bench, args)


if __name__ == "__main__":
    main()
