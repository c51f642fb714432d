#!/usr/bin/env bash
# README command 2: every test. Ends with one line "N passed, M failed"
# counted from the gtest XML reports Bazel keeps under bazel-testlogs/.
#   scripts/test.sh            all tests (default config), then the ASan+UBSan
#                              config, then a bounded libFuzzer run
#   BULKHEAD_SKIP_ASAN=1       skip the sanitizer pass
#   BULKHEAD_FUZZ_SECONDS=N    libFuzzer time per target (default 30; 0 skips)
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

passed=0; failed=0; rc=0
count() {  # $1: label. Adds the gtest cases of every test.xml under bazel-testlogs.
  local p f
  read -r p f < <(python3 - <<'PY'
import glob, xml.etree.ElementTree as ET
p = f = 0
for path in glob.glob('bazel-testlogs/**/test.xml', recursive=True):
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        f += 1
        continue
    cases = root.findall('.//testcase')
    if not cases:
        # a non-gtest test (sh_test) or a crashed binary: one result from the suite
        bad = int(root.get('failures', 0) or 0) + int(root.get('errors', 0) or 0)
        for s in root.iter('testsuite'):
            bad += int(s.get('failures', 0) or 0) + int(s.get('errors', 0) or 0)
        if bad: f += 1
        else: p += 1
        continue
    for c in cases:
        if c.find('failure') is not None or c.find('error') is not None: f += 1
        elif c.get('status', 'run') == 'run' and c.find('skipped') is None: p += 1
print(p, f)
PY
)
  echo "$1: $p passed, $f failed" >&2
  passed=$((passed + p)); failed=$((failed + f))
}

echo "== bazel test //... (default config)" >&2

bazel test //... --test_output=errors || rc=1
count "default"

if [ "${BULKHEAD_SKIP_ASAN:-0}" != "1" ]; then
  echo "== bazel test --config=asan //... (ASan + UBSan)" >&2
  bazel test --config=asan //... --test_output=errors || rc=1
  count "asan"
fi

fuzz_seconds="${BULKHEAD_FUZZ_SECONDS:-30}"
if [ "$fuzz_seconds" != "0" ] && [ -x scripts/fuzz.sh ]; then
  echo "== libFuzzer, ${fuzz_seconds}s per target" >&2
  if scripts/fuzz.sh "$fuzz_seconds"; then passed=$((passed + 1)); else failed=$((failed + 1)); rc=1; fi
fi

[ "$failed" -eq 0 ] || rc=1
echo "$passed passed, $failed failed"
exit $rc
