#!/usr/bin/env bash
# Keeps the benchmarks from rotting: the executor benchmark's quick mode, trimmed to
# well under a minute (2 short alternating rounds; 8 camsim streams through vigild,
# MQTT and mosquitto_sub for 4 s). Checks that it ran end to end and that its figures
# are sane, not that targets are met (that is loadgen/RESULTS.md's job).
. "$(dirname "$0")/lib.sh"

[ -x "$BUILD/vigil-bench-executor" ] || fail "vigil-bench-executor not built"
TMPDIR=$T VIGIL_SHARED_DIR=$SHARED VIGIL_BUILD_DIR=$BUILD VIGIL_SOURCE_DIR=$SRC \
    timeout 55 "$PY" "$SRC/loadgen/bench/bench_executor.py" --quick --rounds 2 --round-s 0.5 \
    --window 4 --warmup 1 --json "$T/executor.json" >"$T/bench.log" 2>&1 ||
    fail "bench_executor.py failed: $(tail -n 20 "$T/bench.log")"
tail -n 1 "$T/bench.log" | grep -q '^executor ratio line: pool/bare [0-9.]*' ||
    fail "no ratio line: $(tail -n 3 "$T/bench.log")"
jq -e '.micro.ratio_cpu_min > 0.5 and .micro.ratio_cpu_min < 3 and
       .micro.results_per_s.pool_1 > 0 and .micro.results_per_s.pool_2 > 0' \
    "$T/executor.json" >/dev/null || fail "implausible micro figures: $(jq -c .micro "$T/executor.json")"
jq -e '.e2e.messages > 0 and .e2e.latency_ms_p50 > 0 and .e2e.latency_ms_p95 >= .e2e.latency_ms_p50' \
    "$T/executor.json" >/dev/null || fail "no end-to-end results: $(jq -c '.e2e | del(.threads)' "$T/executor.json")"
# the harness stops what it started and removes its scratch folder
! ls -d "$T"/vigil-bench-* >/dev/null 2>&1 || fail "benchmark left its scratch folder behind"
grep '^executor ratio line' "$T/bench.log"
pass "bench smoke"
