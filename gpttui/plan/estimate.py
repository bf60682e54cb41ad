"""Requirements of a training config: parameters, tokens, FLOPs, memory, time, energy, cost.

Pure arithmetic on a `TrainConfig` (no torch, no files): the caller passes the GPU, a
measured throughput and the dataset size when it knows them. Every figure carries its
basis, so a reader can tell a count from the config from a measurement or an assumption.

Formulas (d = n_embd, L = n_layer, T = block_size, V = vocab_size, B = micro-batch):
- parameters as nanoGPT's GPT instantiates them: per block 12·d² + 2·d (12·d² + 13·d with
  bias), wte V·d (tied with lm_head, counted once), wpe T·d, ln_f d (2·d with bias).
  N = total − wpe is what nanoGPT prints and what its MFU uses.
- FLOPs per trained token: 6·N (Kaplan et al. 2020) and 6·N + 12·L·d·T (the attention
  scores and values, as nanoGPT's `estimate_mfu` counts them, ignoring causal masking).
- activations per layer per micro-batch: 34·B·T·d bytes in 16-bit (Korthikanti et al.
  2022, "Reducing Activation Recomputation", without the 5·a·T²·B attention-score term that
  flash attention never stores); 66·B·T·d in fp32 (masks stay 1 byte).
- logits + loss: the plain path holds all B·T·V logits (`logit_bytes` each); the chunked
  path (`chunked_loss`, gpttui.model.loss) one chunk of rows and the gradients it forms
  (`chunked_loss_bytes`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from gpttui.model.chunking import default_chunk_rows
from gpttui.plan.hardware import GIB, GPUSpec, default_dtype, table_peak

CUDA_CONTEXT_BYTES = int(0.6 * 1e9)  # CUDA context + cuBLAS/cuDNN workspaces, typical
# CPU: what a training process holds besides its tensors (Python, the PyTorch runtime and
# its thread pools, gpttui, the data reader). Measured: peak RSS of a gpttui run of a
# 1-layer, 16-wide model (bench/memory.py, 441-447 MiB with its 13 MB of tensors; PyTorch
# 2.13 CPU, Linux, 2026-11). RSS has no caching-allocator slack, so no fragmentation share.
CPU_RUNTIME_BYTES = 430 * 2**20
# batch_size = "auto" (gpttui.train.setup uses these): CUDA probes powers of two down from
# AUTO_MAX_BATCH for the largest whose step fits AUTO_MEMORY_FRACTION of the GPU; CPU takes 16.
AUTO_MAX_BATCH = 512
AUTO_MEMORY_FRACTION = 0.92
AUTO_CPU_BATCH = 16
FRAGMENTATION = 0.10  # caching-allocator slack on top of what tensors hold
CHINCHILLA_TOKENS_PER_PARAM = 20  # Hoffmann et al. 2022: compute-optimal ~20 tokens/param
MAX_SENSIBLE_EPOCHS = 4  # Muennighoff et al. 2023: repeated data stops paying after ~4
COMPUTED = "computed from config"


@dataclass(frozen=True)
class ParamCount:
    """Parameter counts of nanoGPT's GPT for a config."""

    total: int  # every tensor, tied wte/lm_head once
    nanogpt: int  # total - wpe: what nanoGPT prints ("number of parameters: 40.56M")
    non_embedding: int  # total - wte - wpe
    per_block: int
    wte: int
    wpe: int


def count_params(cfg: Any) -> ParamCount:
    """Exactly what `GPT(GPTConfig(...))` holds for `cfg` (see the module docstring), or
    `ModernGPT` for recipe "modern" (see `modern_params`)."""
    if getattr(cfg, "recipe", "gpt2") == "modern":
        return modern_params(cfg)
    d, bias = cfg.n_embd, bool(cfg.bias)
    per_block = 12 * d * d + (13 * d if bias else 2 * d)
    wte, wpe = cfg.vocab_size * d, cfg.block_size * d
    ln_f = 2 * d if bias else d
    total = cfg.n_layer * per_block + wte + wpe + ln_f
    return ParamCount(total, total - wpe, total - wte - wpe, per_block, wte, wpe)


