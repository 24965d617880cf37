#!/usr/bin/env bash
# The main job: set up, build, and show a simulated IOMMU host's dirty pages
# live.  Extra arguments go to dirtyd-simwatch (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -G "Unix Makefiles" >/dev/null
cmake --build build -j"$(nproc)" --target dirtyd-simwatch
exec build/clients/dirtyd-simwatch "$@"
