"""Generation speed: numpy2gpt with and without its KV cache, against PyTorch, in the same run.

A GPT-2 124M-shaped model (vocab 50257, 12 layers, 12 heads, 768 wide, context 1024) with random weights
generates ``--new-tokens`` tokens greedily after a ``--prompt-tokens`` prompt:

* numpy2gpt, KV cache: the prompt is processed once, then each token attends over the cached keys/values;
* numpy2gpt, no cache: every token re-runs the whole context (what nanoGPT and picoGPT do);
* PyTorch (Hugging Face ``GPT2LMHeadModel`` with the same weights copied in), no cache, the same loop;
* PyTorch with Hugging Face's own cache, for reference.

Both frameworks use 2 threads and float32. Greedy decoding with identical weights should give the same
tokens; the script reports how many agree (random weights give flat logits, so a near-tie can flip one
argmax through float rounding, after which the continuations differ).

    python benchmarks/generate.py                # the table in the README
    python benchmarks/generate.py --quick        # smaller model, seconds
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np

import numpy2gpt.autograd as ag
from numpy2gpt.gpt.model import GPT, GPTConfig

CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def torch_twin(model: GPT):
    """A Hugging Face GPT2LMHeadModel holding exactly ``model``'s weights."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    c = model.config
    hf = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=c.vocab_size,
            n_positions=c.block_size,
            n_embd=c.n_embd,
            n_layer=c.n_layer,
            n_head=c.n_head,
            activation_function="gelu_new",
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
        )
    ).eval()
    state = {}
    for name, p in model.named_parameters():
        value = p.data.T if name.endswith(CONV1D) else p.data
        state[name] = torch.from_numpy(np.ascontiguousarray(value))
    state["lm_head.weight"] = state["transformer.wte.weight"]
    hf.load_state_dict(state, strict=False)
    return hf


def torch_generate(hf, prompt: np.ndarray, new_tokens: int, use_cache: bool) -> np.ndarray:
    import torch

    idx = torch.from_numpy(prompt)
    with torch.no_grad():
        if use_cache:
            out = hf.generate(idx, max_new_tokens=new_tokens, do_sample=False, pad_token_id=0, eos_token_id=None)
            return out.numpy()
        for _ in range(new_tokens):
            logits = hf(idx[:, -hf.config.n_positions :], use_cache=False).logits[:, -1]
            idx = torch.cat([idx, logits.argmax(-1, keepdim=True)], dim=1)
    return idx.numpy()


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompt-tokens", type=int, default=20)
    parser.add_argument("--new-tokens", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="a 4-layer 256-wide model instead of 124M")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "generate.md"))
    args = parser.parse_args()

    import torch

    torch.set_num_threads(2)
    ag.manual_seed(0)
    if args.quick:
        config = GPTConfig(block_size=256, vocab_size=50257, n_layer=4, n_head=4, n_embd=256, gelu_approximate="tanh")
    else:
        config = GPTConfig(
            block_size=1024, vocab_size=50257, n_layer=12, n_head=12, n_embd=768, gelu_approximate="tanh"
        )
    model = GPT(config)
    hf = torch_twin(model)
    prompt = np.random.default_rng(0).integers(0, config.vocab_size, size=(1, args.prompt_tokens))
    n = args.new_tokens

    # warm up both (first BLAS calls, allocator)
    model.generate(prompt, 2, temperature=0.0)
    torch_generate(hf, prompt, 2, use_cache=False)

    rows = []
    t_cache, ours_cache = timed(lambda: model.generate(prompt, n, temperature=0.0, use_cache=True))
    t_nocache, ours_nocache = timed(lambda: model.generate(prompt, n, temperature=0.0, use_cache=False))
    t_torch, theirs = timed(lambda: torch_generate(hf, prompt, n, use_cache=False))
    t_torch_cache, _ = timed(lambda: torch_generate(hf, prompt, n, use_cache=True))

    ours_cache, ours_nocache = np.asarray(ours_cache), np.asarray(ours_nocache)
    rows.append(("numpy2gpt, KV cache", t_cache))
    rows.append(("numpy2gpt, no cache", t_nocache))
    rows.append(("PyTorch (HF GPT-2), no cache", t_torch))
    rows.append(("PyTorch (HF GPT-2), HF's KV cache", t_torch_cache))

    shape = f"{config.n_layer} layers, {config.n_head} heads, {config.n_embd} wide, vocab {config.vocab_size}"
    lines = [
        f"Generation, {n} tokens after a {args.prompt_tokens}-token prompt, greedy, batch 1 ({shape}; "
        f"{model.num_params(non_embedding=False) / 1e6:.0f}M parameters, random weights). "
        f"{date.today()}, {platform.machine()}, {os.cpu_count()} cores, 2 threads each, float32.",
        "",
        "| generator | seconds | tokens/s | vs numpy2gpt no cache | vs PyTorch no cache |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, t in rows:
        lines.append(f"| {label} | {t:.2f} | {n / t:.1f} | {t_nocache / t:.2f}x | {t_torch / t:.2f}x |")
    lines += [
        "",
        f"Greedy tokens agreeing before the first difference: numpy2gpt cache vs no cache "
        f"{_agree(ours_cache, ours_nocache, args.prompt_tokens)}/{n}, numpy2gpt vs PyTorch "
        f"{_agree(ours_nocache, theirs, args.prompt_tokens)}/{n}.",
    ]
    table = "\n".join(lines)
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table + "\n")


def _agree(a: np.ndarray, b: np.ndarray, start: int) -> int:
    """How many generated tokens agree before the first difference."""
    diff = np.flatnonzero(a[0, start:] != b[0, start:])
    return int(diff[0]) if diff.size else a.shape[1] - start


if __name__ == "__main__":
    main()
