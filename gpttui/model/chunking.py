"""How the chunked loss splits its rows (torch-free, so the estimator can use it too).

One chunk's fp32 logits hold about `CHUNK_BYTES`: large enough that each chunk's matmuls
run at full speed and the LM head's weight gradient is accumulated only a few times per
micro-batch, small enough to be a small part of the plain path's B·T·V logits.
"""

from __future__ import annotations

CHUNK_BYTES = 64 * 2**20


def default_chunk_rows(n_rows: int, vocab: int) -> int:
    """A power of two with rows x vocab x 4 B <= CHUNK_BYTES (at least 1, at most n_rows)."""
    rows = max(1, CHUNK_BYTES // (4 * vocab))
    rows = 1 << (rows.bit_length() - 1)
    return max(1, min(rows, n_rows))
