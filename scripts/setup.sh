#!/usr/bin/env bash
# Set up cryoden in ./.venv (idempotent; fast when nothing changed).
#
# PyTorch is installed explicitly first, pinned, so that pip never resolves torch on its own
# (which would pull a multi-GB CUDA build on a CPU-only machine). Override with TORCH_SPEC, e.g.
#   TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" bash scripts/setup.sh
# Any failed step stops the set-up with a message and a non-zero exit status; in particular,
# cryoden is not installed unless the torch that imports is the pinned version.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

fail() {
  echo "[setup] FAILED: $*" >&2
  exit 1
}

# pip install, quiet, without pip's notes about ignored index locations. The filter never
# changes the exit status: with pipefail the pipeline fails exactly when pip does.
pip_install() {
  .venv/bin/python -m pip install -q --disable-pip-version-check "$@" 2>&1 \
    | { grep -v '^WARNING: Location' || true; }
}

if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv || fail "could not create .venv with $PYTHON"
fi

stamp=.venv/.cryoden-setup
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing $TORCH_SPEC, then cryoden, its test tools and ONNX Runtime"
  pip_install --upgrade pip || fail "pip install --upgrade pip"
  # shellcheck disable=SC2086
  pip_install $TORCH_SPEC || fail "pip install $TORCH_SPEC"

  # The torch that imports must be the pinned one (a local build suffix such as +cpu is fine);
  # otherwise the next step would let pip resolve torch by itself.
  pinned=$(sed -n 's/.*torch==\([^ ]*\).*/\1/p' <<<"$TORCH_SPEC")
  got=$(.venv/bin/python -c "import torch; print(torch.__version__)") \
    || fail "torch does not import after pip install $TORCH_SPEC"
  if [ -n "$pinned" ]; then
    case "$got" in
      "$pinned" | "$pinned"+*) ;;
      *) fail "torch $got imports, but $TORCH_SPEC was asked for; not installing cryoden" ;;
    esac
  fi

  pip_install -e ".[test,onnx]" || fail "pip install -e .[test,onnx]"
  .venv/bin/python -c "import torch, cryoden; print('[setup] torch', torch.__version__, '| cryoden', cryoden.__version__)" \
    || fail "cryoden does not import after installation"
  echo "$want" > "$stamp"
fi
