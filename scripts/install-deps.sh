#!/bin/sh
# Install every Debian package that building, testing and demoing vigil needs: tests
# that need a tool fail when it is missing (VIGIL_ALLOW_SKIP=1 lets them skip).
# Idempotent: installs only what is missing, so running it twice is cheap.
set -eu

PKGS="build-essential cmake pkg-config clang libclang-rt-14-dev
libevent-dev libmicrohttpd-dev libjansson-dev libyaml-dev libcmocka-dev
libavcodec-dev libavformat-dev libswscale-dev libavutil-dev libopencv-dev
libmosquitto-dev libssl-dev mosquitto mosquitto-clients libsystemd-dev
ffmpeg libgstrtspserver-1.0-dev gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
gstreamer1.0-plugins-base gstreamer1.0-tools
prometheus python3-opencv python3-onnx python3-numpy python3-yaml curl jq procps iproute2
systemd chromium nodejs clang-format"
# the web test installs playwright-core with npm; a Node.js that brings its own npm
# (NodeSource's nodejs) conflicts with Debian's npm package, so that one only when needed
command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
