"""Muon's Newton–Schulz dtype follows what the device supports (issue #20: it ran in bf16 on
every CUDA card, including T4/V100, which have none)."""

from __future__ import annotations

import torch

from gpttui.model import optim


def test_ns_dtype_is_bf16_only_where_the_card_has_it():
    assert optim.ns_dtype("cuda", bf16_supported=True) == torch.bfloat16
    assert optim.ns_dtype("cuda", bf16_supported=False) == torch.float32  # T4, V100, RTX 20
    assert optim.ns_dtype("cpu", bf16_supported=False) == torch.float32
    assert optim.ns_dtype("cpu", bf16_supported=True) == torch.float32
    assert optim.ns_dtype("mps", bf16_supported=True) == torch.float32


def test_orthogonalize_asks_the_device(monkeypatch):
    seen = []
    real = optim.ns_dtype

    def spy(device_type, bf16_supported):
        seen.append((device_type, bf16_supported))
        return real(device_type, bf16_supported)

    monkeypatch.setattr(optim, "ns_dtype", spy)
    g = torch.randn(2, 8, 4, dtype=torch.float64)
    out = optim.orthogonalize(g)
    assert seen == [("cpu", False)] and out.dtype == torch.float64
    s = torch.linalg.svdvals(out)
    assert ((s > 0.5) & (s < 1.5)).all()
