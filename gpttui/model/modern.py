"""The modern recipe's model: GPT-2's shape with what the speedruns found to help.

Same public API as `gpttui.model.gpt.GPT` (`forward(idx, targets=None, caches=None)`,
`get_num_params`, `stream`, `generate`, `new_caches`), so the loop, the sampler and the
estimator treat both alike. The pieces (each can be switched off for the ablation in
`bench/recipe.py`; the defaults are the recipe):

- rotary position embeddings instead of a learned position table (no `wpe`), which also
  lets the KV cache slide when it is full instead of re-running the context;
- QK-norm: RMS-normalised queries and keys before attention;
- ReLU² in the MLP instead of GELU;
- an untied output head (`lm_head` is its own matrix, initialised small);
- optional zero-initialised output projections (`zero_init`, off: it measured worse here);
- optional logit soft-capping `cap · tanh(logits / cap)` (off by default: at our CPU scale it
  cost ~1.5x step time for no measured gain, see bench/RESULTS.md);
- parameter-free RMSNorm everywhere (no gains to tune, none to decay).

References: nanochat `nanochat/gpt.py` and the modded-nanogpt records (our own code).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
from torch.nn import functional as F

from gpttui.model.generate import Generates, KVCache, attend
from gpttui.model.gpt import ModelArgs

RECIPE = "modern"


@dataclass
class ModernConfig(ModelArgs):
    """Shape of the modern network, and which of its pieces are on (all, by default)."""

    block_size: int = 1024  # longest context trained on (rotary has no table to size)
    vocab_size: int = 50304  # GPT-2's 50,257 padded to a multiple of 64
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    logit_softcap: float = 0.0  # cap · tanh(logits / cap), e.g. 15 (nanochat); 0 = off
    rotary: bool = True  # False: learned absolute positions (wpe), as GPT-2
    qk_norm: bool = True
    relu2: bool = True  # False: GELU
    untied: bool = True  # False: lm_head shares the embedding matrix
    zero_init: bool = False  # True: zero output projections (nanochat); measured worse here, see RESULTS.md
    recipe: str = RECIPE  # recorded in checkpoints' model_args

    @classmethod
    def from_train_config(cls, cfg: Any, **pieces: Any) -> ModernConfig:
        keys = ("block_size", "vocab_size", "n_layer", "n_head", "n_embd", "logit_softcap")
        pieces.setdefault("untied", not getattr(cfg, "tie_head", False))
        return cls(**{k: getattr(cfg, k) for k in keys}, **pieces)



def rms_norm(x: torch.Tensor) -> torch.Tensor:
    return F.rms_norm(x, (x.size(-1),))


def rotary_tables(positions: torch.Tensor, head_dim: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin (T, head_dim/2) for absolute `positions`, in fp32."""
    inv = 1.0 / (base ** (torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32) / head_dim))
    angles = positions.float()[:, None] * inv[None, :]
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (first half, second half) of the head dimension of x (B, nh, T, hs)."""
    h = x.size(-1) // 2
    x1, x2 = x[..., :h].float(), x[..., h:].float()
    out = torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return out.to(x.dtype)


class Attention(nn.Module):
    def __init__(self, c: ModernConfig):
        super().__init__()
        d = c.n_embd
        self.n_head, self.head_dim, self.c = c.n_head, d // c.n_head, c
        self.c_q = nn.Linear(d, d, bias=False)
        self.c_k = nn.Linear(d, d, bias=False)
        self.c_v = nn.Linear(d, d, bias=False)
        self.c_proj = nn.Linear(d, d, bias=False)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None,
                cache: KVCache | None) -> torch.Tensor:
        B, T, C = x.size()
        q, k, v = (lin(x).view(B, T, self.n_head, self.head_dim).transpose(1, 2)
                   for lin in (self.c_q, self.c_k, self.c_v))
        if self.c.qk_norm:
            q, k = rms_norm(q), rms_norm(k)
        if rope is not None:
            q, k = apply_rotary(q, *rope), apply_rotary(k, *rope)
        y = attend(q, k, v, cache)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class MLP(nn.Module):
    def __init__(self, c: ModernConfig):
        super().__init__()
        self.c_fc = nn.Linear(c.n_embd, 4 * c.n_embd, bias=False)
        self.c_proj = nn.Linear(4 * c.n_embd, c.n_embd, bias=False)
        self.relu2 = c.relu2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c_fc(x)
        h = F.relu(h).square() if self.relu2 else F.gelu(h)
        return self.c_proj(h)


class Block(nn.Module):
    def __init__(self, c: ModernConfig):
        super().__init__()
        self.attn = Attention(c)
        self.mlp = MLP(c)

    def forward(self, x: torch.Tensor, rope: Any, cache: KVCache | None) -> torch.Tensor:
        x = x + self.attn(rms_norm(x), rope, cache)
        return x + self.mlp(rms_norm(x))


class ModernGPT(Generates, nn.Module):
    """Token embedding (+ rotary in attention), n_layer pre-norm blocks, untied head."""

    def __init__(self, config: ModernConfig):
        super().__init__()
        self.config = c = config
        if c.n_embd % c.n_head or (c.n_embd // c.n_head) % 2:
            raise ValueError("n_embd / n_head must be an even integer for rotary embeddings")
        mods: dict[str, nn.Module] = {"wte": nn.Embedding(c.vocab_size, c.n_embd),
                                      "h": nn.ModuleList([Block(c) for _ in range(c.n_layer)])}
        if not c.rotary:
            mods["wpe"] = nn.Embedding(c.block_size, c.n_embd)
        self.transformer = nn.ModuleDict(mods)
        self.chunked_loss = True  # False: the plain loss over all logits at once (as GPT's)
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        if not c.untied:
            self.transformer.wte.weight = self.lm_head.weight
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Hidden matrices uniform with std 1/sqrt(fan_in) (nanochat); embeddings N(0, 1)
        when untied; the head small (N(0, 0.001)) so the first logits are near uniform;
        output projections zero (or GPT-2's 0.02/sqrt(2L) when zero_init is off)."""
        c = self.config
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                if c.zero_init:
                    nn.init.zeros_(p)
                else:
                    nn.init.normal_(p, std=0.02 / (2 * c.n_layer) ** 0.5)
            elif name.startswith("transformer.h."):
                bound = (3 ** 0.5) / p.size(1) ** 0.5
                nn.init.uniform_(p, -bound, bound)
        if c.untied:
            nn.init.normal_(self.transformer.wte.weight, std=1.0)
            nn.init.normal_(self.lm_head.weight, std=0.001)
        else:
            nn.init.normal_(self.lm_head.weight, std=0.02)
        if not c.rotary:
            nn.init.normal_(self.transformer.wpe.weight, std=0.02)

    def get_num_params(self, non_embedding: bool = True) -> int:
        """Parameters (a tied head counted once); non_embedding subtracts the lookup tables
        (wte when the head is untied, wpe) — what 6N FLOPs per token counts."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            if self.config.untied:
                n -= self.transformer.wte.weight.numel()
            if not self.config.rotary:
                n -= self.transformer.wpe.weight.numel()
        return n

    def hidden(self, idx: torch.Tensor, caches: list[KVCache] | None = None) -> torch.Tensor:
        """The final normalised hidden states (B, T, d) for tokens idx (B, T)."""
        _, t = idx.size()
        start = caches[0].offset + caches[0].pos if caches else 0
        rel = caches[0].pos if caches else 0
        if rel + t > self.config.block_size and not (caches and self.config.rotary):
            raise ValueError(f"cannot forward {rel + t} positions, block size is {self.config.block_size}")
        x = self.transformer.wte(idx)
        rope = None
        if self.config.rotary:
            pos = torch.arange(start, start + t, device=idx.device)
            rope = rotary_tables(pos, self.config.n_embd // self.config.n_head)
        else:
            x = x + self.transformer.wpe(torch.arange(rel, rel + t, device=idx.device))
        x = rms_norm(x)
        for i, block in enumerate(self.transformer.h):
            x = block(x, rope, caches[i] if caches else None)
        return rms_norm(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        z = self.lm_head(x)
        cap = self.config.logit_softcap
        return cap * torch.tanh(z / cap) if cap > 0 else z

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                caches: list[KVCache] | None = None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """With targets: (None, mean cross-entropy) — the full logits are never needed for
        training and are not built at once (the chunked loss). Without: the last position's
        logits (B, 1, V), as GPT does for inference."""
        x = self.hidden(idx, caches)
        if targets is not None:
            return None, modern_loss(x, self.lm_head.weight, targets, self.config.logit_softcap, self.chunked_loss)
        return self.logits(x[:, [-1], :]).float(), None

    # -- generation --------------------------------------------------------------------
    @property
    def slides(self) -> bool:  # rotary keys carry their positions: a full cache slides
        return self.config.rotary


def modern_loss(x: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, softcap: float,
                chunked: bool = True) -> torch.Tensor:
    """Mean cross-entropy of soft-capped logits x @ weight.T, computed in row chunks so the
    (B·T, V) logits are never all alive at once (`gpttui.model.loss`); `chunked=False` forms
    them all (the plain path, for comparison)."""
    from gpttui.model.loss import linear_cross_entropy

    if not chunked:
        z = (x @ weight.t()).float()
        if softcap > 0:
            z = softcap * torch.tanh(z / softcap)
        return F.cross_entropy(z.view(-1, z.size(-1)), targets.reshape(-1), ignore_index=-1)
    return linear_cross_entropy(x.reshape(-1, x.size(-1)), weight, targets.reshape(-1),
                                ignore_index=-1, softcap=softcap if softcap > 0 else None)
