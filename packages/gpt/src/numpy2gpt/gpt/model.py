"""A GPT language model in NumPy: nanoGPT's model, module for module and name for name.

    idx (B, T) token ids
      -> x = drop(wte[idx] + wpe[0..T-1])                          (B, T, C)
      -> n_layer blocks:  x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))
      -> logits = lm_head(ln_f(x))                                  (B, T, V), lm_head.weight IS wte.weight
      -> loss = cross_entropy(logits, targets)                      mean over positions (targets -1 are skipped)

    attn: qkv = c_attn(x) (C -> 3C), split into H heads of hd = C / H,
          y = softmax(q k^T / sqrt(hd) + causal mask) v, then c_proj (C -> C) and dropout
    mlp:  c_proj(gelu(c_fc(x))) with c_fc C -> 4C and c_proj 4C -> C, then dropout

The parameter names are nanoGPT's, so GPT-2's weights load by name (``GPT.from_pretrained``). ``GPTConfig.fused``
(nanoGPT's ``flash``) picks nn's fused kernels or their composed twins, the formulas in Tensor ops (the same numbers,
slower). ``generate`` samples with a KV cache (kv_cache.py): one position per new token.
"""

# nanoGPT's shape names: B batch, T time, C channels, V vocabulary, L layers, H heads, Q head size
# ruff: noqa: N806, SIM300

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

import numpy2gpt.nn as nn
import numpy2gpt.nn.functional as F  # noqa: N812 - the name everyone uses, as in torch
import numpy2gpt.nn.functional.composed as C  # noqa: N812 - the readable twins of F's functions
from numpy2gpt.autograd import Tensor, get_array_module, is_grad_enabled, no_grad
from numpy2gpt.autograd.device import device_of, to_device, to_host
from numpy2gpt.gpt import pretrained
from numpy2gpt.gpt.heads import split_heads, split_heads_composed
from numpy2gpt.gpt.kv_cache import KVCache, LayerKVCache
from numpy2gpt.gpt.sampling import check_sampling, sample_from_logits
from numpy2gpt.nn import init, optim

_NO_LIMIT = np.iinfo(np.int64).max  # generate() accepts prompts of any length (it crops them)


@dataclass
class GPTConfig:
    """The shape of a GPT. The defaults are nanoGPT's shakespeare_char configuration for a CPU (a 0.8M parameter
    character model); GPT-2 small is ``GPTConfig(1024, 50257, 12, 12, 768, gelu_approximate="tanh")``."""

    block_size: int = 64  # the context: the most tokens the model sees at once (positions 0..block_size-1)
    vocab_size: int = 65  # number of token ids; set from the data (65 characters in tiny shakespeare)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0  # on embeddings, attention weights and residual branches while training
    bias: bool = True  # biases in the Linears and LayerNorms (GPT-2 has them; False is a bit better and faster)
    gelu_approximate: str = "none"  # "none": exact erf GELU as nanoGPT; "tanh": GPT-2's gelu_new
    fused: bool = True  # nanoGPT's `flash`: nn's fused kernels, or (False) the same math composed from Tensor ops

    def __post_init__(self) -> None:
        for name in ("block_size", "vocab_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"GPTConfig.{name} must be a positive integer, got {value!r}")
            setattr(self, name, int(value))
        if self.n_embd % self.n_head != 0:
            raise ValueError(
                f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}: each head gets n_embd / n_head "
                f"dimensions (e.g. n_embd={self.n_head * max(1, round(self.n_embd / self.n_head))})"
            )
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"GPTConfig.dropout must be in [0, 1), got {self.dropout!r}")
        self.dropout = float(self.dropout)
        if not isinstance(self.fused, (bool, np.bool_)):
            raise ValueError(f"GPTConfig.fused must be True or False, got {self.fused!r}")
        self.fused = bool(self.fused)
        if self.gelu_approximate not in ("none", "tanh"):
            raise ValueError(f"GPTConfig.gelu_approximate must be 'none' or 'tanh', got {self.gelu_approximate!r}")


