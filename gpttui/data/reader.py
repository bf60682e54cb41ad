"""Random training windows from a prepared dataset's `train.bin` / `val.bin`.

Each batch is `batch_size` windows of `block_size + 1` tokens at random offsets (x is the
window without its last token, y without its first), like nanoGPT's `get_batch`. Offsets
come from seeded NumPy generators whose state is part of every checkpoint, so a resumed
run reads exactly the batches an uninterrupted one would have. There are two streams:
"train" feeds the optimizer, "eval" feeds the loss estimates, so how often a run evaluates
never changes the data it trains on. Under DDP each rank seeds its streams with its rank.

The `.bin` files are memory-mapped afresh for every batch: a long-lived `np.memmap` makes
the process's RSS grow with every page touched (nanoGPT's fix for the same leak).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gpttui.errors import DataError

SPLITS = ("train", "val")
STREAMS = ("train", "eval")
_STATE_VERSION = 1


class BatchReader:
    """(x, y) int64 batches of shape (batch_size, block_size) on `device`."""

    def __init__(
        self,
        dataset_dir: Path | str,
        block_size: int,
        batch_size: int,
        device: str | torch.device,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ):
        self.dir = Path(dataset_dir)
        self.block_size = int(block_size)
        self.batch_size = int(batch_size)
        self.device = torch.device(device)
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        self._pin = self.device.type == "cuda"
        self.tokens: dict[str, int] = {split: self._check(split) for split in SPLITS}
        # Independent streams per (seed, rank, purpose): SeedSequence mixes the entropy so
        # neighbouring seeds or ranks never share a stream.
        self._rng = {
            name: np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, self.rank, i])))
            for i, name in enumerate(STREAMS)
        }

    def _path(self, split: str) -> Path:
        return self.dir / f"{split}.bin"

    def _check(self, split: str) -> int:
        """Token count of a split; DataError if it is missing or too short for one window."""
        path = self._path(split)
        try:
            n = os.path.getsize(path) // 2
        except FileNotFoundError:
            raise DataError(f"dataset {self.dir.name}: {path.name} is missing",
                            "prepare it again with `gpttui prepare` (or delete the folder)") from None
        if n < self.block_size + 1:
            raise DataError(
                f"dataset {self.dir.name}: {split}.bin holds {n} tokens, fewer than block_size + 1 = {self.block_size + 1}",
                "lower block_size, or prepare more data (raise val_fraction for a tiny val split)",
            )
        return n

    def get_batch(self, split: str, stream: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """A random batch from `split`; `stream` defaults to "train" for train, "eval" for val."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return self._batch(split, self._rng[stream or ("train" if split == "train" else "eval")])

    def _batch(self, split: str, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.tokens[split]
        ix = rng.integers(0, n - self.block_size, size=self.batch_size)
        data = np.memmap(self._path(split), dtype=np.uint16, mode="r", shape=(n,))
        win = np.stack([data[i : i + self.block_size + 1] for i in ix]).astype(np.int64)
        del data
        xy = torch.from_numpy(win)
        x, y = xy[:, :-1], xy[:, 1:]
        if self._pin:
            x = x.contiguous().pin_memory().to(self.device, non_blocking=True)
            y = y.contiguous().pin_memory().to(self.device, non_blocking=True)
        else:
            x, y = x.contiguous().to(self.device), y.contiguous().to(self.device)
        return x, y

    # -- exact resume ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Plain-data sampler state (checkpointed with the model)."""
        return {
            "version": _STATE_VERSION,
            "seed": self.seed,
            "rank": self.rank,
            "streams": {name: _pcg_state(rng) for name, rng in self._rng.items()},
        }

    def load_state_dict(self, state: dict[str, Any], streams: tuple[str, ...] = STREAMS) -> None:
        """Continue the streams where `state` left them (only those named in `streams`)."""
        if int(state.get("version", 0)) != _STATE_VERSION:
            raise DataError("checkpoint sampler state has an unknown version", "resume with the gpttui that wrote it")
        for name in streams:
            if name in state["streams"]:
                self._rng[name].bit_generator.state = _from_pcg_state(state["streams"][name])

    def fixed_batches(self, split: str) -> _FixedBatches:
        """The same `batch_size` windows of `split` at every call: a stream seeded by
        (seed, rank, split) alone, used by evaluations with `eval_fixed` so two evals (or
        two runs of one seed and dataset) are scored on identical tokens. It neither reads
        nor moves the "train" and "eval" streams."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        seq = np.random.SeedSequence([self.seed, self.rank, len(STREAMS) + SPLITS.index(split)])
        return _FixedBatches(self, split, np.random.Generator(np.random.PCG64(seq)))

    def reseed(self, offset: int) -> None:
        """Fresh streams derived from (seed, rank, offset): for ranks whose saved state is
        not in the checkpoint (DDP resume keeps rank 0's only)."""
        self._rng = {
            name: np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, self.rank, i, offset])))
            for i, name in enumerate(STREAMS)
        }


class _FixedBatches:
    """`get_batch()` for one evaluation: the k-th call returns the k-th of a fixed sequence."""

    def __init__(self, reader: BatchReader, split: str, rng: np.random.Generator):
        self._reader, self._split, self._rng = reader, split, rng

    def get_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._reader._batch(self._split, self._rng)


def _pcg_state(rng: np.random.Generator) -> dict[str, Any]:
    """PCG64 state as strings/ints that survive torch.save(weights_only) (128-bit ints do not)."""
    st = rng.bit_generator.state
    return {
        "bit_generator": st["bit_generator"],
        "state": str(st["state"]["state"]),
        "inc": str(st["state"]["inc"]),
        "has_uint32": int(st["has_uint32"]),
        "uinteger": int(st["uinteger"]),
    }


def _from_pcg_state(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "bit_generator": d["bit_generator"],
        "state": {"state": int(d["state"]), "inc": int(d["inc"])},
        "has_uint32": int(d["has_uint32"]),
        "uinteger": int(d["uinteger"]),
    }
