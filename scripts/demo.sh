#!/bin/sh
# The demo: installs what is missing, builds, then runs vigild on config/vigil.yaml
# until Ctrl-C. Later steps add the broker and simulated cameras.
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc)"
echo "vigild: http://127.0.0.1:8080/metrics  (Ctrl-C stops)"
exec build/vigild -c config/vigil.yaml
