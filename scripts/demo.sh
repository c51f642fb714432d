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
$B do -- /bin/sh -c 'echo "hello from inside a bulkhead sandbox: pid $$ on $(uname -n)"; ls /usr | sort | head -3 | tr "\n" " "; echo; for i in 1 2 3; do (echo "subshell $i" | tr a-z A-Z) & done; wait; sleep 0.1 & echo "background job $!"; wait; cat /proc/self/status | grep -E "^(Pid|PPid)"'
$B do -- /bin/busybox echo "static busybox works too"
$B do -- /usr/bin/python3 -c 'import os, platform; print("python", platform.python_version(), "sees pid", os.getpid(), "on", platform.node(), platform.release()); import threading, subprocess; t = threading.Thread(target=print, args=("a thread",)); t.start(); t.join(); print(subprocess.run(["echo", "a subprocess"], capture_output=True, text=True).stdout.strip())'
$B do --stats -- /bin/ls /
