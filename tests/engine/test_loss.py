"""The chunked linear cross-entropy equals the plain `F.cross_entropy(x @ W.T)`: loss and
gradients, fp32 (tight) and bf16 autocast (loose), with ignored targets, a soft-cap,
eval without gradients and torch.compile; and it never creates an N x V tensor."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from gpttui.model.loss import CHUNK_BYTES, default_chunk_rows, linear_cross_entropy


def plain(x: torch.Tensor, w: torch.Tensor, t: torch.Tensor, softcap: float | None = None) -> torch.Tensor:
    z = x @ w.t()
    if softcap is not None:
        z = softcap * torch.tanh(z / softcap)
    z = z.to(torch.promote_types(z.dtype, torch.float32))  # autocast's bf16 logits in fp32
    return F.cross_entropy(z.reshape(-1, z.size(-1)), t.reshape(-1), ignore_index=-1)


def inputs(shape=(3, 40), c=24, v=301, dtype=torch.float32, seed=0, ignore_every=5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, c, generator=g, dtype=dtype).requires_grad_()
    w = (torch.randn(v, c, generator=g, dtype=dtype) * 0.3).requires_grad_()
    t = torch.randint(0, v, shape, generator=g)
    if ignore_every:
        t.view(-1)[::ignore_every] = -1
    return x, w, t


def grads(loss: torch.Tensor, *ts: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return torch.autograd.grad(loss, ts)


@pytest.mark.parametrize("rows", [1, 7, 32, 120, 1000, None])
@pytest.mark.parametrize("softcap", [None, 3.0])
def test_fp32_equals_plain_loss_and_gradients(rows, softcap):
    x, w, t = inputs()
    ref = plain(x, w, t, softcap)
    gx0, gw0 = grads(ref * 0.7, x, w)  # a grad_output other than 1 must scale both
    loss = linear_cross_entropy(x, w, t, chunk_rows=rows, softcap=softcap)
    gx, gw = grads(loss * 0.7, x, w)
    assert loss.dtype == torch.float32 and loss.shape == ()
    torch.testing.assert_close(loss, ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(gx, gx0, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(gw, gw0, rtol=1e-5, atol=1e-7)


def test_float64_is_exact_and_softcap_changes_the_loss():
    x, w, t = inputs(dtype=torch.float64)
    for cap in (None, 0.5):
        ref = plain(x, w, t, cap)
        loss = linear_cross_entropy(x, w, t, chunk_rows=16, softcap=cap)
        assert loss.dtype == torch.float64
        torch.testing.assert_close(loss, ref, rtol=1e-12, atol=1e-12)
        for a, b in zip(grads(loss, x, w), grads(ref, x, w), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-14)
    assert abs(linear_cross_entropy(x, w, t, softcap=0.5).item() - linear_cross_entropy(x, w, t).item()) > 1e-3


def test_ignored_chunks_and_all_ignored():
    x, w, t = inputs(shape=(64,), ignore_every=0)
    t[:32] = -1  # the first two chunks of 16 rows hold no target at all
    loss = linear_cross_entropy(x, w, t, chunk_rows=16)
    ref = plain(x, w, t)
    torch.testing.assert_close(loss, ref, rtol=1e-6, atol=1e-6)
    gx, gw = grads(loss, x, w)
    assert gx[:32].abs().max() == 0 and gx[32:].abs().max() > 0
    torch.testing.assert_close(gw, grads(ref, x, w)[1], rtol=1e-5, atol=1e-7)
    t[:] = -1  # nothing to learn from: nan loss and zero gradients, as F.cross_entropy
    loss = linear_cross_entropy(x, w, t, chunk_rows=16)
    assert math.isnan(loss.item()) and math.isnan(plain(x, w, t).item())
    assert all(g.abs().max() == 0 for g in grads(loss, x, w))


def test_other_ignore_index_and_inputs_without_grad():
    x, w, t = inputs(ignore_every=0)
    t.view(-1)[::3] = 7
    ref = F.cross_entropy((x @ w.t()).reshape(-1, w.size(0)), t.reshape(-1), ignore_index=7)
    torch.testing.assert_close(linear_cross_entropy(x, w, t, ignore_index=7, chunk_rows=9), ref)
    frozen = w.detach()  # only x needs a gradient
    (gx,) = grads(linear_cross_entropy(x, frozen, t, ignore_index=7), x)
    torch.testing.assert_close(gx, grads(ref, x)[0], rtol=1e-5, atol=1e-7)


def test_no_grad_gives_the_same_loss_without_autograd():
    x, w, t = inputs()
    with torch.no_grad():
        loss = linear_cross_entropy(x, w, t, chunk_rows=13, softcap=2.0)
    assert loss.grad_fn is None
    torch.testing.assert_close(loss, plain(x, w, t, 2.0).detach(), rtol=1e-6, atol=1e-6)


def test_bf16_autocast_close_to_plain_autocast_and_fp32():
    x, w, t = inputs(shape=(4, 64), c=64, v=512, ignore_every=9)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref = plain(x, w, t)
        loss = linear_cross_entropy(x, w, t, chunk_rows=48)
    assert loss.dtype == torch.float32
    gx0, gw0 = grads(ref, x, w)
    gx, gw = grads(loss, x, w)
    assert gx.dtype == x.dtype and gw.dtype == w.dtype
    torch.testing.assert_close(loss, ref, rtol=1e-2, atol=1e-2)
    torch.testing.assert_close(loss, plain(x, w, t).detach(), rtol=2e-2, atol=2e-2)
    for a, b in ((gx, gx0), (gw, gw0)):
        assert (a - b).norm() / b.norm() < 2e-2


def test_softcap_under_autocast():
    x, w, t = inputs(shape=(2, 50), c=32, v=257)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref, loss = plain(x, w, t, 4.0), linear_cross_entropy(x, w, t, chunk_rows=30, softcap=4.0)
    torch.testing.assert_close(loss, ref, rtol=1e-2, atol=1e-2)
    for a, b in zip(grads(loss, x, w), grads(ref, x, w), strict=True):
        assert (a - b).norm() / b.norm() < 2e-2


class LargestTensor(TorchDispatchMode):
    """Records the largest number of elements of any tensor an op returns."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for o in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(o, torch.Tensor):
                self.largest = max(self.largest, o.numel())
        return out


