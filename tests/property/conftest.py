"""Property-based differential tests against PyTorch: every test module here skips itself (visibly) when
torch or hypothesis is missing; each test ends with grad mode on and float32 as the default dtype (of PyTorch too)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import numpy2gpt.autograd as ag


@pytest.fixture(autouse=True)
def _restore_global_state():
    yield
    ag.set_grad_enabled(True)
    ag.set_default_dtype(np.float32)
    torch = sys.modules.get("torch")  # (never imported here: the test modules skip themselves without it)
    if torch is not None:
        torch.set_default_dtype(torch.float32)
