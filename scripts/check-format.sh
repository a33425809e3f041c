#!/bin/sh
# Fails when clang-format would change a tracked C/C++ file (the root .clang-format, with
# Debian's clang-format 14 so every machine formats alike). Lists the files and shows
# the first file's changes; `clang-format -i FILE...` applies them.
#   CLANG_FORMAT  the binary (default: clang-format-14, else clang-format)
set -eu
cd "$(dirname "$0")/.."
CF=${CLANG_FORMAT:-}
if [ -z "$CF" ]; then
    CF=clang-format
    command -v clang-format-14 >/dev/null 2>&1 && CF=clang-format-14
fi
command -v "$CF" >/dev/null 2>&1 ||
    { echo "check-format: $CF is missing: scripts/install-deps.sh installs it" >&2; exit 1; }
"$CF" --version | grep -q 'version 14\.' ||
    { echo "check-format: want clang-format 14, got: $("$CF" --version)" >&2; exit 1; }
[ -f .clang-format ] || { echo "check-format: no .clang-format at the root" >&2; exit 1; }

files=$(git ls-files '*.c' '*.h' '*.cc' '*.cpp' '*.hpp')
bad=""
for f in $files; do
    if ! "$CF" --style=file "$f" | cmp -s - "$f"; then
        [ -n "$bad" ] || "$CF" --style=file "$f" | diff -u "$f" - | head -n 30 >&2 || true
        bad="$bad $f"
    fi
done
if [ -n "$bad" ]; then
    n=$(echo "$bad" | wc -w)
    echo "check-format: clang-format would change $n file(s):$bad" >&2
    echo "check-format: run: $CF -i$bad" >&2
    exit 1
fi
echo "check-format: $(echo "$files" | wc -w) C/C++ files formatted"
