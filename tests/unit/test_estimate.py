"""Estimator figures against independent hand computations."""

from __future__ import annotations

import json

import pytest

from gpttui import config as C
from gpttui import presets as P
from gpttui.plan import estimate as E
from gpttui.plan import report as R
from gpttui.plan import target as T
from gpttui.plan.cpumfu import cpu_mfu
from gpttui.plan.hardware import GIB, lookup_gpu


def hand_count(L, d, V, T, bias):
    """nanoGPT's GPT, tensor by tensor (not the formula the estimator uses)."""
    block = 0
    block += d + (d if bias else 0)                 # ln_1
    block += d * 3 * d + (3 * d if bias else 0)     # attn.c_attn
    block += d * d + (d if bias else 0)             # attn.c_proj
    block += d + (d if bias else 0)                 # ln_2
    block += d * 4 * d + (4 * d if bias else 0)     # mlp.c_fc
    block += 4 * d * d + (d if bias else 0)         # mlp.c_proj
    wte, wpe, ln_f = V * d, T * d, d + (d if bias else 0)
    total = L * block + wte + wpe + ln_f            # lm_head tied to wte
    return total, total - wpe, total - wpe - wte


def cfg_of(**kw):
    base = dict(max_iters=100, warmup_iters=1, lr_decay_iters=100)
    return C.build({**base, **kw})


@pytest.mark.parametrize("L, h, d, bias", [(12, 6, 384, False), (12, 8, 512, False), (6, 6, 384, True),
                                           (3, 4, 64, True), (12, 12, 768, False)])
def test_count_params_matches_hand_count(L, h, d, bias):
    cfg = cfg_of(n_layer=L, n_head=h, n_embd=d, bias=bias)
    pc = E.count_params(cfg)
    assert (pc.total, pc.nanogpt, pc.non_embedding) == hand_count(L, d, 50304, 1024, bias)


@pytest.mark.parametrize("L, h, d, bias, T, V", [(2, 2, 32, False, 16, 50304), (2, 4, 64, True, 32, 50257)])
def test_count_params_equals_real_model(L, h, d, bias, T, V):
    model_mod = pytest.importorskip("gpttui.model.gpt")
    cfg = cfg_of(n_layer=L, n_head=h, n_embd=d, bias=bias, block_size=T, vocab_size=V)
    model = model_mod.GPT(model_mod.GPTConfig.from_train_config(cfg))
    pc = E.count_params(cfg)
    assert pc.total == sum(p.numel() for p in model.parameters())
    assert pc.nanogpt == model.get_num_params()


def test_seed_000_pinned_figures():
    cfg = P.get("seed-000").config()
    est = E.estimate(cfg, lookup_gpu("RTX 4070"))
    assert est.params_nanogpt.value == 40_560_000
    assert est.tokens_per_iter.value == 524_288
    assert est.total_tokens.value == 10_485_760_000
    assert est.flops_per_token_6n.value == 6 * 40_560_000
    assert est.total_flops_6n.value == pytest.approx(2.552e18, rel=1e-3)
    assert est.epochs.value == pytest.approx(10_485_760_000 / 3_680_000_000)
    # attention term: 12 * L * d * T per token, as nanoGPT's estimate_mfu
    assert est.flops_per_token.value - est.flops_per_token_6n.value == 12 * 12 * 384 * 1024
    assert "computed from config" in est.params_nanogpt.basis


@pytest.mark.parametrize("name, nanogpt", [("seed-002-main", 63_517_184), ("seed-002-small", 29_938_560)])
def test_seed_002_counts(name, nanogpt):
    pc = E.count_params(P.get(name).config())
    assert pc.nanogpt == nanogpt
    assert round(pc.nanogpt / 1e6, 2) == {"seed-002-main": 63.52, "seed-002-small": 29.94}[name]


