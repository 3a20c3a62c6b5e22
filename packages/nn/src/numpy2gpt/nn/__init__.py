"""numpy2gpt.nn: modules, functional ops, init and optimizers on numpy2gpt.autograd, named like torch.nn."""

from numpy2gpt.nn import init
from numpy2gpt.nn.containers import ModuleDict, ModuleList, Sequential
from numpy2gpt.nn.module import Module
from numpy2gpt.nn.parameter import Parameter
from numpy2gpt.nn.serialization import load, save

__version__ = "0.1.0"

__all__ = ["Module", "ModuleDict", "ModuleList", "Parameter", "Sequential", "init", "load", "save"]
