#!/usr/bin/env bash
# Installs every Debian package bulkhead needs (idempotent, safe to rerun).
set -euo pipefail
PKGS=(bazel-bootstrap g++ clang libclang-rt-14-dev libcapnp-dev capnproto libboost-dev libseccomp-dev
      libspdlog-dev libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev libsystemd-dev
      nlohmann-json3-dev python3 busybox-static)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "setup: all packages present" >&2
fi
