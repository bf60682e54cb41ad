"""A short completion of the config's fixed prompt at each evaluation.

Sampled (temperature 0.8, top-k 200) from a generator of its own seeded with the run's
seed: the training RNG, and with it exact resume, is untouched, and the same weights always
write the same text, so samples from two evaluations differ only because the model did.
(Greedy decoding was tried first: a young model's greedy text collapses into repeated
whitespace or one repeated word, which says little about what it learned.) It runs on the
plain (uncompiled) model with the KV cache: `sample_tokens` one-token forwards, a small
fraction of an evaluation's `2 x eval_iters` full batches.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from gpttui import events as E

TEMPERATURE = 0.8
TOP_K = 200


def eval_sample(model: Any, cfg: Any, env: Any, run_id: str, iter_num: int, val_loss: float | None) -> E.Sample | None:
    """The Sample for this evaluation, or None when `sample_tokens` is 0."""
    n = int(getattr(cfg, "sample_tokens", 0))
    if n <= 0:
        return None
    from gpttui.tokenizer import EOT, VOCAB, get_encoding

    enc = get_encoding()
    prompt = getattr(cfg, "sample_prompt", "")
    ids = enc.encode_ordinary(prompt) if prompt else [EOT]  # '' = the start of a document
    t0 = time.perf_counter()
    was_training = model.training
    model.eval()
    try:
        idx = torch.tensor([ids], dtype=torch.long, device=env.device)
        gen = torch.Generator(device=idx.device).manual_seed(int(cfg.seed))
        with env.autocast():
            new = [int(t.item()) for t in model.stream(idx, n, temperature=TEMPERATURE, top_k=TOP_K,
                                                       generator=gen, vocab_limit=VOCAB)]
    finally:
        model.train(was_training)
    if EOT in new:  # the document ended: what follows would be another one
        new = new[:new.index(EOT)]
    text = enc.decode(new)
    return E.Sample(run_id, iter=iter_num, prompt=prompt, text=text, val_loss=val_loss,
                    seconds=time.perf_counter() - t0)
