"""GPT-2 as in nanoGPT's `model.py`, with a KV cache for linear-time generation.

Module structure and parameter names match nanoGPT exactly (`transformer.wte`,
`transformer.h.N.attn.c_attn`, `lm_head`, ...), so nanoGPT `ckpt.pt` state dicts load
as they are and ours load into nanoGPT. Differences from nanoGPT: attention always goes
through `F.scaled_dot_product_attention` (no causal-mask buffer), and generation runs the
prompt once, then one token per step through a per-layer KV cache.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn as nn
from torch.nn import functional as F

from gpttui.model.generate import Generates, KVCache, attend
from gpttui.model.loss import linear_cross_entropy


class ModelArgs:
    """A model config dataclass as checkpoints keep it (`model_args`): both model classes'."""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Any:
        """From a checkpoint's `model_args`; unknown keys are ignored, missing ones defaulted."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GPTConfig(ModelArgs):
    """Shape of the network. Defaults are nanoGPT's (GPT-2 124M), used for missing fields."""

    block_size: int = 1024  # longest context, in tokens (size of the position table)
    vocab_size: int = 50304  # GPT-2's 50,257 padded up to a multiple of 64 for speed
    n_layer: int = 12  # transformer blocks
    n_head: int = 12  # attention heads per block
    n_embd: int = 768  # residual stream width
    dropout: float = 0.0  # dropout probability (0 for pretraining)
    bias: bool = True  # biases in Linear and LayerNorm, like GPT-2

    @classmethod
    def from_train_config(cls, cfg: Any) -> GPTConfig:
        """The model part of a `gpttui.config.TrainConfig`."""
        return cls(**{f.name: getattr(cfg, f.name) for f in fields(cls)})



class LayerNorm(nn.Module):
    """LayerNorm with an optional bias (PyTorch's has no `bias=False` before 2.1)."""

    def __init__(self, ndim: int, bias: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout_p = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.n_embd = config.n_embd

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        hs = C // self.n_head
        q, k, v = (t.view(B, T, self.n_head, hs).transpose(1, 2) for t in (q, k, v))
        y = attend(q, k, v, cache, self.attn_dropout_p if self.training else 0.0)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-LN transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache)
        return x + self.mlp(self.ln_2(x))


class GPT(Generates, nn.Module):
    """nanoGPT's GPT: token + position embeddings, n_layer blocks, tied LM head."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        assert config.vocab_size is not None and config.block_size is not None
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=LayerNorm(config.n_embd, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying
        # With targets, compute the loss in row chunks without the B·T·V logits (gpttui.model.loss;
        # forward then returns logits None). Not part of GPTConfig: checkpoints stay nanoGPT's.
        self.chunked_loss = True
        self.apply(self._init_weights)
        # GPT-2 paper: scale residual projections by 1/sqrt(2 * n_layer)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def get_num_params(self, non_embedding: bool = True) -> int:
        """Parameters, tied weights counted once; nanoGPT subtracts wpe when non_embedding."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.transformer.wpe.weight.numel()
        return n

    def hidden(self, idx: torch.Tensor, caches: list[KVCache] | None = None) -> torch.Tensor:
        """The final normalised hidden states (B, T, C) for tokens idx (B, T), before the head."""
        _, t = idx.size()
        start = caches[0].pos if caches else 0
        if start + t > self.config.block_size:
            raise ValueError(f"cannot forward {start + t} positions, block size is {self.config.block_size}")
        pos = torch.arange(start, start + t, dtype=torch.long, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for i, block in enumerate(self.transformer.h):
            x = block(x, caches[i] if caches else None)
        return self.transformer.ln_f(x)

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        caches: list[KVCache] | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Logits (B, T, V) and the mean cross-entropy when `targets` is given (logits None
        with `self.chunked_loss`, which never forms them); otherwise the logits of the last
        position only (B, 1, V), as nanoGPT does for inference.
        With `caches`, `idx` continues the cached tokens (positions start at the cache fill)."""
        x = self.hidden(idx, caches)
        if targets is not None and self.chunked_loss:
            return None, linear_cross_entropy(x, self.lm_head.weight, targets, ignore_index=-1)
        if targets is not None:
            logits = self.lm_head(x)
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
            return logits, loss
        return self.lm_head(x[:, [-1], :]), None

    def crop_block_size(self, block_size: int) -> None:
        """Shrink the context (e.g. to sample a 1024-context checkpoint with less memory)."""
        assert block_size <= self.config.block_size
        self.config.block_size = block_size
        self.transformer.wpe.weight = nn.Parameter(self.transformer.wpe.weight[:block_size])

    def configure_optimizers(
        self, weight_decay: float, learning_rate: float, betas: tuple[float, float], device_type: str
    ) -> torch.optim.AdamW:
        """AdamW with nanoGPT's groups: weights with dim >= 2 decay, biases and norms don't;
        fused on CUDA where this torch supports it."""
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        fused = device_type == "cuda" and "fused" in inspect.signature(torch.optim.AdamW).parameters
        extra = {"fused": True} if fused else {}
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, **extra)
