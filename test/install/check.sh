#!/usr/bin/env bash
# Installs the build tree into a scratch prefix, then builds a consumer through
# find_package(gort), through plain `pkg-config --cflags --libs gort` and through
# `pkg-config --static`, each with plain release flags and nothing else. Each
# build runs the ordinary consumer and the overflow case, which must die with
# the guard page's report: the package's own flags are what make guards work.
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null

# run_step NAME CMD...: runs CMD with its output in a log, shown (its start) on failure.
run_step() {
  local name=$1
  shift
  if ! "$@" >"$tmp/$name.log" 2>&1; then
    echo "FAIL $name: $*" >&2
    head -n 20 "$tmp/$name.log" >&2
    return 1
  fi
}

# check_overflow NAME EXE: EXE must exit 2 with Go's overflow report.
check_overflow() {
  local status=0
  "$2" >"$tmp/$1.out" 2>"$tmp/$1.err" || status=$?
  if [[ $status -ne 2 ]] || ! grep -q 'fatal error: stack overflow' "$tmp/$1.err"; then
    echo "FAIL $1: exit $status, expected 2 and 'fatal error: stack overflow'" >&2
    cat "$tmp/$1.out" >&2
    head -n 20 "$tmp/$1.err" >&2
    return 1
  fi
  echo "ok $1: exit 2, fatal error: stack overflow"
}

# Each way is checked even if an earlier one failed, so one run shows them all.
failed=0
find_package_way() {
  run_step cmake-configure cmake -S "$src" -B "$tmp/cm" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
    run_step cmake-build cmake --build "$tmp/cm" -j2 &&
    "$tmp/cm/consumer" &&
    check_overflow find_package "$tmp/cm/overflow"
}
find_package_way || failed=1

export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
pkg_config_way() {
  local mode=$1 pcflags
  pcflags=$(pkg-config --cflags --libs $([[ $mode == static ]] && echo --static) gort) || return 1
  # -O2 -g -DNDEBUG is what CMake's RelWithDebInfo gives: a user's own build.
  for exe in consumer overflow; do
    run_step "pkg-config-$mode-$exe-build" \
      g++ -std=c++20 -O2 -g -DNDEBUG "$src/$exe.cpp" -o "$tmp/pc-$mode-$exe" $pcflags || return 1
  done
  "$tmp/pc-$mode-consumer" &&
    check_overflow "pkg-config-$mode" "$tmp/pc-$mode-overflow"
}
for mode in plain static; do
  pkg_config_way $mode || failed=1
done
exit $failed