def modern_params(cfg: Any) -> ParamCount:
    """ModernGPT: per block q, k, v, proj (4·d²) and the MLP (8·d²), no biases, no norm
    gains; wte V·d and an untied lm_head V·d (none with tie_head: the head is wte); no
    position table (rotary). `nanogpt` (the 6N basis) is every parameter that a token's
    matmuls touch: total − wte untied, total tied (the head's matmul uses wte), as nanoGPT
    counts its own tied GPT-2."""
    d = cfg.n_embd
    per_block = 12 * d * d
    wte = cfg.vocab_size * d
    head = 0 if getattr(cfg, "tie_head", False) else wte
    total = cfg.n_layer * per_block + wte + head
    return ParamCount(total, total - wte if head else total, total - wte - head, per_block, wte, 0)


@dataclass(frozen=True)
class Figure:
    """One number with its unit and where it comes from."""

    value: float | int | bool | str | None
    unit: str
    basis: str


@dataclass(frozen=True)
class Estimate:
    """Every requirement of a config, each a `Figure`; `warnings` are one-line strings."""

    device: Figure
    dtype: Figure
    n_gpus: Figure
    params_total: Figure
    params_nanogpt: Figure
    params_non_embedding: Figure
    micro_batch: Figure
    tokens_per_iter: Figure
    total_tokens: Figure
    dataset_tokens: Figure
    epochs: Figure
    tokens_per_param: Figure
    flops_per_token_6n: Figure
    flops_per_token: Figure
    total_flops_6n: Figure
    total_flops: Figure
    mem_weights: Figure
    mem_grads: Figure
    mem_optimizer: Figure
    mem_activations: Figure
    mem_logits: Figure
    mem_overhead: Figure
    mem_total: Figure
    mem_device: Figure
    mem_verdict: Figure
    peak_tflops: Figure
    mfu: Figure
    tokens_per_s: Figure
    time_s: Figure
    power_w: Figure
    energy_kwh: Figure
    cost: Figure
    warnings: tuple[str, ...]

    def figures(self) -> dict[str, Figure]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "warnings"}

    def to_json(self) -> dict[str, Any]:
        """Plain dict: {name: {value, unit, basis}, ..., "warnings": [...]}."""
        out: dict[str, Any] = {name: asdict(fig) for name, fig in self.figures().items()}
        out["warnings"] = list(self.warnings)
        return out


def optimizer_bytes(cfg: Any, params_total: int) -> tuple[int, str]:
    """fp32 optimizer state and its basis: AdamW keeps exp_avg + exp_avg_sq (8 B/param);
    the modern recipe's Muon keeps one momentum buffer (4 B) for the hidden matrices."""
    if getattr(cfg, "recipe", "gpt2") != "modern":
        return 8 * params_total, "AdamW exp_avg + exp_avg_sq, 8 B/param"
    hidden = cfg.n_layer * 12 * cfg.n_embd * cfg.n_embd
    return 4 * hidden + 8 * (params_total - hidden), "Muon momentum 4 B/param (hidden matrices) + AdamW 8 B/param (embedding, head)"


