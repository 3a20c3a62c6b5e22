"""Draw the next token from a model's scores: temperature, top-k and nucleus (top-p) filtering, then one draw.

logits (B, V) -> softmax(logits / temperature) over the tokens kept -> one id per row (inverse-CDF sampling)
"""

from __future__ import annotations

import numpy as np

from numpy2gpt.autograd import get_array_module, softmax_array
from numpy2gpt.autograd.device import default_generator_like

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
    logits = logits if get_array_module(logits) is not np else np.asarray(logits)
    xp = get_array_module(logits)  # on a GPU the draw happens there: only the ids come back
    if not xp.isfinite(logits).all():
        raise ValueError("the model produced logits that are not finite (nan or inf): its weights are broken")
    if temperature == 0.0:
        return logits.argmax(axis=-1).astype(np.int64)
    rng = generator if generator is not None else default_generator_like(logits)
    z = logits.astype(np.float64) / float(temperature)
    V = z.shape[-1]
    if top_k is not None and top_k < V:
        kth = xp.partition(z, V - top_k, axis=-1)[:, V - top_k : V - top_k + 1]  # the k-th largest
        z = xp.where(z < kth, -np.inf, z)
    probs = softmax_array(z, axis=-1)  # autograd's one softmax kernel (the -inf of top-k give 0)
    if top_p is not None and top_p < 1.0:
        probs = _nucleus(probs, top_p)
    # inverse-CDF sampling: the first token whose cumulative probability exceeds u ~ U[0, total)
    cdf = xp.cumsum(probs, axis=-1)
    u = rng.random(cdf.shape[0])
    u = u if get_array_module(u) is xp else xp.asarray(u)  # a NumPy generator given for GPU logits
    u = u[:, None] * cdf[:, -1:]
    ids = (cdf <= u).sum(axis=-1)
    last_nonzero = V - 1 - xp.argmax(probs[:, ::-1] > 0, axis=-1)  # guard against u rounding up to the total
    return xp.minimum(ids, last_nonzero).astype(np.int64)


def _nucleus(probs: np.ndarray, top_p: float) -> np.ndarray:
    """``probs`` with only the most likely tokens kept, in order, while the probability before them is < top_p."""
    xp = get_array_module(probs)
    order = xp.argsort(-probs, axis=-1, kind="stable") if xp is np else xp.argsort(-probs, axis=-1)
    sorted_probs = xp.take_along_axis(probs, order, axis=-1)
    before = xp.cumsum(sorted_probs, axis=-1) - sorted_probs  # probability of the tokens ranked above
    keep = xp.zeros_like(probs, dtype=bool)
    if xp is np:
        np.put_along_axis(keep, order, before < top_p, axis=-1)
    else:  # (the same scatter, by indexing: CuPy may lack put_along_axis)
        keep[xp.arange(len(probs))[:, None], order] = before < top_p
    return xp.where(keep, probs, 0.0)
