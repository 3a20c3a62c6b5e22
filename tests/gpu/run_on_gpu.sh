#!/usr/bin/env bash
# The GPU check of issue 14, in one script for a fresh NVIDIA GPU machine (H200), from the repository root:
#
#     bash tests/gpu/run_on_gpu.sh [TEXT_FILE]       # e.g. shared/data/tinyshakespeare.txt
#
# Installs numpy2gpt (editable) with CuPy for the driver's CUDA major version (nvidia-smi), runs tests/gpu, then
# benchmarks/gpu.py (numpy2gpt vs PyTorch eager float32 on this GPU, and a short shakespeare_char run on TEXT_FILE
# or the embedded corpus). PyTorch installs in the background into its own folder and is skipped if it is not
# there in time. Everything lands in $OUT (default ./gpu-results), six files (the device tool brings back 8 at
# most): run.log (all output), junit.xml, gpu.md, gpu.json, short_run.log, torch-install.log. Budget: about 8
# minutes in all; each stage has its own timeout. N2G_QUICK=1: no PyTorch, 3 timed steps, a 30-iteration run
# (about 4 minutes: a rerun that fits what is left of a device lease).
set -u
export PYTHONUNBUFFERED=1  # output reaches run.log as it comes, also from a stage its timeout kills
OUT=${OUT:-$PWD/gpu-results}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/run.log") 2>&1
START=$(date +%s)
elapsed() { echo $(($(date +%s) - START)); }
stage() { echo "=== [$(elapsed) s] $*"; }
TEXT=${1:-}
if [ -n "$TEXT" ] && [ ! -f "$TEXT" ]; then
  echo "text file $TEXT not found: the short run uses the embedded corpus"
  TEXT=""
fi

stage "GPU"
nvidia-smi | tee /tmp/n2g-nvidia-smi.txt || { echo "nvidia-smi failed: no NVIDIA driver here"; exit 1; }
CUDA_MAJOR=$(sed -n 's/.*CUDA Version: *\([0-9][0-9]*\)\..*/\1/p' /tmp/n2g-nvidia-smi.txt | head -1)
if [ "${CUDA_MAJOR:-12}" -ge 13 ]; then EXTRA=cuda13; CUPY=cupy-cuda13x; else EXTRA=cuda12; CUPY=cupy-cuda12x; fi
echo "driver's CUDA major version: ${CUDA_MAJOR:-unknown} -> numpy2gpt-autograd[$EXTRA] ($CUPY)"
# CuPy needs the CUDA libraries (NVRTC, cuBLAS, ...): from the system if present, else from pip ([ctk])
if ldconfig -p 2>/dev/null | grep -q libnvrtc && ldconfig -p 2>/dev/null | grep -q libcublas; then CTK=""; else CTK="$CUPY[ctk]"; fi

stage "Python environment"
PY=${PYTHON:-python3}
PIPFLAGS=""
if "$PY" -m venv /tmp/n2g-venv >/dev/null 2>&1; then
  PY=/tmp/n2g-venv/bin/python
else
  echo "no venv module: installing into $PY's own site-packages"
  PIPFLAGS="--break-system-packages"
fi
"$PY" --version
QUICK=${N2G_QUICK:-0}
# PyTorch (the comparison), in the background, in a folder of its own: its CUDA wheels never meet CuPy's
rm -f /tmp/n2g-torch.rc
TORCH_PID=""
if [ "$QUICK" = 1 ]; then
  echo "N2G_QUICK=1: no PyTorch comparison" | tee "$OUT/torch-install.log"
  echo 1 >/tmp/n2g-torch.rc
else
  (timeout 300 "$PY" -m pip install -q $PIPFLAGS --target /tmp/n2g-torch torch >"$OUT/torch-install.log" 2>&1
   echo $? >/tmp/n2g-torch.rc) &
  TORCH_PID=$!
fi
timeout 240 "$PY" -m pip install -q $PIPFLAGS -e "packages/autograd[$EXTRA]" -e packages/nn -e packages/gpt pytest $CTK \
  || { echo "installing numpy2gpt and CuPy failed"; exit 1; }
"$PY" -c "import cupy; print('CuPy', cupy.__version__, 'sees', cupy.cuda.runtime.getDeviceCount(), 'GPU(s)')" \
  || { echo "CuPy is installed but cannot use the GPU"; exit 1; }

stage "tests/gpu (the seam on fakecupy, then the CuPy tests)"
timeout 200 "$PY" -m pytest tests/gpu -q -rs -p no:cacheprovider --junitxml="$OUT/junit.xml" 2>&1
echo "tests/gpu exit status: $?"

stage "waiting for PyTorch (at most until 300 s)"
while [ ! -f /tmp/n2g-torch.rc ] && [ "$(elapsed)" -lt 300 ]; do sleep 5; done
TORCH_ARGS="--no-torch"
if [ -f /tmp/n2g-torch.rc ] && [ "$(cat /tmp/n2g-torch.rc)" = "0" ] \
  && PYTHONPATH=/tmp/n2g-torch "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  TORCH_ARGS="--torch-path /tmp/n2g-torch"
  echo "PyTorch ready: $(PYTHONPATH=/tmp/n2g-torch "$PY" -c 'import torch; print(torch.__version__)')"
else
  echo "PyTorch not ready or without CUDA: the comparison is skipped (see torch-install.log)"
  [ -n "$TORCH_PID" ] && kill "$TORCH_PID" 2>/dev/null
fi

stage "benchmarks/gpu.py"
LEFT=$((470 - $(elapsed)))
ITERS=300
if [ "$LEFT" -lt 150 ]; then ITERS=100; fi
if [ "$LEFT" -lt 60 ]; then LEFT=60; ITERS=0; fi
[ "$QUICK" = 1 ] && TORCH_ARGS="--no-torch --quick"
timeout "$LEFT" "$PY" benchmarks/gpu.py --out "$OUT" --iters "$ITERS" $TORCH_ARGS ${TEXT:+--text "$TEXT"}
echo "benchmark exit status: $?"
stage "done: results in $OUT"
