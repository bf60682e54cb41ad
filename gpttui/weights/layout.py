"""nanoGPT's tensor names, the one place that knows them: which keys are buffers to drop,
how the head is tied to the embedding, and the model shape a state dict implies.

Torch-free: it reads only names and `.shape`, so `config.build` (through `init_from`) and
the Hugging Face reader use it without importing torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# causal-mask buffers (nanoGPT's attn.bias, HF's attn.masked_bias): never weights
IGNORED_SUFFIXES = (".attn.bias", ".attn.masked_bias")


def is_buffer(key: str) -> bool:
    return key.endswith(IGNORED_SUFFIXES)


def tied_state(sd: Mapping[str, Any]) -> dict[str, Any]:
    """The weights of `sd` without mask buffers, lm_head filled from wte where absent (GPT-2
    ties them; nanoGPT saves both names, Hugging Face only wte)."""
    state = {k: v for k, v in sd.items() if not is_buffer(k)}
    if "lm_head.weight" not in state and "transformer.wte.weight" in state:
        state["lm_head.weight"] = state["transformer.wte.weight"]
    return state


def state_shape(sd: Mapping[str, Any]) -> dict[str, Any]:
    """n_layer, n_embd, vocab_size, block_size and bias as the tensors of `sd` say them
    (a key is absent when no tensor tells it)."""
    shape: dict[str, Any] = {"bias": "transformer.ln_f.bias" in sd}
    if "transformer.wte.weight" in sd:
        shape["vocab_size"], shape["n_embd"] = sd["transformer.wte.weight"].shape
    if "transformer.wpe.weight" in sd:
        shape["block_size"] = sd["transformer.wpe.weight"].shape[0]
    layers = {k.split(".")[2] for k in sd if k.startswith("transformer.h.")}
    if layers:
        shape["n_layer"] = len(layers)
    return shape
