#!/usr/bin/env bash
# Bounded libFuzzer run of every fuzz target: //ipc/fuzz (ipc/fuzz/README.md)
# and the ELF loader (services/syscall-router/loader/README.md).
#
#   scripts/fuzz.sh [SECONDS]      SECONDS per target (default 60)
#
# Builds the targets with clang (`--config=fuzz`) in a Bazel output base of its
# own, so the compiler switch never invalidates the main (g++) build cache and
# never waits on it. Each target runs on a temporary copy of its checked-in
# seed corpus (ipc/fuzz/corpus/<target>/ is never grown by a run).
#
# Exit status: 0 when every target ran clean (or when clang's libFuzzer
# runtime is missing: then it prints "skipped"), 1 on a crash, leak, timeout,
# out-of-memory or build failure; the input that triggered it is saved and
# its path printed.
#
# Environment:
#   BULKHEAD_FUZZ_OUTPUT_BASE   Bazel output base for the clang build
#                               (default ~/.cache/bulkhead-fuzz)
#   BULKHEAD_FUZZ_ARTIFACTS     where crash inputs go (default /tmp/bulkhead-fuzz-artifacts)
#   BULKHEAD_FUZZ_TARGETS       space-separated subset (default: all, e.g. "ring_decoder capnp_decode")
#   BULKHEAD_FUZZ_ALLOW_READ_ERRORS=1   count, do not crash on, reads that throw
#                               after a successful ipc::Decoded<T> (a known bug class)
set -uo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "usage: $0 [SECONDS]   (a positive number of seconds per target)" >&2
  exit 2
fi
targets=(${BULKHEAD_FUZZ_TARGETS:-ring_decoder capnp_decode mem_broker checkpoint gofer elf})
# Where each target lives: its Bazel package and its checked-in seed corpus.
pkg_of() { case "$1" in elf) echo services/syscall-router/loader ;; *) echo ipc/fuzz ;; esac; }

# ---- clang and its libFuzzer/ASan runtimes (Debian: clang + libclang-rt-14-dev)
if ! command -v clang >/dev/null 2>&1; then
  echo "fuzz: skipped: clang is not installed (apt-get install clang libclang-rt-14-dev)"
  exit 0
fi
rtdir="$(clang -print-resource-dir 2>/dev/null)/lib/linux"
missing=()
for lib in libclang_rt.fuzzer-x86_64.a libclang_rt.asan-x86_64.a libclang_rt.ubsan_standalone-x86_64.a; do
  [ -f "$rtdir/$lib" ] || missing+=("$lib")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "fuzz: skipped: clang's sanitizer runtime is missing (${missing[*]} not in $rtdir);" \
       "install libclang-rt-14-dev"
  exit 0
fi

out_base="${BULKHEAD_FUZZ_OUTPUT_BASE:-$HOME/.cache/bulkhead-fuzz}"
artifacts="${BULKHEAD_FUZZ_ARTIFACTS:-/tmp/bulkhead-fuzz-artifacts}"
bazel_fuzz=(bazel "--output_base=$out_base" --max_idle_secs=600)
work="$(mktemp -d "${TMPDIR:-/tmp}/bulkhead-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# ---- build
# --experimental_convenience_symlinks=ignore: bazel-bin, bazel-testlogs, ... of
# the workspace keep pointing at the main output base (scripts/test.sh and
# everybody else read them).
echo "fuzz: building the fuzz targets with clang (--config=fuzz, output base $out_base)" >&2
bins=()
for t in "${targets[@]}"; do bins+=("//$(pkg_of "$t"):${t}_fuzz"); done
if ! "${bazel_fuzz[@]}" build --config=fuzz --experimental_convenience_symlinks=ignore "${bins[@]}" >"$work/build.log" 2>&1; then
  grep -v 'linux-sandbox' "$work/build.log" | tail -40 >&2
  echo "fuzz: FAILED: the clang build of the fuzz targets failed (log above)"
  exit 1
fi
bin_root="$("${bazel_fuzz[@]}" info --config=fuzz bazel-bin 2>/dev/null)"

# ---- run
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
failed=0
for t in "${targets[@]}"; do
  bin="$bin_root/$(pkg_of "$t")/${t}_fuzz"
  corpus="$work/corpus-$t"
  mkdir -p "$corpus" "$artifacts/$t"
  cp "$(pkg_of "$t")"/corpus/"$t"/* "$corpus"/ 2>/dev/null || true
  log="$artifacts/$t/last-run.log"
  echo "fuzz: running ${t}_fuzz for ${seconds}s (corpus: $(ls "$corpus" | wc -l) seeds)" >&2
  # -timeout: one input over 10 s is a hang; the outer timeout guards libFuzzer itself.
  timeout --kill-after=30 $((seconds + 300)) "$bin" "$corpus" \
      -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10 \
      -max_len=4096 -print_final_stats=1 -artifact_prefix="$artifacts/$t/" >"$log" 2>&1
  rc=$?
  done_line="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1)"
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
  cov="$(echo "$done_line" | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [^ ]+')"
  if [ "$rc" -eq 0 ]; then
    echo "fuzz: ${t}_fuzz: ok, ${runs:-?} runs, ${rate:-?} exec/s, ${cov:-no coverage line}"
  else
    failed=1
    echo "fuzz: ${t}_fuzz: FAILED (exit $rc) after ${runs:-?} runs; log: $log"
    grep -A1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer)|runtime error|FUZZ:|SUMMARY' "$log" | head -12
    saved="$(sed -n "s/.*Test unit written to \(.*\)$/\1/p" "$log")"
    if [ -n "$saved" ]; then
      echo "fuzz: the input that triggered it was saved to: $saved"
      echo "fuzz: reproduce: $bin $saved   (or without clang: bazel build //$(pkg_of "$t"):${t}_fuzz_replay_test &&" \
           "bazel-bin/$(pkg_of "$t")/${t}_fuzz_replay_test $saved)"
    else
      echo "fuzz: no crash input was written (see the log)"
    fi
  fi
done
exit $failed
