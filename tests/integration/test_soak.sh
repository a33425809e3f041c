#!/usr/bin/env bash
# A very short soak (4 cameras, 1 minute of chaos) so the suite exercises loadgen/soak:
# camera faults, a broker restart and a command storm against the real daemon, then
# the soak's own checks (acks, streams, rates, inference flow, memory, descriptors,
# threads, SIGTERM). The report stays in the build folder; on failure the soak's work
# folder (logs) is kept and named in its output. The long runs are in README.md.
. "$(dirname "$0")/lib.sh"

REPORT=$BUILD/artifacts/soak-ctest.json
rc=0
"$SRC/loadgen/soak" --build "$BUILD" --shared "$SHARED" --cameras 4 --minutes 1 \
    --seed "${SOAK_SEED:-7}" --report "$REPORT" --workdir "$T/soak" --keep || rc=$?
[ -s "$REPORT" ] || fail "no soak report"
jq -e '.checks | length > 10' "$REPORT" >/dev/null || fail "report without checks"
jq -r '.checks[] | select(.ok | not) | "check failed: \(.name): \(.value | tostring | .[0:300])"' "$REPORT" >&2
jq -r '.figures.acks.failures[:5][] | "  \(.)"' "$REPORT" >&2
[ "$rc" = 0 ] || fail "soak failed (rc=$rc); report $REPORT"
pass "soak (4 cameras, 1 minute)"
