"""The language-model loss without the full logits tensor.

`linear_cross_entropy(x, weight, targets)` equals
`F.cross_entropy(x @ weight.T, targets, ignore_index=-1)` (optionally with a logit
soft-cap), but never holds all N x V logits: rows go through the LM head in chunks, and
while a chunk's logits exist its gradients for `x` and `weight` are formed at once (the
fused linear cross-entropy of Liger-Kernel, written portably in PyTorch). The backward pass
then only scales the stored gradients by the incoming gradient, so the head costs the same
three matmuls as the plain path and no recomputation.

Memory at the loss's peak is one chunk's logits (fp32, plus its 16-bit copy under autocast)
plus the gradients it produces: N x C for x and V x C fp32 for the weight, instead of
~12 B per element of the whole N x V logits (their fp32 copy, log-softmax and gradient).

Under autocast the matmuls run in the autocast dtype and the softmax, loss and gradient
accumulation in fp32, as `F.cross_entropy` does on autocast logits.
"""

from __future__ import annotations

import torch

from gpttui.model.chunking import CHUNK_BYTES, default_chunk_rows

__all__ = ["CHUNK_BYTES", "default_chunk_rows", "linear_cross_entropy", "token_cross_entropy"]


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype the head's matmul runs in: autocast's when it is on for x's device."""
    kind = x.device.type
    if torch.is_autocast_enabled(kind):
        return torch.get_autocast_dtype(kind)
    return x.dtype


def linear_cross_entropy(
    x: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    *,
    ignore_index: int = -1,
    chunk_rows: int | None = None,
    softcap: float | None = None,
) -> torch.Tensor:
    """Mean cross-entropy of `x @ weight.T` (soft-capped: c·tanh(z/c)) against `targets`.

    x: (N, C) or (B, T, C) hidden states (after the final norm); weight: (V, C), the LM
    head; targets: N (or B x T) class ids, `ignore_index` where no loss is wanted. The mean
    is over the targets that are not ignored (nan when all are, as `F.cross_entropy`).
    `chunk_rows` overrides `default_chunk_rows`.
    """
    c = x.size(-1)
    x2 = x.reshape(-1, c)
    t = targets.reshape(-1)
    if t.numel() != x2.size(0):
        raise ValueError(f"{x2.size(0)} rows of hidden states but {t.numel()} targets")
    if softcap is not None and not softcap > 0:
        raise ValueError(f"softcap must be a positive number, got {softcap}")
    rows = chunk_rows or default_chunk_rows(x2.size(0), weight.size(0))
    cd = compute_dtype(x2)
    need_gx = torch.is_grad_enabled() and x2.requires_grad
    need_gw = torch.is_grad_enabled() and weight.requires_grad
    if not (need_gx or need_gw):
        return _loss_only(x2, weight, t, ignore_index, rows, softcap, cd)
    return _LinearCrossEntropy.apply(x2, weight, t, ignore_index, rows, softcap, cd, need_gx, need_gw)


@torch.no_grad()
def token_cross_entropy(
    x: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    *,
    chunk_rows: int | None = None,
    softcap: float | None = None,
) -> torch.Tensor:
    """Per-row cross-entropy of `x @ weight.T` against `targets` (N fp32 values), the same
    chunks as `linear_cross_entropy` and never all N x V logits: scoring (evals) needs each
    token's loss, not their mean. x: (N, C), weight: (V, C), targets: N ids (all valid)."""
    if targets.numel() != x.size(0):
        raise ValueError(f"{x.size(0)} rows of hidden states but {targets.numel()} targets")
    rows = chunk_rows or default_chunk_rows(x.size(0), weight.size(0))
    cd = compute_dtype(x)
    w = weight.to(cd)
    out = torch.empty(x.size(0), dtype=_acc(cd), device=x.device)
    for i in range(0, x.size(0), rows):
        _, losses, _, _, _ = _chunk_probs(x[i : i + rows].to(cd), w, targets[i : i + rows], -1, softcap)
        out[i : i + rows] = losses
    return out


