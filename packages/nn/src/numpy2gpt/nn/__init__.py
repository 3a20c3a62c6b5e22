"""numpy2gpt.nn: modules, functional ops, init and optimizers on numpy2gpt.autograd, named like torch.nn.

    import numpy2gpt.nn as nn
    import numpy2gpt.nn.functional as F
    from numpy2gpt.nn import init, optim

Import order (no cycles): functional, init and utils depend on autograd only; Parameter on autograd; Module on
autograd and utils; the containers on Module; the layers on functional, init and Module; optim on autograd and
utils.
"""

from numpy2gpt.nn import functional, init, utils
from numpy2gpt.nn.containers import ModuleDict, ModuleList, Sequential
from numpy2gpt.nn.layers import GELU, Dropout, Embedding, LayerNorm, LeakyReLU, Linear, MSELoss, ReLU, SiLU, Tanh
from numpy2gpt.nn.module import Module
from numpy2gpt.nn.parameter import Parameter
from numpy2gpt.nn.serialization import load, save

from numpy2gpt.nn import optim  # isort: skip - last: it imports numpy2gpt.nn.utils

__version__ = "0.1.0"

__all__ = [
    "GELU", "Dropout", "Embedding", "LayerNorm", "LeakyReLU", "Linear", "MSELoss", "Module", "ModuleDict",
    "ModuleList", "Parameter", "ReLU", "Sequential", "SiLU", "Tanh", "functional", "init", "load", "optim", "save",
    "utils",
]  # fmt: skip