def _param_figures(cfg: Any, pc: ParamCount) -> dict[str, Figure]:
    if getattr(cfg, "recipe", "gpt2") == "modern" and getattr(cfg, "tie_head", False):
        return dict(
            params_total=Figure(pc.total, "params", f"{COMPUTED}: L·12d² + V·d (modern, tie_head: the head is wte)"),
            params_nanogpt=Figure(pc.nanogpt, "params", f"{COMPUTED}: total (the head's matmul uses wte)"),
            params_non_embedding=Figure(pc.non_embedding, "params", f"{COMPUTED}: total − wte"))
    if getattr(cfg, "recipe", "gpt2") == "modern":
        return dict(
            params_total=Figure(pc.total, "params", f"{COMPUTED}: L·12d² + 2·V·d (modern: untied head, rotary, no biases or gains)"),
            params_nanogpt=Figure(pc.nanogpt, "params", f"{COMPUTED}: total − wte (the parameters a token's matmuls use)"),
            params_non_embedding=Figure(pc.non_embedding, "params", f"{COMPUTED}: total − wte − lm_head"))
    return dict(
        params_total=Figure(pc.total, "params", f"{COMPUTED}: L·(12d² + {13 if cfg.bias else 2}d) + V·d + T·d + ln_f"),
        params_nanogpt=Figure(pc.nanogpt, "params", f"{COMPUTED}: total − wpe (what nanoGPT prints)"),
        params_non_embedding=Figure(pc.non_embedding, "params", f"{COMPUTED}: total − wte − wpe"))


def _none(unit: str, why: str) -> Figure:
    return Figure(None, unit, why)


def logit_bytes(dtype: str, compiled: bool) -> tuple[int, str]:
    """Bytes per logit (B·T·V element) at the plain loss's peak, and why.

    Eager 16-bit: 2 + 4 + 4 + 2 (bf16 logits kept by the caller, the fp32 log-softmax the
    loss saves, its fp32 gradient, the 16-bit gradient of the logits). Compiled: inductor
    fuses the upcast and softmax, ~7 B. Calibrated on an H100 (PyTorch 2.11, 2025-11): with
    this accounting the measured peaks of three GPT shapes (seed-000, gpt2-124m, seed-003
    train1) imply 12.4-12.8 B eager and 6.4-7.3 B compiled. fp32: logits, log-softmax, the
    loss's dense gradient and the logits' gradient, 4 B each; measured 15.8 B on CPU
    (bench/memory.py: the peak RSS of C1 grows 203 MiB per sequence of 256 tokens).
    """
    if dtype not in ("bfloat16", "float16"):
        return 16, "4+4+4+4 B (fp32 logits, log-softmax, its gradient, the logits' gradient; measured 15.8 B on CPU)"
    if compiled:
        return 7, "~7 B (torch.compile fuses the loss; measured 6.4-7.3 B on H100)"
    return 12, "2+4+4+2 B (bf16 logits, fp32 log-softmax, its grad, bf16 grad; eager)"


def chunked_loss_bytes(cfg: Any, micro_batch: int, dtype: str) -> tuple[int, str]:
    """Peak bytes of the chunked loss (gpttui.model.loss), and why: one chunk's logits (fp32, 4 B
    per element; 16-bit: + their 2-byte copy for the matmul), the LM head's weight gradient
    formed in the forward (V·d fp32; 16-bit: + the weight's 2-byte copy) and the hidden
    states' gradient (B·T·d fp32). Measured on CPU fp32 (bench/memory.py: C1 and C2 within
    a few % of peak RSS with the rest of this model); the 16-bit bytes are assumed from the
    code, not yet measured on a GPU.
    """
    half = dtype in ("bfloat16", "float16")
    n, v, d = micro_batch * cfg.block_size, cfg.vocab_size, cfg.n_embd
    rows = default_chunk_rows(n, v)
    per = 6 if half else 4
    total = rows * v * per + v * d * (6 if half else 4) + n * d * 4
    why = (f"chunked loss: {rows} rows × V × {per} B + head weight grad V·d·{6 if half else 4} B + "
           f"B·T·d·4 B ({'CPU-measured fp32 model, 16-bit bytes assumed' if half else 'measured on CPU'})")
    return total, why


