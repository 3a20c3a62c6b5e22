"""Sample from a trained GPT: nanoGPT's sample.py, printing each token as it is produced.

    checkpoint -> GPTConfig + weights + tokenizer metadata -> encode the prompt -> generate -> decode

Each new token is decoded on its own (``StreamDecoder``: constant cost per token, whatever the prompt's length);
with a byte-level BPE a token can end in the middle of a multi-byte UTF-8 character, which is printed once its last
byte arrives. Generation stops at ``max_new_tokens`` or, for GPT-2's tokenizer, at the end-of-text token.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from numpy2gpt.autograd.device import require as require_device
from numpy2gpt.gpt.checkpoint import load_checkpoint
from numpy2gpt.gpt.model import GPT, GPTConfig
from numpy2gpt.gpt.tokenizer import StreamDecoder, load_tokenizer


def load_model(checkpoint: str | os.PathLike[str]) -> tuple[GPT, dict[str, Any]]:
    """The model of a checkpoint (file or out_dir), in eval mode, and its tokenizer metadata."""
    ckpt = load_checkpoint(checkpoint)
    model = GPT(GPTConfig(**{**ckpt["model_args"], "dropout": 0.0}))
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, ckpt["tokenizer"]


def stream_tokens(
    model: GPT,
    idx: np.ndarray,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: np.random.Generator | None = None,
    stop_token: int | None = None,
) -> Iterator[int]:
    """Yield the ids that ``model.generate(idx, ...)`` would return after the prompt ``idx`` (shape (1, T)), one at
    a time, as soon as each is sampled: ``GPT.generate_stream`` for a single sequence (KV cache, nanoGPT's
    sliding context), so the same ids for the same generator state."""
    prompt = np.asarray(idx).reshape(1, -1)
    for ids in model.generate_stream(prompt, max_new_tokens, temperature, top_k, top_p, generator, True, stop_token):
        yield int(ids[0])


def stop_token_of(tokenizer: Any) -> int | None:
    """GPT-2's end-of-text id (None for tokenizers without one)."""
    return getattr(tokenizer, "eot_token", None)


def default_prompt(tokenizer: Any) -> list[int]:
    """What to start from without a prompt: a newline (nanoGPT's default), or GPT-2's end-of-text token, or id 0."""
    eot = stop_token_of(tokenizer)
    if eot is not None:
        return [eot]
    try:
        return list(tokenizer.encode("\n"))
    except (ValueError, KeyError):
        return [0]


def sample_from_model(
    model: GPT,
    meta: dict[str, Any],
    prompt: str | None = None,
    num_samples: int = 1,
    max_new_tokens: int = 500,
    temperature: float = 0.8,
    top_k: int | None = 200,
    top_p: float | None = None,
    seed: int = 1337,
    stream: TextIO | str | None = "stdout",
) -> list[str]:
    """Generate ``num_samples`` continuations of ``prompt`` and return them (prompt included).

    With ``stream`` (default: sys.stdout; None: silent) each piece of text is written there as soon as its token is
    sampled. Uses its own generator seeded by ``seed``, so sampling never touches the training random stream."""
    if stream == "stdout":
        stream = sys.stdout  # looked up now, not when this module was imported
    tokenizer = load_tokenizer(meta)
    if tokenizer.vocab_size > model.config.vocab_size:
        raise ValueError(
            f"the model's vocabulary ({model.config.vocab_size} tokens) is smaller than its tokenizer's "
            f"({tokenizer.vocab_size}): the weights' config.json does not fit this tokenizer"
        )
    ids = default_prompt(tokenizer) if not prompt else list(tokenizer.encode(prompt))
    if not ids:
        raise ValueError("the prompt encodes to no tokens")
    if num_samples < 1:
        raise ValueError(f"num_samples must be at least 1, got {num_samples}")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if top_k is not None:
        top_k = min(top_k, model.config.vocab_size)
    generator = np.random.default_rng(seed)
    stop = stop_token_of(tokenizer)
    samples = []
    for k in range(num_samples):
        # with a prompt, the sample is the prompt and its continuation; without one, only the continuation
        start = 0 if prompt else len(ids)
        pieces = [tokenizer.decode(ids[start:])]  # the prompt (whole characters: it was encoded from text)
        decoder = StreamDecoder(tokenizer)  # the new tokens, one at a time
        if stream is not None:
            stream.write(pieces[0])
            stream.flush()
        idx = np.asarray([ids], dtype=np.int64)
        for token in stream_tokens(model, idx, max_new_tokens, temperature, top_k, top_p, generator, stop):
            if token == stop:
                break
            pieces.append(decoder.push(token))  # "" while a multi-byte character is incomplete
            if stream is not None and pieces[-1]:
                stream.write(pieces[-1])
                stream.flush()
        pieces.append(decoder.flush())
        text = "".join(pieces)
        if stream is not None:
            stream.write(pieces[-1] + "\n")
            if k < num_samples - 1:
                stream.write("---------------\n")
            stream.flush()
        samples.append(text)
    return samples


def sample(
    checkpoint: str | os.PathLike[str] = "out",
    prompt: str | None = None,
    num_samples: int = 1,
    max_new_tokens: int = 500,
    temperature: float = 0.8,
    top_k: int | None = 200,
    top_p: float | None = None,
    seed: int = 1337,
    init_from: str = "resume",
    weights: str | None = None,
    stream: TextIO | str | None = "stdout",
    device: str = "cpu",
) -> list[str]:
    """Sample from a checkpoint (``init_from="resume"``: ``checkpoint`` is a file or an out_dir) or from pretrained
    GPT-2 (``init_from="gpt2"`` etc., weights from the folder ``weights`` or the local Hugging Face cache), on
    ``device`` ("cpu", or "cuda" with CuPy)."""
    device = require_device(device)  # one line if a GPU is asked for and cannot be had
    if init_from == "resume":
        if weights:
            raise ValueError(f"weights={weights!r} is only used with init_from gpt2 (--init-from gpt2)")
        model, meta = load_model(checkpoint)
    elif init_from.startswith("gpt2"):
        model = GPT.from_pretrained(weights or init_from).eval()
        meta = {"tokenizer": {"kind": "gpt2", "name": "gpt2"}, "vocab_size": model.config.vocab_size}
    else:
        raise ValueError(f"init_from must be 'resume' or a GPT-2 name (gpt2, gpt2-medium, ...), not {init_from!r}")
    model.to(device)
    return sample_from_model(
        model, meta, prompt, num_samples, max_new_tokens, temperature, top_k, top_p, seed, stream=stream
    )


def read_prompt(prompt: str | None, prompt_file: str | os.PathLike[str] | None) -> str | None:
    """The prompt text: given directly, or read from a file (nanoGPT's ``FILE:`` prefix works too)."""
    if prompt_file is not None:
        return Path(prompt_file).read_text(encoding="utf-8")
    if prompt is not None and prompt.startswith("FILE:"):
        return Path(prompt[5:]).read_text(encoding="utf-8")
    return prompt
