#!/usr/bin/env bash
# Create (or reuse) the in-repo virtualenv with the whole OpenMMLab stack.
#
# Why each step is here (measured on Python 3.11 / x86_64 / CPU, registries only):
# * torch 2.14.1 + torchvision 0.29.1: pip takes both from this machine's disk. The
#   2.13 CPU wheel alone is not enough: mmpretrain and timm import torchvision, and
#   PyPI's torchvision does not load beside it.
# * mmcv 2.1.0 *with ops*: mmseg.models needs mmcv._ext (mmcv-lite fails). There is
#   no wheel for torch 2.14, so it is built from the PyPI sdist (~14 min on 2 cores)
#   with -std=c++20 (torch 2.14 headers need C++20). The wheel is cached outside the
#   clone in $MMDYNOPOOL_CACHE (default ~/.cache/mmdynopool), keyed by torch version.
# * setuptools <82: mmcv's setup.py and `mmseg::` config paths need pkg_resources.
# * openmim is not used: it downgrades setuptools.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PY=${PYTHON:-python3}
TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMCV_VERSION=2.1.0
CACHE=${MMDYNOPOOL_CACHE:-$HOME/.cache/mmdynopool}
WHEELS="$CACHE/wheels/mmcv-$MMCV_VERSION-torch-$TORCH_VERSION"
EXTRAS=${EXTRAS:-tests,demo,tensorboard,deploy,detection,analysis,lint}

stamp_src=$(cat setup.py requirements/*.txt tools/setup_env.sh | sha1sum | cut -c1-12)
STAMP="$VENV/.mmdynopool-$stamp_src-${EXTRAS//,/_}"
if [ -f "$STAMP" ]; then
  exit 0
fi

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
# This machine's pip config names local wheel folders that may not exist;
# drop pip's per-package warning about them, keep everything else.
pip() {
  "$VENV/bin/python" -m pip --disable-pip-version-check "$@" 2>&1 |
    { grep -v "^WARNING: Location 'file:" || true; }
}

pip install -q "setuptools>=77.0.3,<82" wheel ninja
pip install -q "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"

if ! ls "$WHEELS"/mmcv-*.whl >/dev/null 2>&1; then
  echo "[setup] building mmcv $MMCV_VERSION with ops (once per machine, ~15 min on 2 cores)"
  build=$(mktemp -d)
  pip download -q --no-deps --no-binary :all: --no-build-isolation \
    -d "$build" "mmcv==$MMCV_VERSION"
  tar -xzf "$build"/mmcv-$MMCV_VERSION.tar.gz -C "$build"
  sed -i "s/'-std=c++17'/'-std=c++20'/g" "$build/mmcv-$MMCV_VERSION/setup.py"
  mkdir -p "$WHEELS"
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} FORCE_CUDA=0 \
    pip wheel --no-build-isolation --no-deps --no-cache-dir \
    -w "$build/dist" "$build/mmcv-$MMCV_VERSION"
  # Move into place only when complete, so an interrupted build is retried.
  mv "$build"/dist/mmcv-*.whl "$WHEELS"/
  rm -rf "$build"
fi
pip install -q --no-deps "$WHEELS"/mmcv-*.whl
pip install -q -e ".[$EXTRAS]"
"$VENV/bin/python" -c "import mmcv.ops, mmseg.models, mmpretrain.models, mmdynopool"
# Compile the fused CPU DynOPool kernel now (about a minute, cached) rather
# than in the first training step; without a compiler PyTorch code runs.
"$VENV/bin/python" -c "from mmdynopool.ops import fused_kernel as k; print('[setup] fused DynOPool kernel:', 'ready' if k() else 'unavailable')"
rm -f "$VENV"/.mmdynopool-*
touch "$STAMP"
