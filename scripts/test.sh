#!/bin/sh
# Runs the whole test suite on a fresh Debian machine: installs what is missing,
# builds from scratch-or-incrementally, runs ctest (unit + integration).
#   BUILD_DIR   build folder (default: build)
#   CMAKE_ARGS  extra cmake arguments, e.g. -DVIGIL_SANITIZE=ON
#   CTEST_ARGS  extra ctest arguments, e.g. -L unit
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
BUILD_DIR=${BUILD_DIR:-build}
# shellcheck disable=SC2086
cmake -S . -B "$BUILD_DIR" -DVIGIL_WERROR=ON ${CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
cd "$BUILD_DIR"
# shellcheck disable=SC2086
ctest --output-on-failure --timeout 600 ${CTEST_ARGS:-}
