"""GPT: nanoGPT's parameter names and counts, init, forward, optimizer groups, KV-cache
generation equal to full recomputation, linear generation cost."""

from __future__ import annotations

import math

import pytest
import torch

from gpttui.model.gpt import GPT, GPTConfig

SMALL = dict(block_size=16, vocab_size=101, n_layer=2, n_head=2, n_embd=32, dropout=0.0)


def make(bias: bool = False, double: bool = True, **over) -> GPT:
    torch.manual_seed(0)
    m = GPT(GPTConfig(**{**SMALL, "bias": bias, **over}))
    return m.double() if double else m


def expected_total(V: int, bs: int, L: int, d: int, bias: bool) -> int:
    """Independent count: embeddings + L blocks + final LN; lm_head is tied to wte."""
    block = 12 * d * d + 2 * d  # qkv 3d², proj d², fc 4d², proj 4d², two LN weights
    if bias:
        block += 3 * d + d + 4 * d + d + 2 * d  # Linear biases + LN biases
    return V * d + bs * d + L * block + d + (d if bias else 0)


@pytest.mark.parametrize("bias", [False, True])
def test_param_count_matches_formula(bias):
    cfg = dict(block_size=32, vocab_size=50304, n_layer=2, n_head=4, n_embd=32)
    m = GPT(GPTConfig(**cfg, bias=bias))
    total = expected_total(50304, 32, 2, 32, bias)
    assert m.get_num_params(non_embedding=False) == total
    assert m.get_num_params() == total - 32 * 32  # nanoGPT: minus wpe


@pytest.mark.parametrize("bias", [False, True])
def test_param_count_matches_estimator(bias):
    estimate = pytest.importorskip("gpttui.plan.estimate")
    from gpttui import config

    tc = config.build(dict(n_layer=2, n_head=4, n_embd=32, block_size=32, bias=bias))
    m = GPT(GPTConfig.from_train_config(tc))
    pc = estimate.count_params(tc)
    assert pc.total == m.get_num_params(non_embedding=False)
    assert pc.nanogpt == m.get_num_params()


def test_from_train_config_takes_model_fields():
    from gpttui import config

    tc = config.build(dict(n_layer=3, n_head=2, n_embd=16, block_size=8, dropout=0.1, bias=True))
    assert GPTConfig.from_train_config(tc) == GPTConfig(8, 50304, 3, 2, 16, 0.1, True)


def test_state_dict_keys_are_nanogpts():
    m = make(bias=True)
    per_block = ["ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias",
                 "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight", "ln_2.bias",
                 "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias"]
    want = {"transformer.wte.weight", "transformer.wpe.weight", "transformer.ln_f.weight",
            "transformer.ln_f.bias", "lm_head.weight"}
    want |= {f"transformer.h.{i}.{k}" for i in range(2) for k in per_block}
    assert set(m.state_dict()) == want
    assert m.lm_head.weight is m.transformer.wte.weight


def test_gpt2_init_scales():
    torch.manual_seed(0)
    m = GPT(GPTConfig(block_size=16, vocab_size=512, n_layer=4, n_head=2, n_embd=64, bias=True))
    proj = torch.cat([b.mlp.c_proj.weight.flatten() for b in m.transformer.h])
    fc = torch.cat([b.mlp.c_fc.weight.flatten() for b in m.transformer.h])
    assert proj.std().item() == pytest.approx(0.02 / math.sqrt(2 * 4), rel=0.05)
    assert fc.std().item() == pytest.approx(0.02, rel=0.05)
    assert m.transformer.wte.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert all(b.attn.c_attn.bias.abs().sum() == 0 for b in m.transformer.h)


def test_forward_shapes_and_initial_loss():
    m = make(double=False, vocab_size=1000)
    x = torch.randint(0, 1000, (3, 16))
    y = torch.randint(0, 1000, (3, 16))
    logits, loss = m(x, y)
    assert logits is None  # the chunked loss never forms them (gpttui.model.loss)
    assert loss.item() == pytest.approx(math.log(1000), abs=0.1)
    m.chunked_loss = False  # nanoGPT's path: the logits come back with the loss
    logits, plain_loss = m(x, y)
    assert logits.shape == (3, 16, 1000)
    assert plain_loss.item() == pytest.approx(loss.item(), abs=1e-5)
    logits, loss = m(x)
    assert logits.shape == (3, 1, 1000) and loss is None
    with pytest.raises(ValueError):
        m(torch.zeros(1, 17, dtype=torch.long))


