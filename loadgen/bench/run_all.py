#!/usr/bin/python3
"""run_all.py — runs the three benchmarks (capture, executor, side by side) one after
another and writes a Markdown report: loadgen/RESULTS.md for a full run (< 20 min on
2 cores), build/bench-results/RESULTS-quick.md for --quick (< 3 min). The report
carries the exact command, the date and the machine; the ratio line is printed last.

  /usr/bin/python3 loadgen/bench/run_all.py            # full
  /usr/bin/python3 loadgen/bench/run_all.py --quick    # quick
  ... --only capture,executor                          # a subset
A hand-written loadgen/bench/FINDINGS.md, when present, is appended to the report (it
says which run it was written for).
"""
import argparse
import os
import platform
import shlex
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402
import bench_capture  # noqa: E402
import bench_executor  # noqa: E402
import bench_side_by_side  # noqa: E402

BENCHES = [("capture", bench_capture), ("executor", bench_executor),
           ("side", bench_side_by_side)]


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    ff = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    cv = subprocess.run([B.PY, "-c", "import cv2; print(cv2.__version__)"], capture_output=True,
                        text=True).stdout.strip()
    git = subprocess.run(["git", "-C", B.SRC, "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    return (f"{B.NCPU} cores ({cpu}), Linux {platform.release()}, {ff}, "
            f"python3-opencv {cv}, vigil {git}")


def thread_lines(threads):
    return ", ".join(f"{k} {v:.2f}" for k, v in threads.items() if v >= 0.01) or "-"


def capture_md(r):
    rows = []
    for x in [r["vigil1"], r["vigil5"]] + r["views"]:
        rows.append([x["label"], x["streams"], f"{x['core_s_per_cam_s']:.4f}",
                     f"{x['net_core_s_per_cam_s']:.4f}", B.fmt(x["ratio_ffmpeg"], ".3f"),
                     B.fmt(x["ratio_ffmpeg_keyframes"], ".3f"), f"{x['mib_per_stream']:.2f}",
                     f"{x['decoded_per_cam_s']:.2f} / {x['sampled_per_cam_s']:.2f}"])
    for x in (r["ffmpeg"], r["ffmpeg_keyframes"]):
        rows.append([x["label"], x["streams"], f"{x['core_s_per_cam_s']:.4f}", "", "", "",
                     f"{x['rss_kb_per_process'] / 1024:.1f} (RSS per process)", ""])
    nz = r.get("noisy")
    if nz:
        x = nz["vigil1"]
        rows.append([f"{x['label']} (noisy clip)", x["streams"], f"{x['core_s_per_cam_s']:.4f}",
                     "", B.fmt(x["ratio_ffmpeg"], ".3f"), B.fmt(x["ratio_ffmpeg_keyframes"], ".3f"),
                     "", f"{x['decoded_per_cam_s']:.2f} / {x['sampled_per_cam_s']:.2f}"])
        for y in (nz["ffmpeg"], nz["ffmpeg_keyframes"]):
            rows.append([f"{y['label']} (noisy clip)", y["streams"], f"{y['core_s_per_cam_s']:.4f}",
                         "", "", "", "", ""])
    t = B.table(["phase", "streams", "core-s / camera-s", "net of idle", "/ ffmpeg",
                 "/ ffmpeg keyframes", "MiB / stream", "decoded / sampled per cam-s"], rows)
    idle = r["idle"]
    thr = "\n".join(f"- {x['label']}: {thread_lines(x['threads'])}; camsim + neighbours "
                    f"{x.get('others_cores', 0):.2f} cores"
                    for x in [r["vigil1"], r["vigil5"]] + r["views"])
    share = r.get("keyframe_byte_share")
    return (f"{t}\n\nIdle vigild (no streams): {r['idle_cores']:.4f} cores "
            f"({thread_lines(idle['threads'])}), RSS {idle['rss_kb'] / 1024:.1f} MiB. "
            f"Keyframes are {100 * share:.0f} % of the clip's bytes"
            + (f" ({100 * nz['keyframe_byte_share']:.0f} % in the noisy clip)" if nz else "")
            + ".\n\n"
            f"CPU by thread over each {r['window_s']:.0f} s window (core-seconds):\n{thr}\n")


def executor_md(r):
    m, e = r["micro"], r["e2e"]
    rps = m["results_per_s"]
    t = B.table(["measure", "bare loop", "executor pool", "pool / bare"], [
        ["CPU ms per result, 1 thread (min of rounds)", f"{min(m['bare_cpu_ms']):.3f}",
         f"{min(m['pool_cpu_ms']):.3f}", f"{m['ratio_cpu_min']:.3f}"],
        ["CPU ms per result, 1 thread (median of rounds)",
         f"{sorted(m['bare_cpu_ms'])[len(m['bare_cpu_ms']) // 2]:.3f}",
         f"{sorted(m['pool_cpu_ms'])[len(m['pool_cpu_ms']) // 2]:.3f}",
         f"{m['ratio_cpu_median']:.3f}"],
        ["paired rounds, median of pool/bare", "", "", f"{m['ratio_cpu_paired_median']:.3f}"],
        ["wall ms per result, 1 thread (min)", f"{min(m['bare_wall_ms']):.3f}",
         f"{min(m['pool_wall_ms']):.3f}", f"{m['ratio_wall_min']:.3f}"],
        ["results/s, 1 thread (best round; last column bare/pool)", f"{rps['bare_1']:.1f}",
         f"{rps['pool_1']:.1f}",
         B.fmt(B.ratio(rps["bare_1"], rps["pool_1"]), ".3f")],
        ["results/s, 2 threads (best round; last column bare/pool)", B.fmt(rps["bare_2"], ".1f"),
         B.fmt(rps["pool_2"], ".1f"),
         B.fmt(B.ratio(rps["bare_2"], rps["pool_2"]), ".3f")],
    ])
    t2 = B.table(["vigild, 8 camsim streams at 1 fps, MQTT", "p50", "p95"], [
        ["latency_ms (capture -> result, from the messages)", B.fmt(e["latency_ms_p50"], ".1f"),
         B.fmt(e["latency_ms_p95"], ".1f")],
        ["delivery (subscriber receipt - captured_at)", B.fmt(e["delivery_ms_p50"], ".1f"),
         B.fmt(e["delivery_ms_p95"], ".1f")],
        ["inference_ms", B.fmt(e["inference_ms_p50"], ".1f"), ""],
    ])
    return (f"{m['rounds']} alternating rounds of {m['round_s']:g} s each. \n\n{t}\n\n{t2}\n\n"
            f"{e['messages']} messages in {e['window_s']:.0f} s ({e['results_per_cam_s']:.2f} per "
            f"camera-second); vigild {e['cpu_cores']:.2f} cores "
            f"({e['core_s_per_cam_s']:.4f} core-s per camera-second): "
            f"{thread_lines(e['threads'])}.\n")


def side_md(r):
    fl = r["floor"]
    out = [f"Floor, measured once in this run: forward pass {1e3 * fl['forward_cpu_s']:.2f} ms CPU "
           f"(median of rounds; min {1e3 * fl['forward_cpu_s_min']:.2f}); decode-only "
           f"{fl['decode_full']:.4f} core-s per camera-second (all frames), "
           f"{fl['decode_key']:.4f} (keyframes only), {fl['decoders']} concurrent decoders, "
           f"{fl['decoder_rss_kb'] / 1024:.1f} MiB RSS each. The cameras send "
           f"{r.get('size', '1280x720')} H.264, a keyframe every {r.get('gop_s', 1)} s, sensor "
           f"noise {r.get('noise', 0)}; their picture moves "
           f"{r.get('activity_s', 10)} s of every 10 (the rest of the time the room is "
           f"still).\n",
           bench_side_by_side.side_table(r), ""]
    out.append("vigild CPU by thread (core-seconds over the window):")
    for v in [x for row in r["rows"] for x in (row["vigil"], row.get("ungated")) if x]:
        out.append(f"- {v['label']}: {thread_lines(v['threads'])}; neighbours "
                   f"{v.get('others_cores', 0):.2f} cores; delivery p50/p95 "
                   f"{B.fmt(v['delivery_p50_ms'], '.0f')}/{B.fmt(v['delivery_p95_ms'], '.0f')} ms; "
                   f"camsim+mosquitto {v['side_cores']:.2f} cores")
    for e in r.get("extra", []):
        out += ["", f"### {e['size']}, GOP {e['gop_s']} s ({e['rows'][0]['n']} cameras at 1 fps, "
                f"own clip and floor: "
                f"forward {1e3 * e['floor']['forward_cpu_s']:.2f} ms, decode "
                f"{e['floor']['decode_full']:.4f} / keyframes {e['floor']['decode_key']:.4f} "
                f"core-s per camera-second)", "", bench_side_by_side.side_table(e)]
    if r["capacity_steps"]:
        out += ["", f"Capacity search (1 fps, {r['cap_window_s']:.0f} s window per step after "
                f"{r['warmup_s']:.0f} s warm-up; sizes in the table reuse its runs; stops after two "
                f"failures in a row): most cameras passing = **{r['capacity']}**", "",
                bench_side_by_side.capacity_table(r)]
        for s in r["capacity_steps"]:
            out.append(f"- N={s['n']}: {thread_lines(s['threads'])}")
    return "\n".join(out) + "\n"


def ratio_line(results):
    parts = []
    c = results.get("capture")
    if c:
        parts.append(f"capture@1fps/ffmpeg {B.fmt(c['vigil1']['ratio_ffmpeg'], '.3f')} (<=0.25), "
                     f"capture@5fps/ffmpeg {B.fmt(c['vigil5']['ratio_ffmpeg'], '.3f')} (<=1.10), "
                     f"MiB/stream {max(c['vigil1']['mib_per_stream'], c['vigil5']['mib_per_stream']):.1f} (<=12)")
    e = results.get("executor")
    if e:
        parts.append(f"executor/bare {e['micro']['ratio_cpu_min']:.3f} (<=1.10)")
    s = results.get("side")
    if s:
        for row in s["rows"]:
            parts.append(f"{row['n']}x{row['fps']:g}fps vigil/baseline {B.fmt(row['vs_baseline'], '.3f')} "
                         f"(<=0.25) vigil/bare {B.fmt(row['vs_bare'], '.3f')} (<=1.15) gate-off/"
                         f"baseline {B.fmt(row.get('ungated_vs_baseline'), '.3f')}")
        for e in s.get("extra", []):
            for row in e["rows"]:
                parts.append(f"{e['size']} GOP {e['gop_s']}s {row['n']}x{row['fps']:g}fps "
                             f"vigil/baseline {B.fmt(row['vs_baseline'], '.3f')}")
        for name, (value, verdict) in s.get("targets", {}).items():
            if name.startswith("cost at GOP"):
                parts.append(f"{name.split(' <=')[0]} {B.fmt(value, '.3f')} (<=1.15)")
        if s["capacity_steps"]:
            parts.append(f"capacity {s['capacity']} cameras@1fps (>=100)")
    return "RATIOS: " + "; ".join(parts)


def header(args, started, elapsed, cmd):
    return [f"# vigil benchmark results{' (quick mode)' if args.quick else ''}", "",
            f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z', time.localtime(started))}",
            f"- command: `{cmd}` (from the repository root, after "
            "`cmake -S . -B build -DVIGIL_WERROR=ON && cmake --build build -j2`)",
            f"- machine: {machine()}",
            f"- load average at start / end: {args.load0} / {B.machine_load()} (shared machine: "
            "absolute times move with the neighbours' load, the ratios much less)",
            f"- wall time: {elapsed / 60:.1f} min", ""]


def report(args, results, errors, head):
    md = list(head)
    targets = []
    for name, r in results.items():
        for k, (val, verdict) in r.get("targets", {}).items():
            targets.append([name, k, B.fmt(val, ".3f") if isinstance(val, float) else val,
                            verdict])
    md += ["## Targets", "", B.table(["benchmark", "target", "measured", "verdict"], targets), ""]
    if "capture" in results:
        md += ["## 1. Capture (bench_capture.py)", "", capture_md(results["capture"])]
    if "executor" in results:
        md += ["## 2. Executor (bench_executor.py)", "", executor_md(results["executor"])]
    if "side" in results:
        md += ["## 3. Side by side (bench_side_by_side.py)", "", side_md(results["side"])]
    for name, err in errors.items():
        md += [f"## {name}: FAILED", "", "```", err.strip(), "```", ""]
    findings = os.path.join(B.HERE, "FINDINGS.md")
    if not args.quick and os.path.exists(findings):
        with open(findings) as f:
            md += [f.read().strip(), ""]
    md += ["## Ratio line", "", "```", ratio_line(results), "```", ""]
    return "\n".join(md)


def rerender(args):
    out = args.out or (os.path.join(B.BUILD, "bench-results", "RESULTS-quick.md") if args.quick
                       else os.path.join(B.SRC, "loadgen", "RESULTS.md"))
    with open(out) as f:
        old = f.read().split("\n")
    head = old[:next(i for i, line in enumerate(old) if line.startswith("## "))]
    with open(os.path.splitext(out)[0] + ".json") as f:
        import json
        results = json.load(f)
    with open(out, "w") as f:
        f.write(report(args, results, {}, head))
    B.log(f"# report re-rendered: {out}")
    B.log(ratio_line(results))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", help="comma-separated subset of capture,executor,side")
    ap.add_argument("--out", help="report file (default loadgen/RESULTS.md, or "
                    "build/bench-results/RESULTS-quick.md with --quick)")
    ap.add_argument("--rerender", action="store_true",
                    help="measure nothing: rebuild the report from its .json, keeping the "
                    "report's header (date, command, machine), e.g. after editing FINDINGS.md")
    args = ap.parse_args()
    if args.rerender:
        return rerender(args)
    B.require_built()
    cmd = "/usr/bin/python3 loadgen/bench/run_all.py" + "".join(
        " " + shlex.quote(a) for a in sys.argv[1:])
    out = args.out or (os.path.join(B.BUILD, "bench-results", "RESULTS-quick.md") if args.quick
                       else os.path.join(B.SRC, "loadgen", "RESULTS.md"))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    only = set(args.only.split(",")) if args.only else None
    args.load0 = B.machine_load()
    started = time.time()
    results, errors = {}, {}
    for name, mod in BENCHES:
        if only and name not in only:
            continue
        t0 = time.time()
        try:
            results[name] = mod.main(["--quick"] if args.quick else [])
        except Exception:  # one broken benchmark must not hide the others' figures
            errors[name] = traceback.format_exc()
            B.log(f"# {name} failed:\n{errors[name]}")
        B.log(f"# {name}: {time.time() - t0:.0f} s")
    elapsed = time.time() - started
    text = report(args, results, errors, header(args, started, elapsed, cmd))
    with open(out, "w") as f:
        f.write(text)
    B.save_json(os.path.splitext(out)[0] + ".json", results)
    B.log(f"# report: {out} ({elapsed / 60:.1f} min)")
    B.log(ratio_line(results))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
