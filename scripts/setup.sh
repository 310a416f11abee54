#!/usr/bin/env bash
# Set up cryoden in ./.venv (idempotent; fast when nothing changed).
#
# PyTorch is installed explicitly first, pinned, so that pip never resolves torch on its own
# (which would pull a multi-GB CUDA build on a CPU-only machine). Override with TORCH_SPEC, e.g.
#   TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi

stamp=.venv/.cryoden-setup
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing $TORCH_SPEC, then cryoden, its test tools and ONNX Runtime"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
  # shellcheck disable=SC2086
  .venv/bin/python -m pip install -q --disable-pip-version-check $TORCH_SPEC 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test,onnx]" 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -c "import torch, cryoden; print('[setup] torch', torch.__version__, '| cryoden', cryoden.__version__)"
  echo "$want" > "$stamp"
fi