def test_configure_optimizers_decay_groups():
    m = make(bias=True)
    opt = m.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu")
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() < 2 for p in no_decay["params"])
    n = sum(p.numel() for g in opt.param_groups for p in g["params"])
    assert n == m.get_num_params(non_embedding=False)
    assert not opt.defaults.get("fused")


def test_crop_block_size():
    m = make()
    m.crop_block_size(8)
    assert m.transformer.wpe.weight.shape[0] == 8 and m.config.block_size == 8
    assert m(torch.zeros(1, 8, dtype=torch.long))[0].shape == (1, 1, 101)


def naive(m: GPT, prompt: torch.Tensor, n: int, temperature: float, top_k, seed: int | None, keep: int):
    """Reference: re-run the whole window every step, window per `stream`'s documented policy."""
    from gpttui.model.generate import sample_next

    g = torch.Generator().manual_seed(seed) if seed is not None else None
    bs = m.config.block_size
    seq = prompt.clone()
    start = max(0, seq.size(1) - bs)
    m.eval()
    with torch.no_grad():
        for _ in range(n):
            if seq.size(1) - start > bs:
                start = seq.size(1) - keep
            logits, _ = m(seq[:, start:])
            seq = torch.cat([seq, sample_next(logits[:, -1, :], temperature, top_k, g)], dim=1)
    return seq


@pytest.mark.parametrize("keep", [None, 16, 5])
@pytest.mark.parametrize("temperature,top_k,seed", [(0.0, None, None), (1.0, None, 7), (0.8, 10, 3)])
def test_kv_cache_equals_full_recomputation(keep, temperature, top_k, seed):
    m = make()
    prompt = torch.randint(0, 101, (1, 20))  # longer than block_size: cropped
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    got = m.generate(prompt, 40, temperature=temperature, top_k=top_k, generator=g, keep=keep)
    want = naive(m, prompt, 40, temperature, top_k, seed, keep or 8)
    assert torch.equal(got, want)


def test_keep_block_size_is_nanogpt_window():
    """keep = block_size: every step sees exactly the last block_size tokens (nanoGPT)."""
    m = make()
    prompt = torch.randint(0, 101, (1, 3))
    seq = prompt
    with torch.no_grad():
        for _ in range(30):
            logits, _ = m(seq[:, -16:])
            seq = torch.cat([seq, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(m.generate(prompt, 30, temperature=0, keep=16), seq)


def test_batched_generation_equals_single_rows():
    m = make()
    prompts = torch.randint(0, 101, (2, 6))
    both = m.generate(prompts, 12, temperature=0)
    for i in range(2):
        assert torch.equal(both[i : i + 1], m.generate(prompts[i : i + 1], 12, temperature=0))


def count_tokens(m: GPT) -> list[int]:
    seen: list[int] = []
    m.transformer.wte.register_forward_pre_hook(lambda mod, args: seen.append(args[0].numel()))
    return seen


def test_generation_cost_is_linear():
    m = make(block_size=64)
    seen = count_tokens(m)
    prompt = torch.randint(0, 101, (1, 10))
    m.generate(prompt, 40, temperature=0)
    assert sum(seen) == 10 + 39  # prompt once, then one position per new token
    assert len(seen) == 40
    for n in (200, 400):  # far past block_size: a refill of 32 positions every 32 steps
        seen.clear()
        m.generate(prompt, n, temperature=0)
        assert sum(seen) / n < 2.1  # cost per token stays flat as the length doubles


def test_stream_restores_mode_and_builds_no_graph():
    m = make()
    m.train()
    toks = list(m.stream(torch.tensor([1, 2, 3]), 5, temperature=0.0))
    assert m.training
    assert len(toks) == 5 and all(t.shape == (1, 1) and not t.requires_grad for t in toks)
    assert torch.is_grad_enabled()


def test_vocab_limit_and_bad_keep():
    m = make()
    g = torch.Generator().manual_seed(0)
    out = m.generate(torch.tensor([[1]]), 200, temperature=5.0, generator=g, vocab_limit=10)
    assert int(out[:, 1:].max()) < 10
    with pytest.raises(ValueError):
        list(m.stream(torch.tensor([[1]]), 1, keep=17))
