#!/usr/bin/env bash
# README command 1: install, build, and run the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "demo: building (first build takes a few minutes on 2 cores)..." >&2
bazel build -c opt //runtime:bulkhead //services/...
B=bazel-bin/runtime/bulkhead
$B selftest
echo
echo "demo: unmodified host programs in a sandbox, every system call served by bulkhead:" >&2
set -x
$B do -- /bin/busybox echo "hello from inside a bulkhead sandbox"
$B do -- /usr/bin/python3 -c 'import os, platform; print("python", platform.python_version(), "sees pid", os.getpid(), "on", platform.node(), platform.release())'
$B do --stats -- /bin/ls /