def memory_bytes(cfg: Any, params_total: int, micro_batch: int, dtype: str,
                 cuda: bool, compiled: bool = False, chunked: bool = False,
                 eval_only: bool = False) -> dict[str, int]:
    """Peak bytes on one device, by part, for one micro-batch of `micro_batch` sequences.

    weights fp32 master (4 B/param), grads fp32 (4), AdamW exp_avg + exp_avg_sq (8);
    activations per Korthikanti et al. plus embeddings (fp32 embedding sum and final
    LayerNorm input, bf16 lm_head input: 10 B per B·T·d); logits + loss: plain B·T·V at
    `logit_bytes(...)` each, chunked `chunked_loss_bytes(...)`; overhead on CUDA = context +
    10 % allocator fragmentation, on CPU the measured runtime (`CPU_RUNTIME_BYTES`).
    `eval_only`: forward passes under no_grad: no gradients, no optimizer state, and one
    layer's activations alive at a time.
    """
    half = dtype in ("bfloat16", "float16")
    btd = micro_batch * cfg.block_size * cfg.n_embd
    act = (34 if half else 66) * btd * (1 if eval_only else cfg.n_layer) + 10 * btd
    if chunked:
        logits = chunked_loss_bytes(cfg, micro_batch, dtype)[0]
    else:
        logits = logit_bytes(dtype, compiled)[0] * micro_batch * cfg.block_size * cfg.vocab_size
    train = 0 if eval_only else 1
    parts = {"weights": 4 * params_total, "grads": 4 * params_total * train,
             "optimizer": optimizer_bytes(cfg, params_total)[0] * train, "activations": act, "logits": logits}
    overhead = int(FRAGMENTATION * sum(parts.values())) + CUDA_CONTEXT_BYTES if cuda else CPU_RUNTIME_BYTES
    parts["overhead"] = overhead
    parts["total"] = sum(parts.values())
    return parts


