"""HellaSwag inside the training loop: a fixed, seeded subset scored at every k-th evaluation.

The subset is the first n examples of one seeded permutation of the validation split (seed
1337 whatever the run's seed), so every run and every evaluation of a run scores the same
examples, and a smaller subset is a prefix of a larger one. n = `hellaswag_examples`, or
(0 = auto) as many as cost about 10 % of the loop's own evaluation, computed from forward
FLOPs (`auto_examples`): the evaluation forwards 2 x eval_iters x batch_size x block_size
tokens through the body and the head; a HellaSwag example forwards ~365 padded tokens
through the body and ~126 ending tokens through the head (both measured over the 10,042
examples with GPT-2's tokenizer and this module's packing). bench/evals.py measures the
resulting time ratio. Missing data never fails a run: one warning, then the loop goes on.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import Any

from gpttui import events as E

SUBSET_SEED = 1337
COST_FRACTION = 0.10
BODY_TOKENS_PER_EXAMPLE = 365.4  # mean padded tokens per example (4 rows, packed), measured
HEAD_TOKENS_PER_EXAMPLE = 126.0  # mean ending tokens per example (4 endings), measured
MEAN_CONTEXT = 91  # mean longest row: the attention span of a HellaSwag token (~half of it)


def _flops_per_token(cfg: Any, span: float) -> tuple[float, float]:
    """Forward FLOPs per token of (body, head) at a mean attention span `span`."""
    body = 2 * 12 * cfg.n_layer * cfg.n_embd ** 2 + 4 * cfg.n_layer * span * cfg.n_embd
    return body, 2.0 * cfg.n_embd * cfg.vocab_size


def auto_examples(cfg: Any, fraction: float = COST_FRACTION) -> int:
    """How many examples cost `fraction` of one loop evaluation's forward FLOPs (≥ 1)."""
    from gpttui.evals.data import FULL_ROWS

    block = int(cfg.block_size)
    batch = cfg.batch_size if isinstance(cfg.batch_size, int) else 1  # 'auto': the smallest guess
    body, head = _flops_per_token(cfg, block / 2)
    eval_flops = 2 * cfg.eval_iters * batch * block * (body + head)
    body_h, head_h = _flops_per_token(cfg, min(MEAN_CONTEXT, block) / 2)
    per_example = BODY_TOKENS_PER_EXAMPLE * body_h + HEAD_TOKENS_PER_EXAMPLE * head_h
    return max(1, min(FULL_ROWS, math.floor(fraction * eval_flops / per_example)))


def subset_indices(n: int, total: int) -> list[int]:
    """The first n of the fixed permutation, in file order."""
    order = list(range(total))
    random.Random(SUBSET_SEED).shuffle(order)
    return sorted(order[:n])


class LoopTask:
    """Owned by the loop (rank 0): `run` at each evaluation, returns the event or None."""

    def __init__(self, cfg: Any, log: Callable[[str, str], None]):
        self.cfg, self.log = cfg, log
        self.every = int(cfg.hellaswag_every)
        self.n = int(cfg.hellaswag_examples) or auto_examples(cfg)
        self._rendered: list[Any] | None = None
        self._off = self.every <= 0

    def _prepare(self) -> bool:
        from gpttui.evals import data

        if not data.available():
            self._off = True
            self.log(f"HellaSwag skipped in this run: no data in {data.task_dir()} "
                     "(run `gpttui eval --download` once; hellaswag_every = 0 turns this check off)", "warning")
            return False
        from gpttui.evals.hellaswag import render
        from gpttui.tokenizer import get_encoding

        try:
            examples = data.load_examples()
        except data.DataError as e:
            self._off = True
            self.log(f"HellaSwag skipped in this run: {e}", "warning")
            return False
        enc = get_encoding()
        picked = subset_indices(min(self.n, len(examples)), len(examples))
        self._rendered = [render(examples[i], enc, self.cfg.block_size) for i in picked]
        self.log(f"HellaSwag: {len(picked):,} fixed examples at every "
                 f"{'' if self.every == 1 else f'{self.every}th '}evaluation"
                 f"{' (auto: ~10% of an evaluation' + chr(39) + 's compute)' if not self.cfg.hellaswag_examples else ''}",
                 "info")
        return True

    def run(self, model: Any, env: Any, run_id: str, it: int, tokens_seen: int,
            should_stop: Callable[[], bool]) -> E.TaskEval | None:
        if self._off:
            return None
        due = (it // max(1, self.cfg.eval_interval)) % self.every == 0  # by iteration: a resume keeps the rhythm
        if not due or (self._rendered is None and not self._prepare()):
            return None
        from gpttui.evals.hellaswag import score_rendered, summarize

        t0 = time.perf_counter()
        scores = score_rendered(model, self._rendered, device=env.device, autocast=env.autocast,
                                should_stop=should_stop)
        if scores is None:
            return None
        s = summarize(scores)
        return E.TaskEval(run_id, iter=it, task="hellaswag", acc_norm=s.acc_norm, acc=s.acc, stderr=s.stderr,
                          n=s.n, seconds=time.perf_counter() - t0, tokens_seen=tokens_seen)
