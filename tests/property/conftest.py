"""Property-based differential tests against PyTorch: every test module here skips itself (visibly) when
torch or hypothesis is missing; each test starts from grad mode on and float32 as the default dtype."""

from __future__ import annotations

import numpy as np
import pytest

import numpy2gpt.autograd as ag


@pytest.fixture(autouse=True)
def _restore_global_state():
    yield
    ag.set_grad_enabled(True)
    ag.set_default_dtype(np.float32)