def estimate(cfg: Any, gpu: GPUSpec | None = None, measured_tokens_per_s: float | None = None,
             dataset_tokens: int | None = None, *, device_kind: str | None = None,
             device_name: str | None = None,
             peak_tflops: float | None = None, peak_basis: str = "",
             memory_bytes_available: int | None = None, power_w: float | None = None) -> Estimate:
    """The requirements of `cfg` on `n_gpus` x `gpu`.

    `gpu=None` means a CPU or a card outside the table: pass `device_kind` ("cpu", "cuda",
    "mps"), its `peak_tflops` (measured) with `peak_basis`, its memory and power when known. The keyword arguments also override
    the table (e.g. NVML's real memory size and power limit of a detected card).
    """
    kind = device_kind or ("cuda" if gpu is not None else "cpu")
    cuda = kind == "cuda"
    dtype = cfg.dtype if cfg.dtype != "auto" else default_dtype(gpu, kind)
    if gpu is not None and peak_tflops is None:
        peak_tflops, peak_basis = table_peak(gpu, dtype)
    name = device_name or (gpu.name if gpu else "CPU")
    mem_avail = memory_bytes_available or (int(gpu.memory_gb * GIB) if gpu else None)
    watts = power_w or (gpu.board_power_w if gpu else None)

    pc = count_params(cfg)
    auto = not isinstance(cfg.batch_size, int)
    mb, mb_basis = auto_micro_batch(cfg, pc.total, dtype, cuda, mem_avail) if auto else (cfg.batch_size, "from config")
    tpi, total = cfg.tokens_per_iter, cfg.total_tokens
    auto_note = "unknown while batch_size = 'auto' (found when the run starts)"
    ds = dataset_tokens if dataset_tokens else (cfg.dataset_tokens or None)
    fpt6 = 6 * pc.nanogpt
    attn = 12 * cfg.n_layer * cfg.n_embd * cfg.block_size
    fpt = fpt6 + attn
    total_why = f"{COMPUTED}: tokens_per_iter × max_iters"
    fpt_why = f"{COMPUTED}: 6·N + 12·L·d·T (attention, as nanoGPT's estimate_mfu)"

    warnings: list[str] = []
    if cfg.eval_only:  # one evaluation (train and val splits), forward passes only
        total = 2 * cfg.eval_iters * mb * cfg.block_size
        total_why = f"{COMPUTED}: eval_only: 2 splits × eval_iters × batch_size × block_size, nothing trained"
        fpt6, fpt = fpt6 // 3, fpt // 3
        fpt_why = f"{COMPUTED}: forward only, 2·N + 4·L·d·T (a third of training's 6·N + 12·L·d·T)"
        measured_tokens_per_s = None  # a training run's tokens/s does not hold for forward passes
        warnings.append(f"eval_only: the run evaluates once ({cfg.eval_iters} batches of each split) and trains nothing")
    if auto:
        warnings.append("batch_size = 'auto': tokens per iteration, time and energy are unknown "
                        f"until the run picks a batch; memory shown for a micro-batch of {mb} ({mb_basis})")
    f = dict(
        device=Figure(name, "", "named with --gpu or in the config, else detected"),
        dtype=Figure(dtype, "", "from config" if cfg.dtype != "auto" else "dtype 'auto' resolved for the device"),
        n_gpus=Figure(cfg.n_gpus, "", "from config (n_gpus)"),
        **_param_figures(cfg, pc),
        micro_batch=Figure(mb, "seq", mb_basis),
        tokens_per_iter=Figure(tpi, "tokens", f"{COMPUTED}: batch_size × block_size × gradient_accumulation_steps" if tpi else auto_note),
        total_tokens=Figure(total, "tokens", total_why if total else auto_note),
        dataset_tokens=Figure(ds, "tokens", "from config / dataset meta.json" if ds else "dataset size unknown (not prepared, dataset_tokens = 0)"),
        flops_per_token_6n=Figure(fpt6, "FLOP", f"{COMPUTED}: {'2' if cfg.eval_only else '6'}·N (N = {pc.nanogpt:,})"),
        flops_per_token=Figure(fpt, "FLOP", fpt_why),
        total_flops_6n=Figure(fpt6 * total if total else None, "FLOP", f"{COMPUTED}: {'2' if cfg.eval_only else '6'}·N × total tokens" if total else auto_note),
        total_flops=Figure(fpt * total if total else None, "FLOP", f"{COMPUTED}: FLOPs/token × total tokens" if total else auto_note),
    )
    f.update(_data_figures(None if cfg.eval_only else total, ds, pc.nanogpt, warnings))
    f.update(_memory_figures(cfg, pc.total, mb, dtype, cuda, mem_avail, warnings))
    f.update(_time_figures(cfg, total, fpt, peak_tflops, peak_basis, measured_tokens_per_s, watts, warnings,
                           cpu_mfu=_cpu_mfu(cfg, kind, fpt, pc.total, mb)))
    return Estimate(**f, warnings=tuple(warnings))


def _data_figures(total: int | None, ds: int | None, n: int, warnings: list[str]) -> dict[str, Figure]:
    out = {}
    if total and ds:
        epochs = total / ds
        out["epochs"] = Figure(epochs, "epochs", f"{COMPUTED}: total tokens / dataset tokens")
        if epochs > MAX_SENSIBLE_EPOCHS:
            warnings.append(f"{epochs:.1f} epochs over the dataset: repeating data more than "
                            f"~{MAX_SENSIBLE_EPOCHS}× mostly adds overfitting; use more data or fewer iters")
    else:
        out["epochs"] = _none("epochs", "needs total tokens and the dataset size")
    if total:
        tpp = total / n
        out["tokens_per_param"] = Figure(tpp, "tokens/param", f"{COMPUTED}: total tokens / N")
        if tpp < CHINCHILLA_TOKENS_PER_PARAM:
            warnings.append(f"{tpp:.3g} tokens per parameter is under Chinchilla's ~20: the model is "
                            "under-trained for its size; train longer or use a smaller model")
    else:
        out["tokens_per_param"] = _none("tokens/param", "needs total tokens")
    return out


