#!/usr/bin/env bash
# One-command, idempotent install of vmamba_mm and the OpenMMLab stack into .venv.
#
#   bash tools/install.sh          # creates or updates .venv; a second run takes seconds
#
# Why each step is the way it is (measured on Python 3.11, CPU machines):
# - torch 2.14.1 + torchvision 0.29.1 are pinned together: PyPI's torchvision fails to import beside
#   other torch builds ("operator torchvision::nms does not exist"), and a loose torch pulls GBs.
# - setuptools<82: mmcv's setup.py and mmengine import pkg_resources, which setuptools 82 removed.
# - mmcv 2.1.0 is sdist-only on PyPI and mmdet 3.3.0 / mmseg 1.2.2 require mmcv<2.2.0. It is built
#   here with its compiled ops (Mask R-CNN needs nms and roi_align) and without build isolation
#   (an isolated build env has no torch and silently builds no ops). Its setup.py hard-codes
#   -std=c++17, while torch>=2.14 headers need C++20: a copy of the sdist is patched before building.
#   The built wheel is kept in $VMAMBA_MM_CACHE so later installs on the machine take seconds.
# - mmpretrain's `modelindex` dependency is an empty placeholder on PyPI; `model-index` provides it.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
venv=${VMAMBA_MM_VENV:-$root/.venv}
cache=${VMAMBA_MM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vmamba_mm}
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3

log() { printf '[install] %s\n' "$*"; }

if [ ! -x "$venv/bin/python" ]; then
  log "creating $venv"
  "$python" -m venv "$venv"
fi
py="$venv/bin/python"
# This machine's pip config lists local indexes that lack most projects; hide pip's notice for each.
pip() { "$py" -m pip --disable-pip-version-check -q "$@" 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2); }

stamp="$venv/.vmamba_mm-install-stamp"
want=$(cat requirements/*.txt tools/install.sh | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$py" -c "import vmamba_mm, mmcv.ops" 2>/dev/null; then
  log "up to date ($venv)"
  exit 0
fi

log "torch, torchvision, build tools"
pip install -r requirements/torch.txt

torch_tag=$("$py" -c "import torch; print(torch.__version__.replace('+', '_'))")
ops=${FORCE_CUDA:-0}  # FORCE_CUDA=1 (with TORCH_CUDA_ARCH_LIST) builds the CUDA ops too
wheel_dir="$cache/mmcv-2.1.0-torch$torch_tag"
[ "$ops" = 1 ] && wheel_dir+=-cuda-ops
if ! ls "$wheel_dir"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
  log "building mmcv 2.1.0 with ops against torch $torch_tag (about 10 minutes on 2 cores)"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  pip download --no-deps --no-binary :all: --no-build-isolation mmcv==2.1.0 -d "$work"
  tar -xzf "$work"/mmcv-2.1.0.tar.gz -C "$work"
  if "$py" -c "import torch, sys; sys.exit(tuple(map(int, torch.__version__.split('.')[:2])) < (2, 14))"; then
    sed -i 's/-std=c++17/-std=c++20/g' "$work/mmcv-2.1.0/setup.py"
  fi
  mkdir -p "$wheel_dir"
  (cd "$work/mmcv-2.1.0" && MMCV_WITH_OPS=1 FORCE_CUDA=$ops MAX_JOBS=${MAX_JOBS:-$(nproc)} \
    "$py" -m pip --disable-pip-version-check -q wheel --no-build-isolation --no-deps . -w "$wheel_dir")
fi

log "mmcv and the OpenMMLab stack, test tools"
pip install "$(ls "$wheel_dir"/mmcv-2.1.0-*.whl | head -n 1)" -r requirements/runtime.txt -r requirements/tests.txt
"$py" -c "import mmcv.ops" || { echo "[install] mmcv 2.1.0 is installed but mmcv.ops does not import" >&2; exit 1; }

log "vmamba_mm (editable)"
pip install --no-deps --no-build-isolation -e .

"$py" -c "import vmamba_mm"
echo "$want" > "$stamp"
log "done: source $venv/bin/activate"
