#!/bin/bash
# Smoke test of ring_bench: it runs end to end with small counts, every TSV
# line is well formed, and every expected figure is there. It asserts no
# timing at all: speed targets are judged in bench/RESULTS.md, not here.
set -u

bench="${1:?usage: ring_bench_test.sh PATH_TO_RING_BENCH}"
tmp="${TEST_TMPDIR:-$(mktemp -d)}"
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# Flag handling: --help succeeds, unknown flags and bad values exit 2.
if ! "$bench" --help >"$tmp/help" 2>&1; then fail "--help did not exit 0"; fi
grep -q -- '--format' "$tmp/help" || fail "--help does not describe --format"
"$bench" --no-such-flag >/dev/null 2>"$tmp/err"
rc=$?
[ "$rc" -eq 2 ] || fail "unknown flag: exit $rc, want 2"
grep -q "unknown flag" "$tmp/err" || fail "unknown flag: no clear message: $(cat "$tmp/err")"
"$bench" --format=xml >/dev/null 2>&1
rc=$?
[ "$rc" -eq 2 ] || fail "--format=xml: exit $rc, want 2"
"$bench" --rounds 0 >/dev/null 2>&1
rc=$?
[ "$rc" -eq 2 ] || fail "--rounds 0: exit $rc, want 2"

# The quick run itself.
if ! "$bench" --quick --format=tsv --rounds 3 >"$tmp/out.tsv" 2>"$tmp/err"; then
  cat "$tmp/err" >&2
  fail "ring_bench --quick --format=tsv failed"
fi

# Every line: 4 tab-separated fields, the third a positive number.
bad=$(awk -F'\t' '
  NF != 4 || $1 == "" || $2 == "" || $4 == "" { print "line " NR ": want 4 fields: " $0; next }
  $3 !~ /^[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/ || $3 + 0 <= 0 { print "line " NR ": not a positive number: " $0 }
' "$tmp/out.tsv")
[ -z "$bad" ] || fail "malformed output:
$bad"
[ -s "$tmp/out.tsv" ] || fail "no output"

expected="
roundtrip_small ring-spin us
roundtrip_small ring-sleep us
roundtrip_small ring-spin-capnp us
roundtrip_small pipe us
roundtrip_small unix-socket us
roundtrip_small eventfd us
throughput_small ring-spin msg/s
throughput_small ring-spin-capnp msg/s
throughput_small pipe msg/s
throughput_small unix-socket msg/s
throughput_bulk ring-spin MiB/s
throughput_bulk pipe MiB/s
throughput_bulk unix-socket MiB/s
"
n=0
while read -r bench_name contender unit; do
  [ -n "$bench_name" ] || continue
  n=$((n + 1))
  count=$(awk -F'\t' -v b="$bench_name" -v c="$contender" -v u="$unit" \
    '$1 == b && $2 == c && $4 == u' "$tmp/out.tsv" | wc -l)
  [ "$count" -eq 1 ] || fail "want exactly one line for $bench_name/$contender ($unit), got $count"
done <<<"$expected"
lines=$(wc -l <"$tmp/out.tsv")
[ "$lines" -eq "$n" ] || fail "want $n lines, got $lines"

# The text format runs too and judges the targets (whatever the verdicts).
if ! "$bench" --quick --rounds 1 --only roundtrip_small/pipe >"$tmp/out.txt" 2>/dev/null; then
  fail "text format run failed"
fi
grep -q "roundtrip_small" "$tmp/out.txt" || fail "text format lacks the table"

if [ "$failures" -ne 0 ]; then
  echo "--- tsv output ---" >&2
  cat "$tmp/out.tsv" >&2
  echo "ring_bench smoke test: $failures failure(s)" >&2
  exit 1
fi
echo "ring_bench smoke test: OK"
