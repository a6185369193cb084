#!/usr/bin/env bash
# Installs the build tree into a scratch prefix, then builds and runs a consumer
# through find_package(gort) and through pkg-config.
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
cmake -S "$src" -B "$tmp/cm" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/cm" >/dev/null
"$tmp/cm/consumer"
flags=$(PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig" pkg-config --cflags --libs --static gort)
g++ -std=c++20 "$src/consumer.cpp" -o "$tmp/pc-consumer" $flags
"$tmp/pc-consumer"