def _chunk_probs(
    xc: torch.Tensor, w: torch.Tensor, tc: torch.Tensor, ignore_index: int,
    softcap: float | None, want_cap_grad: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """For one chunk: softmax probabilities (fp32, overwriting the logits), the rows' losses
    (0 where ignored), the validity mask (fp32), the safe target ids and, with a soft-cap
    and `want_cap_grad`, the cap's derivative 1 - tanh(z/c)² (one more chunk-sized buffer)."""
    z = xc @ w.t()
    z = z.to(torch.promote_types(z.dtype, torch.float32))  # fp32 at least (fp64 stays fp64)
    cap_grad = None
    if softcap is not None:
        th = z.div_(softcap).tanh_()
        z = th * softcap
        cap_grad = th.mul_(th).neg_().add_(1.0) if want_cap_grad else None
    valid = tc != ignore_index
    safe = torch.where(valid, tc, torch.zeros_like(tc)).unsqueeze(1)
    target_logit = z.gather(1, safe).squeeze(1)
    m = z.amax(dim=1, keepdim=True)
    p = z.sub_(m).exp_()
    s = p.sum(dim=1, keepdim=True)
    p.div_(s)
    lse = (m + s.log()).squeeze(1)
    vf = valid.to(z.dtype)
    return p, (lse - target_logit) * vf, vf, safe, cap_grad


def _acc(cd: torch.dtype) -> torch.dtype:
    """The dtype of the softmax, the loss and the weight gradient: fp32 at least."""
    return torch.promote_types(cd, torch.float32)


def _loss_only(x: torch.Tensor, weight: torch.Tensor, t: torch.Tensor, ignore_index: int,
               rows: int, softcap: float | None, cd: torch.dtype) -> torch.Tensor:
    """The loss value alone (evaluation, no_grad): the same chunks, no gradients."""
    w = weight.to(cd)
    total = torch.zeros((), dtype=_acc(cd), device=x.device)
    for i in range(0, x.size(0), rows):
        _, losses, _, _, _ = _chunk_probs(x[i : i + rows].to(cd), w, t[i : i + rows], ignore_index, softcap)
        total = total + losses.sum()
    return total / (t != ignore_index).sum()


def _narrow(dt: torch.dtype) -> bool:
    """A floating dtype with less exponent range than fp32 (fp16: max 65504, smallest
    subnormal 6e-8), where gradients of ~1/N flush to zero."""
    return dt.is_floating_point and torch.finfo(dt).max < torch.finfo(torch.float32).max / 2


def _wide(dt: torch.dtype) -> torch.dtype:
    """`dt`, or fp32 where `dt` is narrow."""
    return torch.float32 if _narrow(dt) else dt


def _range_scale(xc: torch.Tensor, wmax: torch.Tensor, acc: torch.dtype) -> torch.Tensor:
    """A power of two s for a narrow compute dtype: the chunk's logit gradient (entries in
    [-1, 1]) times s is cast to it, and both matmuls' results stay below 2**14: a column of
    the weight gradient sums at most `rows` entries times max|x|, a row of x's gradient at
    most 2 (sum |softmax - onehot|) times max|w|. Large s lifts small probabilities out of
    the subnormals; a tensor, so no device sync."""
    bound = torch.maximum(xc.abs().amax().to(acc) * xc.size(0), 2 * wmax).clamp(min=2.0**-24)
    return torch.exp2(torch.floor(torch.log2(2.0**14 / bound))).clamp(2.0**-24, 2.0**24)


class _LinearCrossEntropy(torch.autograd.Function):
    """Forward computes the loss and both gradients chunk by chunk; backward scales them
    (in place: backward can run once per forward, as in training)."""

    @staticmethod
    def forward(ctx, x, weight, t, ignore_index, rows, softcap, cd, need_gx, need_gw):  # type: ignore[override]
        n_valid = (t != ignore_index).sum()
        acc = _acc(cd)
        inv = 1.0 / n_valid.clamp(min=1).to(acc)  # all ignored: zero gradients, nan loss
        w = weight.to(cd)
        wmax = w.abs().amax().to(acc) if _narrow(cd) else None
        # gx is kept in a dtype that holds gradients of ~1/N until the backward brings the scale
        gx = torch.empty(x.shape, dtype=_wide(x.dtype), device=x.device) if need_gx else None
        gw = torch.zeros(weight.shape, dtype=acc, device=weight.device) if need_gw else None
        total = torch.zeros((), dtype=acc, device=x.device)
        for i in range(0, x.size(0), rows):
            xc = x[i : i + rows].to(cd)
            p, losses, vf, safe, cap_grad = _chunk_probs(xc, w, t[i : i + rows], ignore_index, softcap, True)
            total = total + losses.sum()
            # d loss / d logits = (softmax - onehot) / n_valid on valid rows, 0 elsewhere. In a
            # narrow dtype (fp16) 1/n_valid folded in before the cast flushed most of the head's
            # gradient to zero (issue #20): there it is applied after the matmuls, in fp32.
            p.scatter_add_(1, safe, -vf.unsqueeze(1))
            s = inv if wmax is None else _range_scale(xc, wmax, acc)
            p.mul_((vf * s).unsqueeze(1))
            if cap_grad is not None:  # through c·tanh(z/c)
                p.mul_(cap_grad)
            g = p.to(cd)
            if wmax is None:  # wide dtype: g already holds the 1/n_valid
                if gx is not None:
                    gx[i : i + rows] = (g @ w).to(gx.dtype)
                if gw is not None:
                    if cd == acc:
                        gw.addmm_(g.t(), xc)
                    else:
                        gw.add_((g.t() @ xc).to(acc))
                continue
            post = inv / s
            if gx is not None:
                gx[i : i + rows] = (g @ w).to(acc).mul_(post).to(gx.dtype)
            if gw is not None:
                gw.add_((g.t() @ xc).to(acc).mul_(post))
        ctx.save_for_backward(gx, gw)
        ctx.weight_dtype, ctx.x_dtype = weight.dtype, x.dtype
        return total / n_valid

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        # In place: no second copy of the gradients. A second backward through the same graph
        # (retain_graph) then fails autograd's saved-tensor version check instead of scaling twice.
        gx, gw = ctx.saved_tensors
        dx = gx.mul_(grad_out).to(ctx.x_dtype) if gx is not None else None
        dw = gw.mul_(grad_out).to(ctx.weight_dtype) if gw is not None else None
        return dx, dw, None, None, None, None, None, None, None

