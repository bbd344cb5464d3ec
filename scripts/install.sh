#!/usr/bin/env bash
# Create .venv (if missing) and install brainfoundry with its test tools. Idempotent.
# PyTorch is pinned first: an unpinned torch would pull a multi-GB CUDA build on a CPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==${TORCH_VERSION:-2.13.0}"
# trackers: MLflow and W&B, off by default, installed so their tests run (tests/engine)
.venv/bin/python -m pip install -q -e ".[dev,trackers]"
# the resenc backbone (the `resenc` extra); --no-deps because its timm requirement pulls a
# torchvision that replaces this torch with a CUDA build (we never import timm or torchvision)
.venv/bin/python -m pip install -q --no-deps "dynamic-network-architectures==0.4.4"
# test cross-checks call nnU-Net v2's own pretrained-weight loader (same reason for --no-deps)
.venv/bin/python -m pip install -q --no-deps "nnunetv2==2.8.1"
# Debian's packages, skipped when present or where apt-get is not available: headless Chromium
# for tests/bench/test_report_browser.py, which opens the bench report in a real browser, and
# mricron-data, whose Colin27 head (ch2.nii.gz) and its BET brain (ch2bet.nii.gz) are the real
# anatomy brain extraction is tested and measured on (tests/data/test_skull_strip_real.py)
NEED=""
command -v chromium >/dev/null || NEED="chromium"
[ -f /usr/share/mricron/templates/ch2.nii.gz ] || NEED="$NEED mricron-data"
if [ -n "$NEED" ] && command -v apt-get >/dev/null; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  # shellcheck disable=SC2086
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends $NEED
fi
