"""Generation shared by both model classes: the per-layer KV cache, attention over it, and
the streaming loop (`Generates.stream`/`generate`) that knows nothing about the UI.

A model class mixes in `Generates` and provides `config` (n_layer, n_head, n_embd,
block_size), `lm_head`, `forward(idx, caches=...)` returning (logits, loss) and, optionally,
`slides` (True where
cached keys carry their own positions, i.e. rotary: a full cache then slides instead of
re-running the context).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F


class KVCache:
    """Keys and values of one layer for positions [0, pos), preallocated to block_size.
    `offset` is the absolute position of slot 0: 0 unless a rotary cache has slid."""

    def __init__(self, batch: int, n_head: int, block_size: int, head_dim: int, like: torch.Tensor):
        shape = (batch, n_head, block_size, head_dim)
        self.k = torch.empty(shape, dtype=like.dtype, device=like.device)
        self.v = torch.empty(shape, dtype=like.dtype, device=like.device)
        self.pos = 0
        self.offset = 0

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B, nh, T, hs) after the cached ones; return all keys and values so far."""
        t = k.size(2)
        self.k[:, :, self.pos : self.pos + t] = k
        self.v[:, :, self.pos : self.pos + t] = v
        self.pos += t
        return self.k[:, :, : self.pos], self.v[:, :, : self.pos]

    def restart(self) -> None:
        """Empty, to re-run a context from position 0 (learned positions cannot slide)."""
        self.pos, self.offset = 0, 0

    def slide(self, keep: int) -> None:
        """Drop the oldest entries, keeping the last `keep`: rotary keys carry their own
        positions, so the kept ones stay valid and no token is re-run."""
        drop = self.pos - keep
        self.k[:, :, :keep] = self.k[:, :, drop : self.pos].clone()
        self.v[:, :, :keep] = self.v[:, :, drop : self.pos].clone()
        self.pos, self.offset = keep, self.offset + drop


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cache: KVCache | None,
           dropout_p: float = 0.0) -> torch.Tensor:
    """Causal attention of q over k, v (B, nh, T, hs); with a cache, the new keys are stored
    first and the queries see every cached position before theirs."""
    if cache is None:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
    start, t = cache.pos, q.size(2)
    k, v = cache.append(k, v)
    if start == 0:  # prefill: plain causal attention over the new tokens
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    if t == 1:  # decode: the new token sees every cached position
        return F.scaled_dot_product_attention(q, k, v)
    # a chunk after cached tokens: query i sees keys [0, start + i]
    mask = torch.ones(t, start + t, dtype=torch.bool, device=q.device).tril(diagonal=start)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def stream_args(idx: torch.Tensor, block_size: int, keep: int | None) -> tuple[torch.Tensor, int]:
    """The prompts as (B, T) and the positions kept when a full cache restarts (default
    block_size // 2), checked."""
    keep = block_size // 2 if keep is None else keep
    if not 1 <= keep <= block_size:
        raise ValueError(f"keep must be in [1, {block_size}], got {keep}")
    if idx.dim() == 1:
        idx = idx.unsqueeze(0)
    if idx.size(1) == 0:
        raise ValueError("the prompt must hold at least one token")
    return idx, keep


def sample_next(
    logits: torch.Tensor, temperature: float, top_k: int | None, generator: torch.Generator | None
) -> torch.Tensor:
    """One token per row of logits (B, V): greedy at temperature 0, else top-k sampling."""
    if temperature <= 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits.float() / temperature
    if top_k is not None and top_k > 0:
        v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
        logits = logits.masked_fill(logits < v[:, [-1]], float("-inf"))
    probs = F.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)


class Generates:
    """`stream` and `generate` for a model class (mixed into GPT and ModernGPT)."""

    slides = False  # rotary models set True: a full cache slides, nothing is re-run

    def new_caches(self, batch: int, like: torch.Tensor) -> list[KVCache]:
        """Empty per-layer KV caches sized to the block, in the dtype/device of `like`."""
        c = self.config
        return [KVCache(batch, c.n_head, c.block_size, c.n_embd // c.n_head, like) for _ in range(c.n_layer)]

    @torch.inference_mode()
    def stream(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
               top_k: int | None = None, generator: torch.Generator | None = None,
               keep: int | None = None, vocab_limit: int | None = None) -> Iterator[torch.Tensor]:
        """Yield `max_new_tokens` next tokens, each a LongTensor (B, 1), for prompts idx (B, T).

        The prompt (cropped to its last block_size tokens) runs once; each new token then
        costs one position through the KV cache. When the cache is full, a rotary model
        slides it to its last `keep` entries; a model with learned absolute positions
        re-runs the last `keep` tokens as a fresh prompt (default block_size // 2: about one
        extra position per token, context never shorter than half a block; `keep =
        block_size` reproduces nanoGPT's "last block_size tokens" window exactly).
        temperature 0 is greedy; every step runs in eval mode, and a training model is left
        in training mode. `vocab_limit` keeps the padding ids (50,257 and up, which no
        tokenizer can decode) from being drawn."""
        bs = self.config.block_size
        idx, keep = stream_args(idx, bs, keep)
        context = idx[:, -bs:]
        caches: list[KVCache] | None = None
        for _ in range(max_new_tokens):
            if caches is None:  # prefill the prompt
                feed, caches = context, self.new_caches(idx.size(0), self.lm_head.weight)
            elif caches[0].pos >= bs and self.slides:
                for cache in caches:
                    cache.slide(min(keep, bs - 1))
                feed = context[:, -1:]
            elif caches[0].pos >= bs:  # full: re-run the last `keep` tokens from position 0
                feed = context[:, -keep:]
                for cache in caches:
                    cache.restart()
            else:
                feed = context[:, -1:]
            logits = self._eval_forward(feed, caches)
            nxt = sample_next(logits[:, -1, :vocab_limit], temperature, top_k, generator)
            context = torch.cat((context, nxt), dim=1)[:, -bs:]
            yield nxt

    def _eval_forward(self, idx: torch.Tensor, caches: list[KVCache]) -> torch.Tensor:
        """Logits in eval mode (no dropout), leaving a training model in training mode."""
        if not self.training:  # the usual case when sampling: no module-tree walks per token
            return self(idx, caches=caches)[0]
        self.eval()
        try:
            return self(idx, caches=caches)[0]
        finally:
            self.train()

    @torch.inference_mode()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, generator: torch.Generator | None = None,
                 keep: int | None = None, vocab_limit: int | None = None) -> torch.Tensor:
        """nanoGPT's signature: idx (B, T) with max_new_tokens appended, via `stream`."""
        if idx.dim() == 1:
            idx = idx.unsqueeze(0)
        new = list(self.stream(idx, max_new_tokens, temperature, top_k, generator, keep, vocab_limit))
        return torch.cat([idx, *new], dim=1) if new else idx
