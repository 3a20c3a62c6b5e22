"""numpy2gpt.nn.functional: the ops a GPT spends its time in, named and shaped like torch.nn.functional.

Each op is a fused autograd Function (one file per family) with a hand-written backward on raw arrays, so a
training step pays for no intermediate graph nodes. ``composed`` holds the same ops written only from
autograd primitives (exp, log, sum, matmul, ...): slower, but every line is the textbook formula, and the
tests check that both agree (values and gradients) with each other and with PyTorch.

    op                              file              saved for backward
    linear                          linear.py         (its inputs)
    gelu, silu, leaky_relu          activation.py     gelu, silu: dy/dx, computed alongside y
    cross_entropy, mse_loss         loss.py           exp(logits - max) and its row sums; input - target
    layer_norm                      normalization.py  xhat and 1/std
    dropout                         dropout.py        the keep mask
    embedding                       embedding.py      (the ids)
    scaled_dot_product_attention    attention.py      the attention weights (and dropout mask)
    erf, erfc (plain arrays)        special.py
    relu, softmax, log_softmax      (autograd's, re-exported: one implementation each)

Each fused op's docstring names its composed twin (``composed.linear``, ``composed.gelu``, ...). An op that
works along one axis takes torch's ``dim=`` or NumPy's ``axis=`` (``F.softmax(x, dim=-1)``).
"""

from numpy2gpt.autograd import log_softmax, relu, softmax
from numpy2gpt.nn.functional import composed
from numpy2gpt.nn.functional.activation import gelu, leaky_relu, silu
from numpy2gpt.nn.functional.attention import causal_mask, scaled_dot_product_attention
from numpy2gpt.nn.functional.dropout import dropout
from numpy2gpt.nn.functional.embedding import embedding
from numpy2gpt.nn.functional.linear import linear
from numpy2gpt.nn.functional.loss import cross_entropy, mse_loss
from numpy2gpt.nn.functional.normalization import layer_norm
from numpy2gpt.nn.functional.special import erf, erfc

__all__ = [
    "causal_mask", "composed", "cross_entropy", "dropout", "embedding", "erf", "erfc", "gelu", "layer_norm",
    "leaky_relu", "linear", "log_softmax", "mse_loss", "relu", "scaled_dot_product_attention", "silu", "softmax",
]  # fmt: skip
