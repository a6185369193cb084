#!/usr/bin/env bash
# Build every Go peer benchmark (each directory bench/peers/go/<name>/ is
# one program) into OUTDIR as OUTDIR/<name>.
#
# Usage: bench/peers/go/build.sh [OUTDIR]    (default: bench/peers/go/bin)
#
# Offline by construction: the module uses only the standard library and
# GOPROXY=off makes any attempt to fetch a module fail instead of hang.
# GOTOOLCHAIN=local stops Go >= 1.21 from downloading a newer toolchain
# (Go 1.19 ignores it).
set -euo pipefail

if ! command -v go >/dev/null 2>&1; then
    echo "build.sh: 'go' not found in PATH; install the Debian package golang-go" >&2
    exit 1
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:-$here/bin}

mkdir -p "$out"
out=$(cd "$out" && pwd) # absolute: we build from $here

export GOPROXY=off GOTOOLCHAIN=local GO111MODULE=on
# As root in CI there may be no HOME, hence no default build cache; keep
# the cache next to the binaries unless the caller chose one.
export GOCACHE=${GOCACHE:-$out/.gocache}

cd "$here"
built=0
for dir in */; do
    dir=${dir%/}
    compgen -G "$dir/*.go" >/dev/null || continue # e.g. bin/
    go build -trimpath -o "$out/$dir" "./$dir"
    built=$((built + 1))
done
echo "build.sh: built $built Go peer program(s) into $out"
