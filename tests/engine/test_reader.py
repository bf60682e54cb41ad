"""BatchReader: windows, devices, exact-resume state, separate streams, one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from trainutil import write_dataset

from gpttui.data.reader import BatchReader
from gpttui.errors import DataError


def test_batches_are_shifted_windows_of_the_data():
    folder = write_dataset(train_tokens=3000, val_tokens=500)
    r = BatchReader(folder, block_size=16, batch_size=5, device="cpu", seed=1)
    x, y = r.get_batch("train")
    assert x.shape == y.shape == (5, 16) and x.dtype == y.dtype == torch.int64
    assert torch.equal(x[:, 1:], y[:, :-1])
    data = np.fromfile(folder / "train.bin", dtype=np.uint16).astype(np.int64)
    for row in x:  # every row is a real window of train.bin
        starts = np.flatnonzero(np.all(np.lib.stride_tricks.sliding_window_view(data, 16) == row.numpy(), axis=1))
        assert starts.size >= 1
    assert r.tokens == {"train": 3000, "val": 500}


def test_state_dict_resumes_the_exact_sequence():
    folder = write_dataset()
    a = BatchReader(folder, 16, 4, "cpu", seed=7)
    for _ in range(3):
        a.get_batch("train")
    state = a.state_dict()
    expected = [a.get_batch("train")[0] for _ in range(3)]
    b = BatchReader(folder, 16, 4, "cpu", seed=7)
    b.load_state_dict(state)
    got = [b.get_batch("train")[0] for _ in range(3)]
    assert all(torch.equal(e, g) for e, g in zip(expected, got, strict=True))


def test_eval_batches_do_not_move_the_training_stream():
    folder = write_dataset()
    a = BatchReader(folder, 16, 4, "cpu", seed=3)
    b = BatchReader(folder, 16, 4, "cpu", seed=3)
    b.get_batch("val")
    b.get_batch("train", stream="eval")
    assert torch.equal(a.get_batch("train")[0], b.get_batch("train")[0])


def test_ranks_and_seeds_draw_different_batches():
    folder = write_dataset()
    x0 = BatchReader(folder, 16, 8, "cpu", seed=3, rank=0, world_size=2).get_batch("train")[0]
    x1 = BatchReader(folder, 16, 8, "cpu", seed=3, rank=1, world_size=2).get_batch("train")[0]
    x2 = BatchReader(folder, 16, 8, "cpu", seed=4).get_batch("train")[0]
    assert not torch.equal(x0, x1) and not torch.equal(x0, x2)


def test_short_or_missing_split_is_a_one_line_data_error():
    folder = write_dataset(train_tokens=3000, val_tokens=20)
    with pytest.raises(DataError, match=r"val.bin holds 20 tokens, fewer than block_size \+ 1 = 33") as e:
        BatchReader(folder, 32, 4, "cpu", seed=0)
    assert "\n" not in str(e.value) and e.value.hint
    (folder / "val.bin").unlink()
    with pytest.raises(DataError, match="val.bin is missing"):
        BatchReader(folder, 8, 4, "cpu", seed=0)


def test_fixed_batches_repeat_and_leave_the_streams_alone():
    folder = write_dataset()
    r = BatchReader(folder, 16, 4, "cpu", seed=3)
    twin = BatchReader(folder, 16, 4, "cpu", seed=3)
    first = [r.fixed_batches("val").get_batch()[0] for _ in range(1)] + [None]
    a = r.fixed_batches("val")
    b = r.fixed_batches("val")
    seq_a = [a.get_batch()[0] for _ in range(3)]
    seq_b = [b.get_batch()[0] for _ in range(3)]
    assert all(torch.equal(p, q) for p, q in zip(seq_a, seq_b, strict=True))  # same tokens every eval
    assert torch.equal(first[0], seq_a[0])
    assert not torch.equal(seq_a[0], seq_a[1])  # a sequence of batches, not one batch repeated
    assert not torch.equal(r.fixed_batches("train").get_batch()[0], seq_a[0])
    # the random streams are exactly where an untouched reader's are
    assert torch.equal(r.get_batch("train")[0], twin.get_batch("train")[0])
    assert torch.equal(r.get_batch("val")[0], twin.get_batch("val")[0])

