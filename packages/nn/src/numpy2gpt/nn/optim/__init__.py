"""numpy2gpt.nn.optim: optimizers (SGD, Adam, AdamW), learning-rate schedules and gradient clipping.

Each optimizer follows the matching ``torch.optim`` class formula for formula (the non-fused, single-tensor
code path), so that the same gradients give the same parameters as PyTorch to float32 rounding.
"""

from numpy2gpt.nn.optim import lr_scheduler
from numpy2gpt.nn.optim.adam import Adam, AdamW
from numpy2gpt.nn.optim.optimizer import Optimizer
from numpy2gpt.nn.optim.sgd import SGD
from numpy2gpt.nn.utils import clip_grad_norm_

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "clip_grad_norm_", "lr_scheduler"]
