"""tests/gpu: the GPU tests (test_cuda_*.py, skipped with one reason line where CuPy or a GPU is absent) and the
seam tests (test_seam.py), which run everywhere: they train, sample and save on ``fakecupy``'s strict stand-in
"device" arrays, so a host round trip anywhere in a step fails on a CPU too."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # fakecupy, cuda_available