def test_memory_parts_by_hand():
    cfg = cfg_of(n_layer=2, n_head=2, n_embd=64, block_size=128, batch_size=4, compile=False, chunked_loss=False)
    total = hand_count(2, 64, 50304, 128, False)[0]
    m = E.memory_bytes(cfg, total, 4, "bfloat16", cuda=True, compiled=False)
    btd = 4 * 128 * 64
    assert m["weights"] == m["grads"] == 4 * total and m["optimizer"] == 8 * total
    assert m["activations"] == 34 * btd * 2 + 10 * btd
    assert m["logits"] == 12 * 4 * 128 * 50304
    body = 16 * total + m["activations"] + m["logits"]
    assert m["overhead"] == int(0.1 * body) + int(0.6e9)
    assert m["total"] == body + m["overhead"]
    compiled = E.memory_bytes(cfg, total, 4, "bfloat16", cuda=True, compiled=True)
    assert compiled["logits"] == 7 * 4 * 128 * 50304
    cpu = E.memory_bytes(cfg, total, 4, "float32", cuda=False)
    assert cpu["activations"] == 66 * btd * 2 + 10 * btd and cpu["overhead"] == E.CPU_RUNTIME_BYTES
    assert cpu["logits"] == 16 * 4 * 128 * 50304  # fp32 plain: measured 15.8 B per logit on CPU


def test_chunked_loss_memory_by_hand():
    cfg = cfg_of(n_layer=4, n_head=4, n_embd=128, block_size=256, batch_size=8, compile=False, device="cpu")
    assert cfg.chunked_loss  # the default
    total = hand_count(4, 128, 50304, 256, False)[0]
    n, v, d = 8 * 256, 50304, 128
    rows = 256  # 64 MiB / (4 B x 50,304) = 333 rows, rounded down to a power of two
    m = E.memory_bytes(cfg, total, 8, "float32", cuda=False, chunked=True)
    assert m["logits"] == rows * v * 4 + v * d * 4 + n * d * 4
    plain = E.memory_bytes(cfg, total, 8, "float32", cuda=False, chunked=False)
    assert plain["logits"] == 16 * n * v and m["total"] < 0.35 * plain["total"]
    half = E.memory_bytes(cfg, total, 8, "bfloat16", cuda=True, chunked=True)
    assert half["logits"] == rows * v * 6 + v * d * 6 + n * d * 4
    est = E.estimate(cfg, device_kind="cpu")
    assert est.mem_logits.value == m["logits"] and "chunked loss: 256 rows" in est.mem_logits.basis
    off = E.estimate(cfg.replace(chunked_loss=False), device_kind="cpu")
    assert off.mem_logits.value == 16 * n * v and "chunked_loss = false" in off.mem_logits.basis


@pytest.mark.parametrize("cfg_kw, measured_mib", [
    # peak RSS medians of bench/memory.py on a 2-core CPU (bench/RESULTS.md, 2026-11-30)
    (dict(n_layer=4, n_head=4, n_embd=128, batch_size=8, chunked_loss=False), 2275),  # C1 plain
    (dict(n_layer=4, n_head=4, n_embd=128, batch_size=8, chunked_loss=True), 724),  # C1 chunked
    (dict(n_layer=6, n_head=6, n_embd=384, batch_size=4, chunked_loss=False), 1764),  # C2 plain
    (dict(n_layer=6, n_head=6, n_embd=384, batch_size=4, chunked_loss=True), 1207),  # C2 chunked
])
def test_cpu_estimate_within_15_percent_of_measured_peak_rss(cfg_kw, measured_mib):
    cfg = cfg_of(block_size=256, gradient_accumulation_steps=1, dtype="float32", compile=False, device="cpu", **cfg_kw)
    est = E.estimate(cfg, device_kind="cpu").mem_total.value / 2**20
    assert abs(est / measured_mib - 1) <= 0.15, (est, measured_mib)


