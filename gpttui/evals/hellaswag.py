"""HellaSwag completion scoring, as llm.c's and build-nanogpt's `hellaswag.py` do it.

For each example: the context's tokens, then each of the four endings encoded with a
leading space; an ending's score is the mean cross-entropy of its own tokens given
everything before them; the lowest wins (`acc_norm` in their terms). The sum instead of
the mean gives `acc`. The standard error is the binomial one, sqrt(p(1-p)/n).

Fast without changing a score: the four endings of an example are four rows of one batch,
examples of similar length are packed into micro-batches (rows padded on the right, which
a causal model never looks at), and only the endings' positions go through the LM head,
in row chunks (`model.loss.token_cross_entropy`): no full-logits tensor. The softmax runs
over the tokenizer's 50,257 tokens: a padded vocabulary's unused rows (50,304) cannot be
an answer, as in llm.c. A context longer than the model's block keeps its last tokens.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from gpttui.evals.data import Example
from gpttui.model.loss import token_cross_entropy

GPT2_VOCAB = 50257  # the tokenizer's tokens; rows beyond are padding
BATCH_TOKENS = 8192  # padded tokens per micro-batch (rows x longest row)
RANDOM = 0.25  # four endings
# Published acc_norm on the 10,042 validation examples, completion style (llm.c, build-nanogpt):
REFERENCES = {"random": 0.25, "GPT-2 124M": 0.2955, "GPT-2 XL": 0.4893}


@dataclass(frozen=True)
class Rendered:
    """One example's four rows: token ids and where the ending starts in each."""

    rows: tuple[tuple[int, ...], ...]
    starts: tuple[int, ...]  # index of the ending's first token in its row
    label: int

    @property
    def longest(self) -> int:
        return max(len(r) for r in self.rows)


@dataclass(frozen=True)
class Scored:
    """One example's result: per ending the mean and the summed loss of its tokens."""

    mean_loss: tuple[float, ...]
    sum_loss: tuple[float, ...]
    label: int

    @property
    def pred_norm(self) -> int:
        return min(range(len(self.mean_loss)), key=self.mean_loss.__getitem__)

    @property
    def pred(self) -> int:
        return min(range(len(self.sum_loss)), key=self.sum_loss.__getitem__)


@dataclass(frozen=True)
class Summary:
    task: str
    n: int
    acc_norm: float
    acc: float
    stderr: float  # binomial, of acc_norm

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "n": self.n, "acc_norm": self.acc_norm, "acc": self.acc, "stderr": self.stderr}


def stderr(p: float, n: int) -> float:
    return math.sqrt(p * (1 - p) / n) if n else float("nan")


def summarize(scores: Sequence[Scored], task: str = "hellaswag") -> Summary:
    n = len(scores)
    norm = sum(s.pred_norm == s.label for s in scores) / n if n else float("nan")
    acc = sum(s.pred == s.label for s in scores) / n if n else float("nan")
    return Summary(task, n, norm, acc, stderr(norm, n))


def render(ex: Example, enc: Any, block_size: int) -> Rendered:
    """The context's tokens then the ending's (" " + ending), keeping the last `block_size`."""
    ctx = enc.encode_ordinary(ex.ctx)
    rows, starts = [], []
    for ending in ex.endings:
        end = enc.encode_ordinary(" " + ending)
        row = (ctx + end)[-block_size:]
        rows.append(tuple(row))
        starts.append(max(len(row) - len(end), 1))  # the first token has nothing to be predicted from
    return Rendered(tuple(rows), tuple(starts), ex.label)


def pack(rendered: Sequence[Rendered], batch_tokens: int = BATCH_TOKENS) -> list[list[int]]:
    """Example indices in micro-batches: similar lengths together (fewest padded tokens),
    each batch at most `batch_tokens` padded tokens (one example always fits alone)."""
    order = sorted(range(len(rendered)), key=lambda i: rendered[i].longest, reverse=True)
    batches: list[list[int]] = []
    cur: list[int] = []
    cur_rows = 0
    longest = 0
    for i in order:
        r = rendered[i]
        width = max(longest, r.longest)
        if cur and (cur_rows + len(r.rows)) * width > batch_tokens:
            batches.append(cur)
            cur, cur_rows, width = [], 0, r.longest
        cur.append(i)
        cur_rows += len(r.rows)
        longest = width
    if cur:
        batches.append(cur)
    return batches


def _head(model: torch.nn.Module) -> tuple[torch.Tensor, float | None]:
    weight = model.lm_head.weight
    cap = float(getattr(model.config, "logit_softcap", 0.0) or 0.0)
    return weight[:GPT2_VOCAB] if weight.size(0) > GPT2_VOCAB else weight, cap if cap > 0 else None


def _batch(model: torch.nn.Module, items: Sequence[Rendered], device: Any) -> list[tuple[list[float], list[float]]]:
    """One forward over every row of `items`; per example (means, sums) of its endings."""
    rows = [r for it in items for r in it.rows]
    width = max(len(r) for r in rows)
    idx = torch.zeros((len(rows), width), dtype=torch.long)
    tgt = torch.full((len(rows), width), -1, dtype=torch.long)
    k = 0
    for it in items:
        for row, start in zip(it.rows, it.starts, strict=True):
            t = torch.tensor(row, dtype=torch.long)
            idx[k, : len(row)] = t
            tgt[k, start - 1 : len(row) - 1] = t[start:]  # position j predicts token j + 1
            k += 1
    idx, tgt = idx.to(device), tgt.to(device)
    x = model.hidden(idx)
    mask = tgt != -1
    weight, cap = _head(model)
    losses = token_cross_entropy(x[mask], weight, tgt[mask], softcap=cap)
    row_of = torch.arange(len(rows), device=device).unsqueeze(1).expand_as(tgt)[mask]
    sums = torch.zeros(len(rows), dtype=losses.dtype, device=device).index_add_(0, row_of, losses)
    counts = mask.sum(dim=1).to(losses.dtype)
    sums_l, means_l = sums.tolist(), (sums / counts).tolist()
    out, k = [], 0
    for it in items:
        n = len(it.rows)
        out.append((means_l[k : k + n], sums_l[k : k + n]))
        k += n
    return out


@torch.no_grad()
def score_rendered(
    model: torch.nn.Module,
    rendered: Sequence[Rendered],
    device: Any = "cpu",
    autocast: Callable[[], Any] = contextlib.nullcontext,
    batch_tokens: int = BATCH_TOKENS,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[Scored] | None:
    """Scores in the order of `rendered` (None when `should_stop` said so midway)."""
    was_training = model.training
    model.eval()
    out: list[Scored | None] = [None] * len(rendered)
    done = 0
    try:
        for batch in pack(rendered, batch_tokens):
            with autocast():
                res = _batch(model, [rendered[i] for i in batch], device)
            for i, (means, sums) in zip(batch, res, strict=True):
                out[i] = Scored(tuple(means), tuple(sums), rendered[i].label)
            done += len(batch)
            if progress is not None:
                progress(done, len(rendered))
            if should_stop is not None and should_stop():
                return None
    finally:
        model.train(was_training)
    return out  # type: ignore[return-value]


def score(model: torch.nn.Module, examples: Sequence[Example], block_size: int, **kw: Any) -> list[Scored]:
    """Tokenize (GPT-2's tokenizer) and score `examples`; see `score_rendered`."""
    from gpttui.tokenizer import get_encoding

    enc = get_encoding()
    return score_rendered(model, [render(ex, enc, block_size) for ex in examples], **kw)  # type: ignore[return-value]
