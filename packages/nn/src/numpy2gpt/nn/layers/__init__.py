"""The layers: one family per file, each a small Module that holds parameters and calls numpy2gpt.nn.functional."""

from numpy2gpt.nn.layers.activation import GELU, LeakyReLU, ReLU, SiLU, Tanh
from numpy2gpt.nn.layers.dropout import Dropout
from numpy2gpt.nn.layers.embedding import Embedding
from numpy2gpt.nn.layers.linear import Linear
from numpy2gpt.nn.layers.loss import MSELoss
from numpy2gpt.nn.layers.normalization import LayerNorm

__all__ = ["GELU", "Dropout", "Embedding", "LayerNorm", "LeakyReLU", "Linear", "MSELoss", "ReLU", "SiLU", "Tanh"]