def test_time_energy_cost_by_hand():
    cfg = P.get("seed-000").config(["assumed_mfu=0.5", "electricity_price=0.25", "currency=USD"])
    gpu = lookup_gpu("RTX 4070")
    est = E.estimate(cfg, gpu)
    flops = (6 * 40_560_000 + 12 * 12 * 384 * 1024) * 10_485_760_000
    seconds = flops / (58.3e12 * 0.5)
    assert est.time_s.value == pytest.approx(seconds)
    assert "assumed MFU 50%" in est.time_s.basis
    kwh = 200 * seconds / 3.6e6
    assert est.energy_kwh.value == pytest.approx(kwh)
    assert est.cost.value == pytest.approx(kwh * 0.25) and est.cost.unit == "USD"


def test_measured_throughput_is_used_and_labelled():
    cfg = P.get("seed-000").config()
    est = E.estimate(cfg, lookup_gpu("RTX 4070"), measured_tokens_per_s=56_000)
    assert est.time_s.value == pytest.approx(10_485_760_000 / 56_000)
    assert est.tokens_per_s.basis.startswith("measured")
    assert est.mfu.value == pytest.approx(56_000 * est.flops_per_token.value / 58.3e12)


def test_multi_gpu_time_scales():
    cfg = P.get("gpt2-124m").config()
    one = E.estimate(cfg.replace(n_gpus=1), lookup_gpu("A100 40GB"))
    eight = E.estimate(cfg, lookup_gpu("A100 40GB"))
    assert one.time_s.value == pytest.approx(8 * eight.time_s.value)
    assert eight.power_w.value == 8 * 400
    assert eight.tokens_per_iter.value == 491_520


def test_warnings():
    gpu = lookup_gpu("RTX 3060 Ti")  # 8 GB
    big = P.get("seed-003-train1").config(["batch_size=32", "compile=false"])
    est = E.estimate(big, gpu)
    assert est.mem_verdict.value == "likely OOM" and any("out of memory" in w for w in est.warnings)
    short = cfg_of(n_layer=12, n_head=12, n_embd=768, batch_size=1, block_size=256,
                   gradient_accumulation_steps=1)
    assert any("Chinchilla" in w for w in E.estimate(short, gpu).warnings)
    many = E.estimate(P.get("seed-000").config(), lookup_gpu("H100"), dataset_tokens=1_000_000_000)
    assert many.epochs.value == pytest.approx(10.48576) and any("epochs" in w for w in many.warnings)
    ok = E.estimate(P.get("seed-000").config(), lookup_gpu("H100"))
    assert ok.warnings == () and ok.mem_verdict.value == "fits"


def test_batch_auto_is_graceful():
    cfg = P.get("seed-000").config(["batch_size=auto"])
    est = E.estimate(cfg, lookup_gpu("RTX 4070"))
    assert est.micro_batch.value == 32 and est.tokens_per_iter.value is None  # the estimated probe's pick
    assert est.total_flops.value is None and est.time_s.value is None and est.energy_kwh.value is None
    assert est.params_nanogpt.value == 40_560_000 and est.mem_total.value > 0
    assert any("'auto'" in w for w in est.warnings)
    json.dumps(est.to_json())


def test_cpu_estimate_uses_given_peak():
    cfg = P.get("demo").config()
    est = E.estimate(cfg, None, device_kind="cpu", device_name="CPU", peak_tflops=0.2,
                     peak_basis="measured fp32 matmul on cpu")
    assert est.dtype.value == "float32" and est.mem_overhead.basis.startswith("measured: PyTorch CPU runtime")
    mfu = cpu_mfu(est.flops_per_token.value, cfg.vocab_size, est.params_total.value, cfg.tokens_per_iter)
    assert est.mfu.value == pytest.approx(mfu) and "CPU model by shape" in est.mfu.basis
    assert est.time_s.value == pytest.approx(cfg.total_tokens * est.flops_per_token.value / (0.2e12 * mfu))
    assert est.peak_tflops.basis.startswith("measured") and est.energy_kwh.value is None
    own = E.estimate(cfg.replace(assumed_mfu=0.5), None, device_kind="cpu", peak_tflops=0.2)
    assert own.mfu.value == 0.5 and "config assumed_mfu" in own.mfu.basis  # the user's own figure wins


