#!/bin/bash
# Smoke test of fs_bench: flags are checked, and a short run natively and
# under bulkhead prints every figure, in both locations, as a well-formed TSV
# line. It asserts no timing at all: the targets are judged in
# bench/RESULTS.md, not here. A figure bulkhead cannot measure (an NA line)
# fails the test: that is a broken file operation, not a slow one.
set -u

bench="${1:?usage: fs_bench_test.sh PATH_TO_FS_BENCH}"
tmp="${TEST_TMPDIR:-$(mktemp -d)}"
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

"$bench" --help >"$tmp/help" 2>&1 || fail "--help did not exit 0"
grep -q -- '--contenders' "$tmp/help" || fail "--help does not describe --contenders"
grep -q -- '--only' "$tmp/help" || fail "--help does not describe --only"
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
  fail "fs_bench --format=tsv failed"
fi
bad=$(awk -F'\t' '
  $3 == "NA" { if (NF != 5 || $5 == "") print "line " NR ": an NA line wants a reason: " $0; next }
  NF != 4 || $1 == "" || $2 == "" || $4 == "" { print "line " NR ": want 4 fields: " $0; next }
  $3 !~ /^-?[0-9]+(\.[0-9]+)?$/ { print "line " NR ": not a number: " $0 }
' "$tmp/out.tsv")
[ -z "$bad" ] || fail "malformed output:
$bad"
grep -q "left out" "$tmp/err" && fail "a contender was left out: $(cat "$tmp/err")"
for loc in tmpfs root; do
  for f in open_close stat read_4k seq_read_1m seq_write_1m create_unlink getdents_1000; do
    for c in native bulkhead; do
      n=$(awk -F'\t' -v f="$loc.$f" -v c="$c" '$1 == f && $2 == c && $4 == "us" && $3 + 0 > 0' "$tmp/out.tsv" | wc -l)
      [ "$n" -eq 1 ] || fail "want one positive $loc.$f line for $c, got $n: $(grep -P "^$loc\\.$f\\t$c\\t" "$tmp/out.tsv")"
    done
    n=$(awk -F'\t' -v f="$loc.$f" '$1 == f && $2 == "bulkhead/native" && $4 == "x"' "$tmp/out.tsv" | wc -l)
    [ "$n" -eq 1 ] || fail "want the bulkhead/native ratio of $loc.$f"
  done
done

# --only: one contender, no ratios.
if ! "$bench" --format=tsv --rounds 1 --iterations 20 --only native >"$tmp/only.tsv" 2>"$tmp/err"; then
  cat "$tmp/err" >&2
  fail "fs_bench --only native failed"
fi
[ "$(cut -f2 "$tmp/only.tsv" | sort -u)" = "native" ] || fail "--only native: other contenders: $(cut -f2 "$tmp/only.tsv" | sort -u)"
[ "$(wc -l <"$tmp/only.tsv")" -eq 15 ] || fail "--only native: want 14 figure lines and other_work, got $(wc -l <"$tmp/only.tsv")"

if [ "$failures" -ne 0 ]; then
  echo "--- tsv output ---" >&2
  cat "$tmp/out.tsv" >&2
  echo "fs_bench smoke test: $failures failure(s)" >&2
  exit 1
fi
echo "fs_bench smoke test: OK"