def auto_micro_batch(cfg: Any, params_total: int, dtype: str, cuda: bool, avail: int | None) -> tuple[int, str]:
    """The micro-batch `batch_size = "auto"` is expected to pick, and why: on CUDA the largest
    power of two whose estimated peak fits AUTO_MEMORY_FRACTION of the GPU (what the run's
    probe measures for real), so a leaner loss path shows as a larger micro-batch."""
    if not cuda:
        return AUTO_CPU_BATCH, f"batch_size 'auto': {AUTO_CPU_BATCH} off CUDA (as the run)"
    if not avail:
        return 1, "batch_size 'auto': 1 assumed for memory (GPU memory unknown)"
    compiled = cfg.compile is not False
    b = AUTO_MAX_BATCH
    while b > 1 and memory_bytes(cfg, params_total, b, dtype, True, compiled, bool(cfg.chunked_loss))["total"] > AUTO_MEMORY_FRACTION * avail:
        b //= 2
    return b, (f"batch_size 'auto': estimated largest power of two within {AUTO_MEMORY_FRACTION:.0%} of "
               "the GPU (the run probes it)")


def _memory_figures(cfg: Any, params_total: int, mb: int, dtype: str, cuda: bool,
                    avail: int | None, warnings: list[str]) -> dict[str, Figure]:
    compiled = cfg.compile is True or (cfg.compile == "auto" and cuda)
    chunked = bool(cfg.chunked_loss)
    parts = memory_bytes(cfg, params_total, mb, dtype, cuda, compiled, chunked, bool(cfg.eval_only))
    loss_why = chunked_loss_bytes(cfg, mb, dtype)[1] if chunked else (
        f"plain loss (chunked_loss = false): B·T·V × {logit_bytes(dtype, compiled)[1]}")
    per = f"{'per GPU, ' if cuda else ''}micro-batch {mb} × {cfg.block_size}"
    out = {
        "mem_weights": Figure(parts["weights"], "B", f"{COMPUTED}: fp32 master weights, 4 B/param"),
        "mem_grads": Figure(parts["grads"], "B", f"{COMPUTED}: fp32 gradients, 4 B/param" if not cfg.eval_only
                            else "none: eval_only runs no backward pass"),
        "mem_optimizer": Figure(parts["optimizer"], "B", f"{COMPUTED}: {optimizer_bytes(cfg, params_total)[1]}"
                                if not cfg.eval_only else "none: eval_only takes no optimizer step"),
        "mem_activations": Figure(parts["activations"], "B", f"{COMPUTED}: {34 if dtype != 'float32' else 66}·B·T·d per layer (Korthikanti 2022, flash attention) + embeddings, {per}"),
        "mem_logits": Figure(parts["logits"], "B", f"{COMPUTED}: {loss_why}"),
        "mem_overhead": Figure(parts["overhead"], "B", "assumed: CUDA context 0.6 GB + 10 % allocator fragmentation" if cuda
                               else "measured: PyTorch CPU runtime, peak RSS of a 1-layer training run (no allocator slack on CPU)"),
        "mem_total": Figure(parts["total"], "B", f"{COMPUTED} + assumed overhead, {per}"),
        "mem_device": Figure(avail, "B", ("GPU memory" if cuda else "system RAM") if avail else "unknown"),
    }
    if avail:
        share = parts["total"] / avail
        verdict = "fits" if share <= 0.85 else ("tight" if share <= 1.0 else "likely OOM")
        out["mem_verdict"] = Figure(verdict, "", f"estimated peak is {share:.0%} of device memory")
        if verdict == "likely OOM":
            warnings.append(f"likely out of memory: ~{parts['total'] / GIB:.1f} GiB needed of "
                            f"{avail / GIB:.1f} GiB; lower batch_size (raise gradient_accumulation_steps "
                            "to keep tokens per iteration) or block_size")
        elif verdict == "tight":
            warnings.append(f"memory is tight (~{share:.0%} of the device): an OOM is possible; "
                            "torch.compile and a smaller batch_size give headroom")
    else:
        out["mem_verdict"] = _none("", "device memory unknown")
    return out


