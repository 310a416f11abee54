#!/usr/bin/env bash
# Run cryoden's test suite: tests/ and the doctests of src/cryoden (pyproject.toml's testpaths),
# after setting up ./.venv. Extra arguments go to pytest (then they choose what runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

# Headless Chromium (Debian's package) lets a test open the HTML report and check its images.
# Without root or network the report test skips itself.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "[test] installing Debian's chromium for the report test"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "[test] could not install chromium; the report test will be skipped"
fi

exec .venv/bin/python -m pytest -q "$@"
