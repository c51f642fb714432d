#!/bin/bash
# Smoke test of mem_bench: flags are checked, and a short run natively and
# under bulkhead prints every figure as a well-formed TSV line. It asserts no
# timing at all: the targets are judged in bench/RESULTS.md, not here.
set -u

bench="${1:?usage: mem_bench_test.sh PATH_TO_MEM_BENCH}"
tmp="${TEST_TMPDIR:-$(mktemp -d)}"
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

"$bench" --help >"$tmp/help" 2>&1 || fail "--help did not exit 0"
grep -q -- '--contenders' "$tmp/help" || fail "--help does not describe --contenders"
"$bench" --no-such-flag >/dev/null 2>"$tmp/err"
rc=$?
[ "$rc" -eq 2 ] || fail "unknown flag: exit $rc, want 2"
grep -q "unknown flag" "$tmp/err" || fail "unknown flag: no clear message: $(cat "$tmp/err")"
"$bench" --rounds 0 >/dev/null 2>&1
rc=$?
[ "$rc" -eq 2 ] || fail "--rounds 0: exit $rc, want 2"
"$bench" --contenders nobody >/dev/null 2>&1
rc=$?
[ "$rc" -eq 2 ] || fail "--contenders nobody: exit $rc, want 2"

if ! "$bench" --format=tsv --rounds 1 --iterations 100 --contenders native,bulkhead >"$tmp/out.tsv" 2>"$tmp/err"; then
  cat "$tmp/err" >&2
  fail "mem_bench --format=tsv failed"
fi
bad=$(awk -F'\t' '
  NF != 4 || $1 == "" || $2 == "" || $4 == "" { print "line " NR ": want 4 fields: " $0; next }
  $3 !~ /^-?[0-9]+(\.[0-9]+)?$/ { print "line " NR ": not a number: " $0 }
' "$tmp/out.tsv")
[ -z "$bad" ] || fail "malformed output:
$bad"
grep -q "left out" "$tmp/err" && fail "a contender was left out: $(cat "$tmp/err")"
for f in mmap_touch_munmap_4k touch_per_page brk_grow_64k fork_exit_200m cow_write_per_page; do
  for c in native bulkhead; do
    n=$(awk -F'\t' -v f="$f" -v c="$c" '$1 == f && $2 == c && $4 == "us" && $3 + 0 > 0' "$tmp/out.tsv" | wc -l)
    [ "$n" -eq 1 ] || fail "want one positive $f line for $c, got $n"
  done
  n=$(awk -F'\t' -v f="$f" '$1 == f && $2 == "bulkhead/native" && $4 == "x"' "$tmp/out.tsv" | wc -l)
  [ "$n" -eq 1 ] || fail "want the bulkhead/native ratio of $f"
done
for c in native bulkhead; do
  grep -qP "^idle_pss\t$c\t[0-9]+\tkB$" "$tmp/out.tsv" || fail "no idle_pss line for $c"
done
grep -qP "^idle_extra\tbulkhead\t-?[0-9.]+\tMB$" "$tmp/out.tsv" || fail "no idle_extra line for bulkhead"

if [ "$failures" -ne 0 ]; then
  echo "--- tsv output ---" >&2
  cat "$tmp/out.tsv" >&2
  echo "mem_bench smoke test: $failures failure(s)" >&2
  exit 1
fi
echo "mem_bench smoke test: OK"
