#!/bin/sh
# Fuzzes one target for a given time: tests/fuzz/run.sh BUILD_DIR TARGET SECONDS
# BUILD_DIR must be configured with CC=clang -DNETPULSE_FUZZ=ON.
set -eu
build=${1:?build dir}
target=${2:?target, e.g. wire}
seconds=${3:-60}
top=$(cd "$(dirname "$0")/../.." && pwd)
bin="$build/tests/fuzz/fuzz_$target"
[ -x "$bin" ] || { echo "fuzz: $bin not built (CC=clang cmake -DNETPULSE_FUZZ=ON)" >&2; exit 2; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/corpus" "$scratch/artifacts"
cp "$top/tests/fuzz/corpus/$target/"* "$scratch/corpus/" 2>/dev/null || true
rc=0
"$bin" -max_total_time="$seconds" -artifact_prefix="$scratch/artifacts/" \
    "$scratch/corpus" || rc=$?
for f in "$scratch"/artifacts/*; do
    [ -e "$f" ] || continue
    cp "$f" "$top/tests/fuzz/corpus/$target/"
    echo "fuzz: finding saved as tests/fuzz/corpus/$target/$(basename "$f")" >&2
done
exit $rc