def _as_ids(ids: Any) -> Any:
    """Token ids as an array, where they are: a Tensor's data, a NumPy or GPU (CuPy) array, or a list as NumPy."""
    if isinstance(ids, Tensor):
        return ids.data
    return ids if isinstance(ids, np.ndarray) or get_array_module(ids) is not np else np.asarray(ids)


def functional(config: GPTConfig) -> Any:
    """The ops the model runs: nn.functional's fused kernels (one node each, with hand-written backward), or with
    ``fused=False`` nn.functional.composed, the textbook formulas from Tensor ops (autograd derives the backward;
    slower, and the path to read). Both have the same functions with the same arguments and give the same numbers."""
    return F if config.fused else C


class LayerNorm(nn.LayerNorm):
    """nn.LayerNorm running through ``functional(config)``: (x - mean) / sqrt(var + eps) * weight + bias."""

    def __init__(self, config: GPTConfig):
        super().__init__(config.n_embd, bias=config.bias)
        self.ops = functional(config)

    def forward(self, x: Tensor) -> Tensor:
        return self.ops.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention: x (B, T, C) -> (B, T, C), every position attending to itself and the
    positions before it. One fused Linear makes q, k and v for all heads at once."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ops = functional(config)
        self.split_heads = split_heads if config.fused else split_heads_composed
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v for all heads
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.dropout = config.dropout  # on the attention weights, applied inside scaled_dot_product_attention

    def forward(self, x: Tensor, kv_cache: LayerKVCache | None = None) -> Tensor:
        B, T, C = x.shape
        # (B, T, 3C) -> q, k, v, each (B, H, T, hd): views, no copy (heads.py: the same as reshaping to
        # (B, T, 3, H, hd), permuting to (3, B, H, T, hd) and unbinding, with a backward that copies once)
        q, k, v = self.split_heads(self.c_attn(x), self.n_head)
        if kv_cache is not None:
            # inference only: the cached keys/values are plain arrays, no gradient could flow into them
            if is_grad_enabled():
                raise RuntimeError("the KV cache is for inference: run the model under numpy2gpt.autograd.no_grad()")
            k, v = (Tensor(a) for a in kv_cache.append(k.data, v.data))  # (B, H, T_cached + T, hd), no copy
        # causal: query i sees keys 0..i; with a cache the mask is aligned bottom-right (the new queries are last)
        dropout_p = self.dropout if self.training else 0.0
        y = self.ops.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)  # (B, H, T, hd)
        y = y.transpose(1, 2).reshape(B, T, C)  # heads side by side again
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    """The position-wise feed-forward network: (B, T, C) -> (B, T, C) through a 4C-wide GELU layer."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ops = functional(config)
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.approximate = config.gelu_approximate
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.c_proj(self.ops.gelu(self.c_fc(x), approximate=self.approximate)))


class Block(nn.Module):
    """A transformer block with pre-LayerNorm residual branches: communicate (attention), then compute (MLP)."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = LayerNorm(config)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = LayerNorm(config)
        self.mlp = MLP(config)

    def forward(self, x: Tensor, kv_cache: LayerKVCache | None = None) -> Tensor:
        x = x + self.attn(self.ln_1(x), kv_cache)
        x = x + self.mlp(self.ln_2(x))
        return x


