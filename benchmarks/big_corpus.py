"""Big corpora: peak memory and time of ``prepare`` on a generated 200 MB text file, for each tokenizer, and the
cost of sampling 200 tokens after a 1 MB prompt.

Each ``prepare`` runs in a fresh child process (``python -m numpy2gpt.gpt prepare ...``) and its peak resident
memory is the child's VmHWM, read by ``/usr/bin/time``-free means: the child prints its own ``VmHWM`` at exit.
The generated file (varied English-like lines with some non-ASCII words) is written to a temporary folder and
deleted afterwards.

    python benchmarks/big_corpus.py                  # 200 MB, char + gpt2 + bpe (4096), then sampling
    python benchmarks/big_corpus.py --mb 20 --tokenizers char     # a quick look
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD = """
import sys, runpy
sys.argv = ["numpy2gpt", *sys.argv[1:]]
try:
    runpy.run_module("numpy2gpt.gpt", run_name="__main__")
except SystemExit as e:
    code = e.code
else:
    code = 0
for line in open("/proc/self/status"):
    if line.startswith("VmHWM"):
        print("PEAK", int(line.split()[1]) * 1024, file=sys.stderr)
sys.exit(code)
"""


def make_text(path: Path, megabytes: int) -> None:
    """A varied text of about ``megabytes`` MB: lines of random words from a 2,000-word vocabulary."""
    rng = np.random.default_rng(0)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocab = ["".join(rng.choice(letters, size=rng.integers(2, 10))) for _ in range(2000)]
    vocab += ["naïve", "über", "café", "日本語", "Ελληνικά", "—", "«quoted»"]
    with open(path, "w", encoding="utf-8") as f:
        written = 0
        while written < megabytes * 1_000_000:
            words = rng.choice(vocab, size=(4000, 12))
            block = "\n".join(" ".join(row) + "." for row in words) + "\n"
            f.write(block)
            written += len(block.encode("utf-8"))


def prepare_peak(path: Path, tokenizer: str, out: Path) -> tuple[float, float]:
    """(seconds, peak bytes) of ``numpy2gpt prepare`` on ``path`` in a child process."""
    args = [
        sys.executable,
        "-c",
        CHILD,
        "prepare",
        "--data-file",
        str(path),
        "--tokenizer",
        tokenizer,
        "--out",
        str(out),
    ]
    t0 = time.perf_counter()
    result = subprocess.run(args, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if result.returncode != 0:
        raise SystemExit(f"prepare --tokenizer {tokenizer} failed:\n{result.stderr}")
    peak = next(int(line.split()[1]) for line in result.stderr.splitlines() if line.startswith("PEAK"))
    print(f"  {result.stdout.strip()}")
    return seconds, peak


def sample_cost() -> None:
    """Seconds for 200 new tokens after a 1 MB prompt and after a 10-character one (tiny model, streamed)."""
    import io

    import numpy2gpt.autograd as ag
    from numpy2gpt.gpt.model import GPT, GPTConfig
    from numpy2gpt.gpt.sample import sample_from_model
    from numpy2gpt.gpt.tokenizer import CharTokenizer, GPT2Tokenizer

    rng = np.random.default_rng(0)
    words = ["the", "quick", "brown", "fox", "jumps", "über", "naïve", "日本", "lazy", "dog\n"]
    text = " ".join(rng.choice(words, size=250_000))[: 1 << 20]
    for kind in ("char", "gpt2"):
        tok = CharTokenizer.from_text(text) if kind == "char" else GPT2Tokenizer()
        ag.manual_seed(0)
        model = GPT(GPTConfig(block_size=64, vocab_size=tok.vocab_size, n_layer=1, n_head=2, n_embd=32)).eval()
        meta = {"tokenizer": tok.to_dict(), "vocab_size": tok.vocab_size}
        for label, prompt in (("1 MB prompt", text), ("10-character prompt", text[:10])):
            t0 = time.perf_counter()
            sample_from_model(model, meta, prompt, max_new_tokens=200, stream=io.StringIO(), seed=1)
            print(f"sample, {kind:5s} tokenizer, {label:20s}: {time.perf_counter() - t0:6.2f} s for 200 tokens")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="size of the generated text file (default 200 MB)")
    parser.add_argument("--tokenizers", nargs="+", default=["char", "gpt2", "bpe"])
    parser.add_argument("--no-sample", action="store_true")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.txt"
        make_text(path, args.mb)
        print(f"text file: {path.stat().st_size / 1e6:.0f} MB")
        for tokenizer in args.tokenizers:
            seconds, peak = prepare_peak(path, tokenizer, Path(tmp) / f"data_{tokenizer}")
            print(f"prepare --tokenizer {tokenizer:4s}: {seconds:6.1f} s, peak memory {peak / 2**20:6.0f} MiB")
    if not args.no_sample:
        sample_cost()


if __name__ == "__main__":
    main()
