"""Draw the next token from a model's scores: temperature, top-k and nucleus (top-p) filtering, then one draw.

logits (B, V) -> softmax(logits / temperature) over the tokens kept -> one id per row (inverse-CDF sampling)
"""

from __future__ import annotations

import numpy as np

from numpy2gpt.autograd import default_generator, softmax_array

__all__ = ["check_sampling", "sample_from_logits"]

# ruff: noqa: N806 - V is the vocabulary size, as in the model


def check_sampling(temperature: float, top_k: int | None, top_p: float | None) -> None:
    """Refuse sampling settings that mean nothing, naming the argument."""
    if not temperature >= 0.0:
        raise ValueError(f"temperature must be >= 0 (0 means greedy), got {temperature!r}")
    if top_k is not None and (not isinstance(top_k, (int, np.integer)) or top_k < 1):
        raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1] or None, got {top_p!r}")


def sample_from_logits(
    logits: np.ndarray,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: np.random.Generator | None = None,
) -> np.ndarray:
    """One token id per row of ``logits`` (B, V), drawn from softmax(logits / temperature) after top-k and
    nucleus (top-p) filtering; ``temperature=0`` takes the argmax. Returns int64 (B,).

    top_k keeps the k largest logits (ties with the k-th included, as nanoGPT). top_p keeps the most likely
    tokens, in order, while the probability before them is below top_p, so the smallest set reaching top_p
    (always at least the most likely token). The sampling arithmetic is float64 (B x V numbers, negligible).
    """
    check_sampling(temperature, top_k, top_p)
    logits = np.asarray(logits)
    if not np.isfinite(logits).all():
        raise ValueError("the model produced logits that are not finite (nan or inf): its weights are broken")
    if temperature == 0.0:
        return logits.argmax(axis=-1).astype(np.int64)
    rng = generator if generator is not None else default_generator()
    z = logits.astype(np.float64) / float(temperature)
    V = z.shape[-1]
    if top_k is not None and top_k < V:
        kth = np.partition(z, V - top_k, axis=-1)[:, V - top_k : V - top_k + 1]  # the k-th largest
        z = np.where(z < kth, -np.inf, z)
    probs = softmax_array(z, axis=-1)  # autograd's one softmax kernel (the -inf of top-k give 0)
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-probs, axis=-1, kind="stable")
        sorted_probs = np.take_along_axis(probs, order, axis=-1)
        before = np.cumsum(sorted_probs, axis=-1) - sorted_probs  # probability of the tokens ranked above
        keep = np.zeros_like(probs, dtype=bool)
        np.put_along_axis(keep, order, before < top_p, axis=-1)
        probs = np.where(keep, probs, 0.0)
    # inverse-CDF sampling: the first token whose cumulative probability exceeds u ~ U[0, total)
    cdf = np.cumsum(probs, axis=-1)
    u = rng.random(cdf.shape[0])[:, None] * cdf[:, -1:]
    ids = (cdf <= u).sum(axis=-1)
    last_nonzero = V - 1 - np.argmax(probs[:, ::-1] > 0, axis=-1)  # guard against u rounding up to the total
    return np.minimum(ids, last_nonzero).astype(np.int64)
