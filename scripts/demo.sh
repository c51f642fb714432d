#!/usr/bin/env bash
# README command 1: install, build, and run the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "demo: building (first build takes a few minutes on 2 cores)..." >&2
bazel build -c opt //runtime:bulkhead //services/...
exec bazel-bin/runtime/bulkhead selftest
