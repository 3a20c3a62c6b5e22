"""Read OpenAI's GPT-2 weights (Hugging Face layout) for numpy2gpt's GPT (``GPT.from_pretrained`` in model.py).

A Hugging Face GPT-2 checkpoint is a folder with ``config.json`` and ``model.safetensors`` (or the older
``pytorch_model.bin``). Its tensors have nanoGPT's names, with three differences this module undoes:

* Hugging Face's ``Conv1D`` stores a linear layer's weight as (in, out); ``nn.Linear`` wants (out, in), so
  ``c_attn``, ``c_proj``, ``c_fc`` weights are transposed.
* ``lm_head.weight`` is tied to ``transformer.wte.weight`` and usually not stored at all.
* ``attn.bias`` / ``attn.masked_bias`` are buffers (the causal mask), not weights, and are skipped.

GPT-2 uses the tanh approximation of GELU (``gelu_new``), so the config asks for it.

Where the files come from, in order: a local folder or file you name; for a model name (gpt2, gpt2-medium,
gpt2-large, gpt2-xl) the local Hugging Face cache (``HF_HUB_CACHE``, ``HF_HOME/hub`` or
``~/.cache/huggingface/hub``); and only then, if ``huggingface_hub`` is installed and downloads are allowed,
the Hub. Otherwise a ``FileNotFoundError`` says which file is missing and every place it looked.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from numpy2gpt import nn

MODEL_NAMES = {
    "gpt2": ("openai-community/gpt2", "gpt2"),
    "gpt2-medium": ("openai-community/gpt2-medium", "gpt2-medium"),
    "gpt2-large": ("openai-community/gpt2-large", "gpt2-large"),
    "gpt2-xl": ("openai-community/gpt2-xl", "gpt2-xl"),
}
MODEL_SIZES = {"gpt2": (12, 768), "gpt2-medium": (24, 1024), "gpt2-large": (36, 1280), "gpt2-xl": (48, 1600)}
# (n_layer, n_embd) of each name, for estimates made before its weights are read (vocabulary 50257, context 1024)
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
SKIPPED_SUFFIXES = (".attn.bias", ".attn.masked_bias")
GELU_APPROXIMATION = {"gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "gelu": "none"}


def read_config(path: Path) -> dict[str, Any]:
    """A Hugging Face ``config.json``, with a one-line error naming the file if it is not a JSON object."""
    try:
        hf = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(hf, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return hf


def config_from_hf(hf: dict[str, Any]) -> dict[str, Any]:
    """The GPTConfig fields (as a dict) of a Hugging Face GPT-2 ``config.json``, refusing variants we don't
    build."""
    if hf.get("model_type", "gpt2") != "gpt2":
        raise ValueError(f"config.json describes a {hf.get('model_type')!r} model, not GPT-2")
    n_embd = int(hf["n_embd"])
    if hf.get("n_inner") not in (None, 4 * n_embd):
        raise ValueError(f"n_inner={hf['n_inner']} is not supported: numpy2gpt's MLP is 4 * n_embd = {4 * n_embd}")
    activation = hf.get("activation_function", "gelu_new")
    if activation not in GELU_APPROXIMATION:
        raise ValueError(f"activation_function {activation!r} is not supported (only {sorted(GELU_APPROXIMATION)})")
    for flag in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn", "add_cross_attention"):
        if hf.get(flag):
            raise ValueError(f"config.json sets {flag}=true, which numpy2gpt's GPT does not implement")
    if not hf.get("scale_attn_weights", True):
        raise ValueError("config.json sets scale_attn_weights=false, which numpy2gpt's GPT does not implement")
    if abs(float(hf.get("layer_norm_epsilon", 1e-5)) - 1e-5) > 1e-12:
        raise ValueError(f"layer_norm_epsilon={hf['layer_norm_epsilon']} is not supported (numpy2gpt uses 1e-5)")
    return dict(
        block_size=int(hf.get("n_positions", hf.get("n_ctx", 1024))),
        vocab_size=int(hf["vocab_size"]),
        n_layer=int(hf["n_layer"]),
        n_head=int(hf["n_head"]),
        n_embd=n_embd,
        bias=True,
        gelu_approximate=GELU_APPROXIMATION[activation],
    )


def check_sizes(args: dict[str, Any], hf_state: dict[str, np.ndarray], config_file: Path) -> None:
    """Refuse a ``config.json`` whose sizes do not match the weights (``wte`` is (vocab_size, n_embd), ``wpe``
    (n_positions, n_embd)) before a model is built from it: an edited config could ask for any amount of memory."""
    for name, shape in {"wte.weight": (args["vocab_size"], args["n_embd"]),
                        "wpe.weight": (args["block_size"], args["n_embd"])}.items():  # fmt: skip
        array = hf_state.get(name, hf_state.get(f"transformer.{name}"))
        if array is None or array.shape != shape:
            got = None if array is None else array.shape
            raise ValueError(f"{config_file} gives {name} the shape {shape}, but the weights hold {got}")


def read_weights(path: Path) -> dict[str, np.ndarray]:
    """Every tensor in a ``.safetensors`` file (NumPy API of the ``safetensors`` package) or, when torch is
    installed, a ``pytorch_model.bin``."""
    if path.suffix == ".safetensors":
        try:
            from safetensors.numpy import load_file
        except ImportError:
            raise ImportError(
                "reading .safetensors needs the safetensors package: pip install 'numpy2gpt-gpt[pretrained]'"
            ) from None
        try:
            return load_file(str(path))
        except Exception as e:  # the safetensors error types differ between versions
            raise ValueError(f"{path} is not a readable safetensors file: {e}") from None
    try:
        import torch  # optional: only for the legacy pickle format
    except ImportError:
        raise ImportError(
            f"{path.name} is a PyTorch pickle; reading it needs torch (or use model.safetensors)"
        ) from None
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    return {k: v.detach().float().numpy() for k, v in state.items()}


def load_hf_state_dict(model: nn.Module, hf_state: dict[str, np.ndarray]) -> None:
    """Copy Hugging Face GPT-2 tensors into ``model`` (transposing Conv1D weights); every parameter must be
    found with the right shape, and every stored weight must be used."""
    state: dict[str, np.ndarray] = {}
    for key, value in hf_state.items():
        if key.endswith(SKIPPED_SUFFIXES):
            continue
        name = key if key.startswith(("transformer.", "lm_head.")) else f"transformer.{key}"
        if name.endswith(CONV1D):
            value = value.T
        state[name] = value
    if "lm_head.weight" in state:
        tied = state.pop("lm_head.weight")
        if "transformer.wte.weight" in state and not np.array_equal(tied, state["transformer.wte.weight"]):
            raise ValueError("lm_head.weight differs from transformer.wte.weight, but numpy2gpt ties them")

    expected = dict(model.named_parameters())
    expected.pop("lm_head.weight", None)  # the same Parameter as transformer.wte.weight
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise KeyError(f"weights do not match GPT-2's layout: missing {missing[:8]}, unexpected {unexpected[:8]}")
    for name, param in expected.items():
        value = state[name]
        if value.shape != param.shape:
            raise ValueError(f"pretrained tensor {name!r} has shape {value.shape}, but the model expects {param.shape}")
        np.copyto(param.data, value, casting="same_kind")


def resolve(source: str | os.PathLike[str], allow_download: bool | None = None) -> tuple[Path, Path]:
    """(config.json, weight file) for a folder, a weight file, or a model name."""
    path = Path(source).expanduser()
    if path.is_file():
        return _require(path.parent / "config.json", [path.parent]), path
    if path.is_dir():
        return _find_in([path], str(source))
    name = str(source)
    if name not in MODEL_NAMES:
        raise FileNotFoundError(
            f"{name!r} is neither a folder, nor a weight file, nor a known model name ({', '.join(MODEL_NAMES)})"
        )
    snapshots = _cache_snapshots(name)
    try:
        return _find_in(snapshots, name)
    except FileNotFoundError as not_cached:
        if allow_download is None:
            allow_download = not os.environ.get("HF_HUB_OFFLINE")
        if not allow_download:
            raise
        try:
            from huggingface_hub import hf_hub_download
        except ImportError:
            raise not_cached from None
        repo = MODEL_NAMES[name][0]
        try:
            config = Path(hf_hub_download(repo, "config.json"))
            weights = Path(hf_hub_download(repo, "model.safetensors"))
        except Exception as e:
            raise FileNotFoundError(
                f"{not_cached}; downloading {repo} from the Hugging Face Hub failed too: {e}"
            ) from None
        return config, weights


def _cache_snapshots(name: str) -> list[Path]:
    """The snapshot folders of ``name`` in the local Hugging Face cache (newest first)."""
    roots = []
    if os.environ.get("HF_HUB_CACHE"):
        roots.append(Path(os.environ["HF_HUB_CACHE"]))
    if os.environ.get("HF_HOME"):
        roots.append(Path(os.environ["HF_HOME"]) / "hub")
    roots.append(Path.home() / ".cache" / "huggingface" / "hub")
    found = []
    for root in roots:
        for repo in MODEL_NAMES[name]:
            folder = root / ("models--" + repo.replace("/", "--")) / "snapshots"
            if folder.is_dir():
                found.extend(sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True))
            else:
                found.append(folder)
    return found


def _find_in(folders: list[Path], label: str) -> tuple[Path, Path]:
    for folder in folders:
        if (folder / "config.json").is_file():
            for weights in WEIGHT_FILES:
                if (folder / weights).is_file():
                    return folder / "config.json", folder / weights
    looked = "\n  ".join(str(f) for f in folders)
    raise FileNotFoundError(
        f"no GPT-2 weights for {label!r}: need config.json and one of {', '.join(WEIGHT_FILES)}; looked in:\n  {looked}"
    )


def _require(path: Path, looked: list[Path]) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"missing {path.name} (looked in {', '.join(map(str, looked))})")
    return path