def _cpu_mfu(cfg: Any, kind: str, fpt: int, params: int, mb: int) -> float | None:
    """On a CPU, the MFU expected for this shape (`gpttui.plan.cpumfu`), unless the config sets its
    own assumed_mfu; None elsewhere."""
    if kind != "cpu" or cfg.assumed_mfu != type(cfg).__dataclass_fields__["assumed_mfu"].default:
        return None
    from gpttui.plan.cpumfu import cpu_mfu

    accum = cfg.gradient_accumulation_steps if isinstance(cfg.gradient_accumulation_steps, int) else 1
    return cpu_mfu(fpt, cfg.vocab_size, params, mb * cfg.block_size * accum)


def _time_figures(cfg: Any, total: int | None, fpt: int, peak: float | None, peak_basis: str,
                  measured_tps: float | None, watts: float | None,
                  warnings: list[str], cpu_mfu: float | None = None) -> dict[str, Figure]:
    n = cfg.n_gpus
    out = {"peak_tflops": Figure(peak, "TFLOPS", peak_basis) if peak else _none("TFLOPS", peak_basis or "no peak known for this device")}
    if measured_tps:
        tps, tps_basis = measured_tps, "measured in a past run of the same shape"
        mfu = tps * fpt / (n * peak * 1e12) if peak else None
        out["mfu"] = Figure(mfu, "", f"measured: tokens/s × FLOPs/token / ({n} × peak)") if mfu else _none("", "needs a peak")
    elif peak and cpu_mfu:
        from gpttui.plan.cpumfu import describe

        tps = n * peak * 1e12 * cpu_mfu / fpt
        tps_basis = f"assumed MFU {cpu_mfu:.0%} of {n} × {peak:.3g} TFLOPS (CPU model by shape)"
        out["mfu"] = Figure(cpu_mfu, "", describe(cpu_mfu))
    elif peak:
        tps = n * peak * 1e12 * cfg.assumed_mfu / fpt
        tps_basis = f"assumed MFU {cfg.assumed_mfu:.0%} of {n} × {peak:.3g} TFLOPS"
        out["mfu"] = Figure(cfg.assumed_mfu, "", f"assumed MFU {cfg.assumed_mfu:.0%} (config assumed_mfu)")
    else:
        tps, tps_basis = None, "no peak or measured throughput for this device"
        out["mfu"] = _none("", tps_basis)
    out["tokens_per_s"] = Figure(tps, "tokens/s", tps_basis) if tps else _none("tokens/s", tps_basis)
    time_s = total / tps if (total and tps) else None
    why = tps_basis if total else "needs total tokens (batch_size 'auto')"
    out["time_s"] = Figure(time_s, "s", f"total tokens / tokens/s ({tps_basis})") if time_s else _none("s", why)
    out["power_w"] = Figure(watts * n, "W", f"assumed: board power {watts:g} W × {n} GPU(s), all the time") if watts else _none("W", "board power unknown")
    if time_s and watts:
        kwh = watts * n * time_s / 3.6e6
        out["energy_kwh"] = Figure(kwh, "kWh", "assumed: GPUs at board power for the whole run (GPUs only, no host or PSU losses)")
        out["cost"] = Figure(kwh * cfg.electricity_price, cfg.currency, f"energy × {cfg.electricity_price:g} {cfg.currency}/kWh (config electricity_price)")
    else:
        out["energy_kwh"] = _none("kWh", "needs time and board power")
        out["cost"] = _none(cfg.currency, "needs energy")
    return out


def cpu_cost_terms(cfg: Any) -> tuple[float, float, float]:
    """`cpumfu.terms` of a TrainConfig (fixed batch size): what bench/cpu_estimate.py fits."""
    from gpttui.plan.cpumfu import terms

    pc = count_params(cfg)
    fpt = 6 * pc.nanogpt + 12 * cfg.n_layer * cfg.n_embd * cfg.block_size
    return terms(fpt, cfg.vocab_size, pc.total, cfg.tokens_per_iter)