def test_every_figure_has_a_basis():
    est = E.estimate(P.get("gpt2-124m").config(), lookup_gpu("A100"))
    for name, fig in est.figures().items():
        assert fig.basis, name
    assert set(est.to_json()) >= {"params_total", "mem_total", "time_s", "warnings"}


def test_dataset_tokens_from_meta_json():
    from gpttui.paths import datasets_dir

    cfg = P.get("seed-002-main").config()  # dataset_tokens = 0 in the preset
    assert T.dataset_tokens(cfg) is None
    folder = datasets_dir() / cfg.dataset  # a small but whole dataset: bins match meta.json
    folder.mkdir(parents=True)
    (folder / "train.bin").write_bytes(b"\0\0" * 1_500_000)
    (folder / "val.bin").write_bytes(b"\0\0" * 1_000)
    (folder / "meta.json").write_text(json.dumps({"splits": {"train": {"tokens": 1_500_000, "documents": 1},
                                                            "val": {"tokens": 1_000, "documents": 1}}}))
    assert T.dataset_tokens(cfg) == 1_500_000
    est, _ = R.build_estimate(cfg, None)
    assert est.epochs.value == pytest.approx(16 * 1024 * 32 * 6000 / 1.5e6)
    (folder / "meta.json").write_text("{broken")
    assert T.dataset_tokens(cfg) is None


def test_gpu_memory_compared_in_gib():
    est = E.estimate(P.get("seed-000").config(), lookup_gpu("RTX 4070"))
    assert est.mem_device.value == 12 * GIB


def test_batch_auto_predicts_the_probe_and_the_chunked_loss_doubles_it():
    gpu = lookup_gpu("RTX 4070")
    picks = {}
    for chunked in (False, True):
        cfg = P.get("seed-000").config(["batch_size=auto", f"chunked_loss={str(chunked).lower()}"])
        est = E.estimate(cfg, gpu)
        b = picks[chunked] = est.micro_batch.value
        assert "largest power of two" in est.micro_batch.basis and b & (b - 1) == 0
        avail = est.mem_device.value
        assert est.mem_total.value <= E.AUTO_MEMORY_FRACTION * avail
        bigger = E.memory_bytes(cfg, est.params_total.value, 2 * b, "bfloat16", cuda=True, compiled=True, chunked=chunked)
        assert bigger["total"] > E.AUTO_MEMORY_FRACTION * avail
        assert any(f"micro-batch of {b}" in w for w in est.warnings)
    assert picks[True] >= 2 * picks[False]
    cpu = E.estimate(P.get("demo").config(["batch_size=auto"]), device_kind="cpu")
    assert cpu.micro_batch.value == E.AUTO_CPU_BATCH
    unknown = E.estimate(P.get("seed-000").config(["batch_size=auto"]), device_kind="cuda")
    assert unknown.micro_batch.value == 1 and "unknown" in unknown.micro_batch.basis


def test_an_eval_only_config_is_estimated_as_one_evaluation():
    """Before: nanoGPT's eval_gpt2.py showed 196.61 B tokens and 281,145 h (its max_iters
    of training, which never runs)."""
    cfg = C.build({"batch_size": 8, "eval_iters": 500, "eval_only": True, "n_layer": 12, "n_head": 12,
                   "n_embd": 768, "block_size": 1024, "vocab_size": 50257, "bias": True}, source="eval_gpt2.py")
    train = E.estimate(cfg.replace(eval_only=False), lookup_gpu("a100"))
    ev = E.estimate(cfg, lookup_gpu("a100"))
    assert ev.total_tokens.value == 2 * 500 * 8 * 1024 and "eval_only" in ev.total_tokens.basis
    assert ev.flops_per_token.value == train.flops_per_token.value // 3  # forward only
    assert ev.time_s.value < 60 < train.time_s.value / 3600
    assert ev.mem_grads.value == 0 and ev.mem_optimizer.value == 0
    assert ev.mem_total.value < train.mem_total.value
    assert ev.tokens_per_param.value is None  # nothing is trained: no Chinchilla warning
    assert any("trains nothing" in w for w in ev.warnings) and not any("Chinchilla" in w for w in ev.warnings)