def test_never_holds_all_logits():
    x, w, t = inputs(shape=(4, 64), c=16, v=1000)
    n, v = 4 * 64, 1000
    with LargestTensor() as seen:
        loss = linear_cross_entropy(x, w, t, chunk_rows=32, softcap=3.0)
        loss.backward()
    assert seen.largest <= 32 * v < n * v
    with LargestTensor() as seen:
        plain(x, w, t).backward()
    assert seen.largest >= n * v  # the probe sees the plain path's logits


def test_default_chunk_rows():
    assert default_chunk_rows(100_000, 50304) * 50304 * 4 <= CHUNK_BYTES
    r = default_chunk_rows(100_000, 50304)
    assert r & (r - 1) == 0 and r * 2 * 50304 * 4 > CHUNK_BYTES
    assert default_chunk_rows(10, 50304) == 10
    assert default_chunk_rows(5, 10**9) == 1


def test_bad_arguments():
    x, w, t = inputs()
    with pytest.raises(ValueError, match="targets"):
        linear_cross_entropy(x, w, t[:, :-1])
    with pytest.raises(ValueError, match="softcap"):
        linear_cross_entropy(x, w, t, softcap=0.0)


def test_compiled_equals_eager():
    x, w, t = inputs(shape=(2, 48), c=16, v=300)

    def f(x, w, t):
        return linear_cross_entropy(x, w, t, chunk_rows=40, softcap=5.0)

    compiled = torch.compile(f, fullgraph=True)
    loss = compiled(x, w, t)
    ref = plain(x, w, t, 5.0)
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-6)
    for a, b in zip(grads(loss * 2, x, w), grads(ref * 2, x, w), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


# -- in the model ---------------------------------------------------------------------------

def _model_pair(**over):
    from gpttui.model.gpt import GPT, GPTConfig

    cfg = GPTConfig(**{**dict(block_size=32, vocab_size=333, n_layer=2, n_head=2, n_embd=32,
                              dropout=0.0, bias=True), **over})
    torch.manual_seed(0)
    chunked = GPT(cfg)
    plain_model = GPT(cfg)
    plain_model.load_state_dict(chunked.state_dict())
    plain_model.chunked_loss = False
    return chunked, plain_model


def _loss_and_grads(model, x, y):
    model.zero_grad(set_to_none=True)
    logits, loss = model(x, y)
    loss.backward()
    return logits, loss.detach(), {n.removeprefix("_orig_mod."): p.grad.clone() for n, p in model.named_parameters()}


def _batch(v=333, b=3, t=32):
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, v, (b, t), generator=g)
    y = torch.randint(0, v, (b, t), generator=g)
    y[0, :20] = -1  # nanoGPT's ignore_index: part of a row and whole chunks ignored
    return x, y


def test_gpt_chunked_equals_plain_every_parameter():
    chunked, plain_model = _model_pair()
    assert chunked.chunked_loss and "chunked_loss" not in chunked.config.to_dict()
    x, y = _batch()
    logits, loss, g = _loss_and_grads(chunked, x, y)
    plain_logits, ref, g0 = _loss_and_grads(plain_model, x, y)
    assert logits is None and plain_logits.shape == (3, 32, 333)
    torch.testing.assert_close(loss, ref, rtol=1e-6, atol=1e-6)
    assert g.keys() == g0.keys() and len(g) == len(list(chunked.parameters()))
    for name in g:
        torch.testing.assert_close(g[name], g0[name], rtol=1e-5, atol=1e-7, msg=name)
    with torch.no_grad():  # evaluation: the same loss, no autograd
        torch.testing.assert_close(chunked(x, y)[1], ref, rtol=1e-6, atol=1e-6)
    last, none = chunked(x)  # sampling is unchanged: the last position's logits
    assert none is None and last.shape == (3, 1, 333)


def test_gpt_bf16_autocast_close_to_plain():
    chunked, plain_model = _model_pair()
    x, y = _batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, loss, g = _loss_and_grads(chunked, x, y)
        _, ref, g0 = _loss_and_grads(plain_model, x, y)
    torch.testing.assert_close(loss, ref, rtol=2e-2, atol=2e-2)
    for name in g:
        assert (g[name] - g0[name]).norm() <= 5e-2 * g0[name].norm() + 1e-6, name


def test_gpt_compiled_chunked_equals_plain():
    chunked, plain_model = _model_pair(n_layer=1)
    x, y = _batch()
    compiled = torch.compile(chunked)
    _, loss, g = _loss_and_grads(compiled, x, y)
    _, ref, g0 = _loss_and_grads(plain_model, x, y)
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-5)
    for name in g0:
        torch.testing.assert_close(g[name], g0[name], rtol=1e-4, atol=1e-6, msg=name)


def test_a_second_backward_fails_instead_of_scaling_twice():
    x, w, t = inputs()
    loss = linear_cross_entropy(x, w, t)
    loss.backward(retain_graph=True)
    first = w.grad.clone()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()
    torch.testing.assert_close(w.grad, first)
