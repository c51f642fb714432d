#!/bin/bash
# Smoke test of start_bench: flags are checked, and two bulkhead runs print
# a well-formed TSV line. No timing is asserted (bench/RESULTS.md judges).
set -u
bench="${1:?usage: start_bench_test.sh PATH_TO_START_BENCH}"
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
"$bench" --no-such-flag >/dev/null 2>&1; [ $? -eq 2 ] || fail "unknown flag: want exit 2"
"$bench" --runs 0 >/dev/null 2>&1; [ $? -eq 2 ] || fail "--runs 0: want exit 2"
"$bench" --contenders nobody >/dev/null 2>&1; [ $? -eq 2 ] || fail "--contenders nobody: want exit 2"
out=$("$bench" --format=tsv --runs 2 --contenders bulkhead) || fail "start_bench failed"
echo "$out" | grep -qE '^run_true	bulkhead	[0-9]+\.[0-9]+	ms$' || fail "no bulkhead figure in: $out"
[ "$failures" -eq 0 ] && echo "start_bench smoke test: ok"
exit "$failures"
