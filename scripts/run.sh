#!/usr/bin/env bash
# The main job: the seed study in quick mode on the embedded GroEL-like phantom (sets up ./.venv
# first). Extra arguments go to `cryoden bench seed`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/cryoden bench seed --quick --out results/quick "$@"
