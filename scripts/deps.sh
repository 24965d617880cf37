#!/usr/bin/env bash
# Install what dirtyd needs to build and test, from Debian 12's packages.
# Idempotent: installs only what is missing.  Needs root (or sudo).
set -euo pipefail

pkgs=(build-essential cmake pkg-config liburing-dev libevent-dev
      libsystemd-dev libcriterion-dev xz-utils
      systemd qemu-system-x86 cpio flex bison bc libelf-dev man-db ccache
      clang libclang-rt-14-dev	# clang's libFuzzer: scripts/fuzz.sh
      python3			# tests/conformance: the outsider's client
      cargo			# clients/rust: Debian 12's cargo, rustc 1.63
      python3-prometheus-client)	# METRICS: a real OpenMetrics parser
pkgs+=("$@")

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