class GPT(nn.Module):
    """The language model: token ids (B, T) -> next-token logits (B, T, V) and, given targets, the loss."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),  # token embeddings
                wpe=nn.Embedding(config.block_size, config.n_embd),  # learned position embeddings
                drop=nn.Dropout(config.dropout),
                h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
                ln_f=LayerNorm(config),
            )
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # Weight tying (as GPT-2): the output layer scores each token by its input embedding. One Parameter,
        # listed once by parameters() (under its first name, transformer.wte.weight) and updated once per step.
        self.lm_head.weight = self.transformer.wte.weight

        # GPT-2's init: N(0, 0.02) weights, zero biases; every Linear that writes into the residual stream
        # (c_proj) gets std 0.02 / sqrt(2 n_layer), so the stream's variance does not grow with depth.
        # All draws come from numpy2gpt.autograd.default_generator(): manual_seed(s) fixes the model.
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=0.02)

    @classmethod
    def from_pretrained(
        cls,
        source: str | os.PathLike[str],
        *,
        dropout: float = 0.0,
        block_size: int | None = None,
        allow_download: bool | None = None,
        fused: bool = True,
    ) -> GPT:
        """A GPT with OpenAI's GPT-2 weights (Hugging Face layout; ``pretrained.py`` reads and translates them).

        Args:
            source: a folder holding ``config.json`` and ``model.safetensors`` / ``pytorch_model.bin``, one of
                those weight files (``config.json`` beside it), or a model name: gpt2, gpt2-medium, gpt2-large,
                gpt2-xl (looked up in the local Hugging Face cache).
            dropout: dropout for fine-tuning (GPT-2 was trained with 0.1; 0 for sampling).
            block_size: crop the context (GPT-2 has 1024 positions) to save memory and time.
            allow_download: fall back to the Hugging Face Hub for a model name (needs ``huggingface_hub`` and a
                network); defaults to True unless ``HF_HUB_OFFLINE`` is set.
            fused: ``GPTConfig.fused``.
        """
        config_file, weights_file = pretrained.resolve(source, allow_download=allow_download)
        args = pretrained.config_from_hf(pretrained.read_config(config_file))
        weights = pretrained.read_weights(weights_file)
        pretrained.check_sizes(args, weights, config_file)  # before the model is sized from config.json
        model = cls(GPTConfig(**args, dropout=dropout, fused=fused))
        pretrained.load_hf_state_dict(model, weights)
        if block_size is not None and block_size < model.config.block_size:
            model.crop_block_size(block_size)
        return model

    # -- the forward pass -------------------------------------------------------------------------------
    def forward(self, idx: Any, targets: Any = None) -> tuple[Tensor, Tensor | None]:
        """Logits (B, T, V) for every position of ``idx`` (B, T) and, when ``targets`` (B, T) are given, the mean
        cross-entropy loss over the positions whose target is not -1 (else ``None``)."""
        idx = self._check_idx(idx)
        T = idx.shape[1]
        pos = get_array_module(idx).arange(T, dtype=np.int64)
        tok_emb = self.transformer.wte(idx)  # (B, T, C)
        pos_emb = self.transformer.wpe(pos)  # (T, C), broadcast over the batch
        x = self.transformer.drop(tok_emb + pos_emb)
        for block in self.transformer.h:
            x = block(x)
        x = self.transformer.ln_f(x)
        logits = self.lm_head(x)  # (B, T, V)
        loss = None
        if targets is not None:
            targets = self._check_targets(targets, idx.shape)
            loss = functional(self.config).cross_entropy(logits, targets, ignore_index=-1)
        return logits, loss

    @no_grad()
    def forward_cached(self, idx: Any, kv_cache: KVCache) -> Tensor:
        """Inference with a KV cache: the logits (B, V) of the last position of ``idx`` (B, T), whose tokens sit at
        positions ``kv_cache.length ..`` after the tokens already cached; their keys and values are added to the
        cache. Equals ``forward(all tokens so far)[0][:, -1]``, but costs only T positions per layer. Needs eval
        mode (no dropout); runs under no_grad."""
        if self.training and self.config.dropout > 0.0:
            raise RuntimeError("forward_cached is for inference and this model has dropout: call model.eval() first")
        idx = self._check_idx(idx, max_len=self.config.block_size - kv_cache.length)
        T = idx.shape[1]
        start = kv_cache.length
        pos = get_array_module(idx).arange(start, start + T, dtype=np.int64)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block, layer_cache in zip(self.transformer.h, kv_cache.layers, strict=True):
            x = block(x, layer_cache)
        x = self.transformer.ln_f(x[:, -1:])  # only the last position's next-token scores are needed
        return self.lm_head(x)[:, 0]  # (B, V)

    def make_kv_cache(self, batch_size: int) -> KVCache:
        """An empty KV cache for ``batch_size`` sequences of up to block_size tokens, in the model's dtype."""
        c = self.config
        weight = self.transformer.wte.weight.data
        xp = get_array_module(weight)  # on the model's device
        return KVCache(c.n_layer, batch_size, c.n_head, c.block_size, c.n_embd // c.n_head, weight.dtype, xp)

    def _check_idx(self, idx: Any, max_len: int | None = None) -> np.ndarray:
        """``idx`` as an integer ndarray (B, T) of ids in [0, vocab_size), with a clear error for anything else."""
        data = _as_ids(idx)
        if data.dtype.kind not in "iu":
            raise TypeError(
                f"idx must hold integer token ids, got dtype {data.dtype}; e.g. np.asarray(ids, dtype=np.int64)"
            )
        if data.ndim != 2:
            raise ValueError(
                f"idx must have shape (batch, time), got shape {data.shape}; for one sequence use ids[None]"
            )
        B, T = data.shape
        if B == 0 or T == 0:
            raise ValueError(f"idx must hold at least one token in at least one sequence, got shape {data.shape}")
        max_len = self.config.block_size if max_len is None else max_len
        if T > max_len:
            bs = self.config.block_size
            raise ValueError(
                f"cannot forward a sequence of {T} tokens: the model's context (block_size) holds only {bs} "
                f"positions{f' and {bs - max_len} are already cached' if max_len != bs else ''}. Crop the input to "
                f"its last tokens (idx[:, -{bs}:], as generate() does) or train a model with a larger block_size."
            )
        V = self.config.vocab_size
        if data.min() < 0 or data.max() >= V:
            bad = np.unique(to_host(data[(data < 0) | (data >= V)]))
            raise IndexError(
                f"token ids {bad[:10].tolist()}{' ...' if bad.size > 10 else ''} are outside the vocabulary "
                f"[0, {V}) of this model (vocab_size={V}); was the data encoded with another tokenizer?"
            )
        return self._on_model_device(data)

    def _on_model_device(self, ids: Any) -> Any:
        """Token ids on the model's device: ids from the host (a batch, a prompt) are copied to a GPU model."""
        weight = self.transformer.wte.weight.data
        return ids if type(weight) is np.ndarray else to_device(ids, device_of(weight))

    def _check_targets(self, targets: Any, shape: tuple[int, ...]) -> np.ndarray:
        data = _as_ids(targets)
        if data.dtype.kind not in "iu":
            raise TypeError(f"targets must hold integer token ids, got dtype {data.dtype}")
        if data.shape != shape:
            raise ValueError(f"targets must have the shape of idx {shape}, got {data.shape}")
        return self._on_model_device(data)

    # -- sampling ---------------------------------------------------------------------------------------
    def generate(
        self,
        idx: Any,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: np.random.Generator | None = None,
        use_cache: bool = True,
        stop_token: int | None = None,
    ) -> Tensor:
        """Continue each sequence of ``idx`` (B, T) by up to ``max_new_tokens`` tokens; returns the int64 ids
        (B, T + n), prompt included.

        Each token is drawn from softmax(logits / temperature) of the last position, restricted to the ``top_k``
        most likely tokens and/or to the smallest set whose probability reaches ``top_p`` (nucleus sampling);
        ``temperature=0`` picks the most likely token (greedy). Random numbers come from ``generator``, else from
        ``numpy2gpt.autograd.default_generator()`` (so ``manual_seed`` makes sampling repeatable). The model runs
        in eval mode (no dropout) under no_grad; its training flag is restored afterwards. With ``stop_token``,
        generation ends once every sequence has produced it; a sequence that stopped early is padded with it.

        The model conditions on the last ``block_size`` tokens at every step (nanoGPT's rule). With
        ``use_cache=True`` (the default) the result is the same as recomputing that context every step
        (``use_cache=False``), but faster:

        * While the sequence fits in the context, the prompt is run once, filling a KV cache, and each further
          token runs the model on one position only, attending over the cached keys and values.
        * Once the sequence outgrows block_size, the window slides by one token per step. Every token then sits
          at a new position, and since position embeddings are added at the input, every cached key and value
          changes: no cache can be reused exactly. Each step then recomputes the cropped context (block_size
          positions, as without a cache), still saving the full-vocabulary logits of all but the last position.
          Refilling the cache only every block_size/2 tokens would be cheaper but would condition on fewer
          tokens than nanoGPT does, and change the samples; we keep the samples exact.
        """
        stream = self.generate_stream(idx, max_new_tokens, temperature, top_k, top_p, generator, use_cache, stop_token)
        prompt = self._check_idx(idx, max_len=_NO_LIMIT)
        new = list(stream)
        prompt = to_host(prompt).astype(np.int64)
        ids = np.concatenate([prompt, np.stack(new, axis=1)], axis=1) if new else prompt
        return Tensor(to_device(ids, device_of(self.transformer.wte.weight.data)))  # on the model's device

    def generate_stream(
        self,
        idx: Any,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: np.random.Generator | None = None,
        use_cache: bool = True,
        stop_token: int | None = None,
    ) -> Iterator[np.ndarray]:
        """``generate`` one step at a time: yields each step's new ids (B,) as soon as they are sampled (to print
        text as it comes). Same arguments, same tokens as ``generate``. Between steps the caller's grad mode and
        the model's training flag are untouched: eval mode and no_grad are entered only while a step computes."""
        if not isinstance(max_new_tokens, (int, np.integer)) or max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be a non-negative integer, got {max_new_tokens!r}")
        check_sampling(temperature, top_k, top_p)
        prompt = self._check_idx(idx, max_len=_NO_LIMIT)  # a prompt longer than block_size is cropped below
        rng = generator  # None: the default generator of the model's device (sample_from_logits)
        kv_cache = self.make_kv_cache(prompt.shape[0]) if use_cache else None
        return self._stream(prompt, int(max_new_tokens), temperature, top_k, top_p, rng, kv_cache, stop_token)

    def _stream(
        self,
        prompt: np.ndarray,
        max_new_tokens: int,
        temperature: float,
        top_k: int | None,
        top_p: float | None,
        rng: np.random.Generator | None,
        kv_cache: KVCache | None,
        stop_token: int | None,
    ) -> Iterator[np.ndarray]:
        B, T = prompt.shape
        block_size = self.config.block_size
        device = device_of(self.transformer.wte.weight.data)  # the ids stay on the host; each step's go to the model
        tokens = np.empty((B, T + max_new_tokens), dtype=np.int64)
        tokens[:, :T] = to_host(prompt)
        done = np.zeros(B, dtype=bool)
        for _ in range(max_new_tokens):
            context = tokens[:, max(0, T - block_size) : T]  # the last block_size tokens
            was_training = self.training
            self.eval()
            try:
                with no_grad():
                    if kv_cache is None:
                        logits = self(to_device(context, device))[0].data[:, -1]  # nanoGPT: the whole context
                    elif kv_cache.length > 0 and T <= block_size:
                        assert kv_cache.length == T - 1
                        newest = to_device(tokens[:, T - 1 : T], device)
                        logits = self.forward_cached(newest, kv_cache).data  # the newest token only
                    else:  # the first step, or the window slid: (re)fill the cache from the context
                        kv_cache.reset()
                        logits = self.forward_cached(to_device(context, device), kv_cache).data
            finally:
                self.train(was_training)
            next_ids = to_host(sample_from_logits(logits, temperature, top_k, top_p, rng))
            if stop_token is not None:
                next_ids = np.where(done, stop_token, next_ids)
                done |= next_ids == stop_token
            tokens[:, T] = next_ids
            T += 1
            yield next_ids
            if stop_token is not None and done.all():
                return

    # -- model surgery and bookkeeping ------------------------------------------------------------------
    def crop_block_size(self, block_size: int) -> None:
        """Shrink the context to ``block_size`` positions by keeping the first rows of the position embeddings
        (e.g. to sample or fine-tune GPT-2 with a shorter context). The Parameter object stays the same."""
        if not isinstance(block_size, (int, np.integer)) or not 0 < block_size <= self.config.block_size:
            raise ValueError(f"block_size must be in [1, {self.config.block_size}], got {block_size!r}")
        self.config = replace(self.config, block_size=int(block_size))
        wpe = self.transformer.wpe
        wpe.weight.data = wpe.weight.data[:block_size].copy()
        wpe.weight.grad = None
        if hasattr(wpe, "num_embeddings"):
            wpe.num_embeddings = int(block_size)

    def num_params(self, non_embedding: bool = True) -> int:
        """The number of parameters (the tied wte/lm_head weight counted once). With ``non_embedding`` the
        position embeddings are left out (the token embeddings count, as they are also the output layer)."""
        n = self.num_parameters()  # nn.Module's count (each Parameter once)
        if non_embedding:
            n -= self.transformer.wpe.weight.size
        return n

    get_num_params = num_params  # nanoGPT's name

    def configure_optimizers(
        self, weight_decay: float, learning_rate: float, betas: tuple[float, float] = (0.9, 0.95), eps: float = 1e-8
    ) -> optim.AdamW:
        """AdamW with nanoGPT's two groups: weight decay on every parameter with 2 or more dimensions (the
        matmul weights and the embeddings), none on the 1-D ones (biases and LayerNorm weights)."""
        params = [p for p in self.parameters() if p.requires_grad]
        decay = [p for p in params if p.ndim >= 2]
        no_decay = [p for p in params if p.ndim < 2]
        groups = [
            {"params": decay, "weight_decay": float(weight_decay)},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        return optim.AdamW(groups, lr=learning_rate, betas=betas, eps=eps)

    def estimate_flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs (forward + backward) per token, PaLM's estimate as in nanoGPT: 6N for the matmuls with
        the N weights, plus 12 L H Q T for attention (scores and weighted sum) over a context of T tokens."""
        c = self.config
        T = c.block_size if seq_len is None else seq_len
        L, H, Q = c.n_layer, c.n_head, c.n_embd // c.n_head
        return float(6 * self.num_params() + 12 * L * H * Q * T)

    def estimate_flops_per_iter(self, fwdbwd_per_iter: int, seq_len: int | None = None) -> float:
        """Training FLOPs of one iteration of ``fwdbwd_per_iter`` sequences (batch size x gradient accumulation
        steps) of ``seq_len`` tokens (block_size by default)."""
        T = self.config.block_size if seq_len is None else seq_len
        return self.estimate_flops_per_token(T) * T * fwdbwd_per_iter

    def estimate_flops_per_second(self, fwdbwd_per_iter: int, dt: float, seq_len: int | None = None) -> float:
        """Achieved model FLOP/s of an iteration that took ``dt`` seconds."""
        return self.estimate_flops_per_iter(fwdbwd_per_iter, seq_len) / dt

    def estimate_mfu(self, fwdbwd_per_iter: int, dt: float, peak_flops: float, seq_len: int | None = None) -> float:
        """Model FLOPs utilization: achieved FLOP/s as a fraction of the machine's ``peak_flops``."""
        return self.estimate_flops_per_second(fwdbwd_per_iter, dt, seq_len) / peak_flops


from_pretrained = GPT.from_pretrained  # the function form: numpy2gpt.gpt.from_pretrained("gpt2")
