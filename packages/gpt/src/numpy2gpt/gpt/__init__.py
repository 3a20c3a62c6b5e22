"""numpy2gpt.gpt: nanoGPT in NumPy.

    model.py       GPTConfig, GPT (nanoGPT's architecture and parameter names; generate with a KV cache)
    sampling.py    sample_from_logits: temperature, top-k, top-p, one draw per row
    tokenizer.py   CharTokenizer, GPT2Tokenizer, BPETokenizer (trained on your corpus), load_tokenizer
    data.py        prepare, load_meta, load_split, get_batch
    train.py       TrainConfig, train (nanoGPT's train.py)
    distributed.py data-parallel ranks: World, its collectives over MPI (MPIComm), gradient averaging
    local_ranks.py ranks as processes of this machine without MPI (--procs): LocalComm, launch
    metrics.py     metrics.jsonl, the loss plot, the machine's matmul peak
    sample.py      sample (nanoGPT's sample.py, streaming)
    evaluate.py    evaluate: loss and perplexity over a whole text, every token once
    export.py      export: a checkpoint in Hugging Face's GPT-2 layout
    checkpoint.py  what a checkpoint holds; load_checkpoint
    pretrained.py  reading OpenAI's GPT-2 weights (GPT.from_pretrained)
    cli.py         the ``numpy2gpt`` command (config_file.py: nanoGPT's flags and config/*.py files)

The names below import lazily, so ``import numpy2gpt.gpt.tokenizer`` does not load the model or the trainer.
(``train`` and ``sample`` are the modules; their functions are ``numpy2gpt.gpt.train.train`` and
``numpy2gpt.gpt.sample.sample``.)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "GPT": "model",
    "GPTConfig": "model",
    "CharTokenizer": "tokenizer",
    "GPT2Tokenizer": "tokenizer",
    "load_tokenizer": "tokenizer",
    "prepare": "data",
    "get_batch": "data",
    "TrainConfig": "train",
    "load_checkpoint": "checkpoint",
    "from_pretrained": "model",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'numpy2gpt.gpt' has no attribute {name!r}")
    module = importlib.import_module(f"numpy2gpt.gpt.{_EXPORTS[name]}")
    return getattr(module, name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
