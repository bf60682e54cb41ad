"""Devices: a peak-FLOPS table of common GPUs, NVML detection and sampling, measured peaks.

Everything here is light: NVML (`pynvml`) is imported only inside functions and wrapped so
that a machine without a GPU, driver or library just gets a CPU `DeviceInfo`. torch is
imported only by `measured_matmul_tflops`, for CPUs and cards the table does not know.

Peak figures are *dense* tensor-core TFLOPS for fp16/bf16 inputs with fp32 accumulate,
which is what PyTorch's matmuls use (cuBLAS accumulates half-precision GEMMs in fp32).
GeForce cards do that at half the rate NVIDIA markets (the marketing figure is for fp16
accumulate), so an RTX 4070 is 58.3 TFLOPS here, not 116.6; data-center and professional
cards run fp32 accumulate at full rate. `fp32_tflops` is the non-tensor FP32 rate.
"""

from __future__ import annotations

import functools
import os
import platform
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass

from gpttui.fmt import short_dtype
from gpttui.plan.hostmem import cpu_model, total_ram

GIB = 1024**3


@dataclass(frozen=True)
class GPUSpec:
    """Peak rates (TFLOPS, dense), memory and board power of one GPU model."""

    name: str
    bf16_tflops: float | None  # None: no bf16 tensor cores (Turing, Volta)
    fp16_tflops: float
    fp32_tflops: float
    memory_gb: float  # GPU memory sizes are binary: 12 "GB" = 12 GiB
    board_power_w: float

    def tflops(self, dtype: str) -> float | None:
        """Peak for a torch dtype name ('bfloat16', 'float16', 'float32')."""
        return {"bfloat16": self.bf16_tflops, "float16": self.fp16_tflops,
                "float32": self.fp32_tflops}.get(dtype)


def _sm(name: str, sms: int, boost_ghz: float, mem: float, watts: float, acc: int = 512) -> GPUSpec:
    """A GeForce/pro spec from SM count and boost clock.

    Ampere/Ada/Blackwell SMs do 512 fp16/bf16 FLOP/clock with fp32 accumulate on GeForce
    (1024 on professional cards: `acc=1024`) and 256 FP32 FLOP/clock (128 cores x FMA).
    """
    half = round(sms * boost_ghz * acc / 1000, 1)
    return GPUSpec(name, half, half, round(sms * boost_ghz * 256 / 1000, 1), mem, watts)


# (model token, qualifiers it requires, qualifiers it tolerates, spec). Order matters only
# between entries that differ by memory size: the first is the default ("A100" = 80 GB).
_TABLE: list[tuple[str, frozenset[str], frozenset[str], GPUSpec]] = []


def _add(model: str, quals: str, spec: GPUSpec, optional: str = "") -> None:
    _TABLE.append((model, frozenset(quals.split()), frozenset(optional.split()), spec))


# GeForce RTX 30 (Ampere GA10x). Source: NVIDIA Ampere GA102 whitepaper, "Peak FP16 Tensor
# TFLOPS with FP32 Accumulate" (RTX 3090: 71/142 dense/sparse); SM counts and boost clocks
# from the product pages. bf16 runs at the fp16 rate.
_add("3060", "", _sm("RTX 3060", 28, 1.777, 12, 170))
_add("3060", "ti", _sm("RTX 3060 Ti", 38, 1.665, 8, 200))
_add("3070", "", _sm("RTX 3070", 46, 1.725, 8, 220))
_add("3080", "", _sm("RTX 3080", 68, 1.710, 10, 320))
_add("3080", "ti", _sm("RTX 3080 Ti", 80, 1.665, 12, 350))
_add("3090", "", _sm("RTX 3090", 82, 1.695, 24, 350))
_add("3090", "ti", _sm("RTX 3090 Ti", 84, 1.860, 24, 450))
# GeForce RTX 40 (Ada AD10x). Source: NVIDIA Ada whitepaper appendix (RTX 4090: 165.2 dense
# fp16/bf16 with fp32 accumulate, 330.3 with fp16 accumulate); same 512 FLOP/clk/SM.
# RTX 4070: 46 SMs x 2.475 GHz x 512 = 58.3. The 4060 Ti also ships with 16 GB (NVML reports
# the real size when detected).
_add("4060", "", _sm("RTX 4060", 24, 2.460, 8, 115))
_add("4060", "ti", _sm("RTX 4060 Ti", 34, 2.535, 8, 160))
_add("4070", "", _sm("RTX 4070", 46, 2.475, 12, 200))
_add("4070", "super", _sm("RTX 4070 Super", 56, 2.475, 12, 220))
_add("4070", "ti", _sm("RTX 4070 Ti", 60, 2.610, 12, 285))
_add("4070", "ti super", _sm("RTX 4070 Ti Super", 66, 2.610, 16, 285))
_add("4080", "", _sm("RTX 4080", 76, 2.505, 16, 320))
_add("4080", "super", _sm("RTX 4080 Super", 80, 2.550, 16, 320))
_add("4090", "", _sm("RTX 4090", 128, 2.520, 24, 450))
# GeForce RTX 50 (Blackwell GB20x). Source: NVIDIA RTX Blackwell GPU architecture whitepaper
# (RTX 5090: 209.5 dense fp16/bf16 with fp32 accumulate, 170 SMs x 2.407 GHz x 512).
_add("5070", "", _sm("RTX 5070", 48, 2.512, 12, 250))
_add("5070", "ti", _sm("RTX 5070 Ti", 70, 2.452, 16, 300))
_add("5080", "", _sm("RTX 5080", 84, 2.617, 16, 360))
_add("5090", "", _sm("RTX 5090", 170, 2.407, 32, 575))
# Professional cards accumulate in fp32 at full rate (1024 FLOP/clk/SM). Source: GA102
# whitepaper (RTX A6000 154.8 dense) and the RTX 6000 Ada datasheet (364.2 dense).
_add("a6000", "", _sm("RTX A6000", 84, 1.800, 48, 300, acc=1024))
_add("6000", "ada", _sm("RTX 6000 Ada", 142, 2.505, 48, 300, acc=1024))
# Data-center cards: figures from NVIDIA's datasheets (dense, i.e. half the "with sparsity"
# numbers). A100: 312 bf16/fp16, 19.5 FP32, SXM 400 W (PCIe 250-300 W; NVML's power limit
# replaces the table's when detected). H100 SXM 989 / PCIe 756, H200 989 (SXM).
_add("a100", "", GPUSpec("A100 80GB", 312, 312, 19.5, 80, 400), optional="sxm pcie")
_add("a100", "", GPUSpec("A100 40GB", 312, 312, 19.5, 40, 400), optional="sxm pcie")
_add("h100", "", GPUSpec("H100 SXM", 989, 989, 67, 80, 700), optional="sxm")
_add("h100", "pcie", GPUSpec("H100 PCIe", 756, 756, 51, 80, 350))
_add("h200", "", GPUSpec("H200", 989, 989, 67, 141, 700), optional="sxm")
_add("a10", "", GPUSpec("A10", 125, 125, 31.2, 24, 150))
_add("l4", "", GPUSpec("L4", 121, 121, 30.3, 24, 72))
_add("l40", "s", GPUSpec("L40S", 362, 362, 91.6, 48, 350))
_add("l40", "", GPUSpec("L40", 181, 181, 90.5, 48, 300))
# Turing T4 and Volta V100 have no bf16 tensor cores (torch emulates bf16 slowly there).
# T4: 65 TFLOPS fp16 mixed precision; V100 SXM2: 125 (PCIe 112), 32 GB default.
_add("t4", "", GPUSpec("T4", None, 65, 8.1, 16, 70))
_add("v100", "", GPUSpec("V100 32GB", None, 125, 15.7, 32, 300), optional="sxm")
_add("v100", "", GPUSpec("V100 16GB", None, 125, 15.7, 16, 300), optional="sxm")
_add("v100", "pcie", GPUSpec("V100 PCIe", None, 112, 14, 32, 250))

# Words that change which card it is: a name with a qualifier no entry accepts (e.g.
# "Laptop", "NVL") is not matched, rather than matched to a faster desktop card.
_QUALIFIERS = frozenset("ti super s ada sxm pcie nvl laptop mobile max q g".split())
_NOISE = frozenset("nvidia geforce tesla quadro rtx gtx gpu generation hbm hbm3 hbm3e gb".split())


def _tokens(name: str) -> list[str]:
    """'NVIDIA GeForce RTX 4070 Ti' -> ['4070', 'ti']; 'A100-SXM4-80GB' -> ['a100', 'sxm', '80']."""
    text = re.sub(r"(rtx|gtx)(?=\d)", r"\1 ", name.lower())
    out: list[str] = []
    for tok in re.findall(r"[a-z]*\d+|[a-z]+", text):
        if tok.startswith("sxm"):
            tok = "sxm"
        elif tok.startswith("hbm"):
            continue
        out.extend(_split_qualifiers(tok))
    return [t for t in out if t not in _NOISE]


def _split_qualifiers(tok: str) -> list[str]:
    """'tisuper' -> ['ti', 'super']; tokens that are not runs of qualifiers stay whole."""
    if tok in _QUALIFIERS or not tok.isalpha():
        return [tok]
    for i in range(len(tok) - 1, 0, -1):
        if tok[:i] in _QUALIFIERS:
            rest = _split_qualifiers(tok[i:])
            if all(r in _QUALIFIERS for r in rest):
                return [tok[:i], *rest]
    return [tok]


def lookup_gpu(name: str) -> GPUSpec | None:
    """The table's spec for an NVML name or user text ('NVIDIA GeForce RTX 4070', 'rtx4070',
    '4070', 'H100', 'A100-SXM4-40GB'); None when no entry matches exactly."""
    toks = _tokens(name)
    quals = {t for t in toks if t in _QUALIFIERS}
    mem = re.search(r"(\d+)\s*gb", name.lower())
    found = [spec for model, req, opt, spec in _TABLE
             if model in toks and req <= quals <= req | opt]
    if mem:
        sized = [s for s in found if s.memory_gb == float(mem.group(1))]
        found = sized or found
    return found[0] if found else None


def close_matches(name: str, n: int = 4) -> list[str]:
    """Table names that look like `name`, for "did you mean" hints."""
    import difflib

    names = [spec.name for *_, spec in _TABLE]
    hits = difflib.get_close_matches(name.upper(), [s.upper() for s in names], n=n, cutoff=0.4)
    by_upper = {s.upper(): s for s in names}
    digits = set(re.findall(r"\d{3,}", name))
    extra = [s for s in names if digits & set(re.findall(r"\d{3,}", s))]
    return list(dict.fromkeys([by_upper[h] for h in hits] + extra))[:n]


def known_gpus() -> list[GPUSpec]:
    return [spec for *_, spec in _TABLE]


def default_dtype(spec: GPUSpec | None, kind: str = "cuda") -> str:
    """What `dtype = "auto"` resolves to: bf16 where the card has it, fp16 on older cards,
    fp32 on CPUs."""
    if kind != "cuda":
        return "float32"
    return "bfloat16" if spec is None or spec.bf16_tflops else "float16"


def peak_for(device_name: str, dtype: str) -> tuple[float | None, str]:
    """(peak TFLOPS, basis text) for a device. Table cards are looked up; 'cpu', 'mps' and
    unknown cards are measured with a short torch matmul (imports torch)."""
    spec = None if device_name in {"cpu", "mps"} else lookup_gpu(device_name)
    if spec is not None:
        return table_peak(spec, dtype)
    device = "cpu" if device_name == "cpu" else ("mps" if device_name == "mps" else "cuda")
    if dtype == "auto":
        dtype = default_dtype(None, device)
    return measured_peak(device, dtype, device_name)


def table_peak(spec: GPUSpec, dtype: str) -> tuple[float | None, str]:
    """(TFLOPS, basis) of a table card in `dtype` ('auto': the card's default): the one
    wording of a table peak, e.g. 'RTX 4070 bf16 dense peak 58.3 TFLOPS (table)'."""
    if dtype == "auto":
        dtype = default_dtype(spec)
    value = spec.tflops(dtype)
    if value is None:
        return None, f"{spec.name} has no {dtype} tensor cores"
    kind = "FP32 (non-tensor)" if dtype == "float32" else f"{short_dtype(dtype)} dense"
    return value, f"{spec.name} {kind} peak {value:g} TFLOPS (table)"


def measured_peak(device: str, dtype: str, name: str | None = None,
                  measure: Callable[[str, str], float] | None = None) -> tuple[float | None, str]:
    """(TFLOPS, basis) of a matmul measured now on torch `device` ('cpu', 'mps', 'cuda:N');
    (None, why) when it cannot be measured. Imports torch; seconds (a CPU's is kept).
    `measure`: the measurement (default `measured_matmul_tflops`; tests pass a fake)."""
    try:
        value = float((measure or measured_matmul_tflops)(device, dtype))
    except Exception as e:  # no torch device of that kind: report, never raise
        return None, f"{name or device}: could not measure a matmul peak ({type(e).__name__})"
    return value, measured_basis(device, dtype, value, name)


def measured_basis(device: str, dtype: str, tflops: float, name: str | None = None) -> str:
    """The one wording of a measured peak: 'CPU matmul 0.21 TFLOPS (measured)', with the
    dtype when it is not fp32 ('Apple GPU …', the card's name or 'CUDA:0 …' elsewhere)."""
    if device == "cpu":
        name = "CPU"
    elif device == "mps":
        name = "Apple GPU"
    name = name or device.upper()
    short = short_dtype(dtype) if dtype != "float32" else ""
    return f"{name} matmul {tflops:.3g} TFLOPS (measured{', ' + short if short else ''})"


@functools.cache
def measured_matmul_tflops(device: str, dtype: str) -> float:
    """Best-of-5 square matmul rate on `device` in `dtype` (TFLOPS); cached per process.

    A stand-in peak for CPUs and cards missing from the table: an achievable rate, so MFU
    against it reads higher than against a datasheet peak. A CPU's is measured once per
    machine and kept (`gpttui.plan.peakstore`): measured per process it moved with the load.
    """
    if device == "cpu":
        from gpttui.plan.peakstore import kept_or_measure, machine_key, stored_cpu_peak

        kept = stored_cpu_peak(dtype)  # kept on this machine: no torch import, no wait
        if kept is not None:
            return kept
        import torch

        key = machine_key(device, dtype, torch.get_num_threads())
        return kept_or_measure(key, lambda: _matmul_tflops(device, dtype))
    return _matmul_tflops(device, dtype)


def remeasure_cpu_peak(dtype: str = "float32") -> float:
    """Measure this machine's CPU matmul peak again and keep it (on request)."""
    import torch

    from gpttui.plan.peakstore import kept_or_measure, machine_key

    measured_matmul_tflops.cache_clear()
    return kept_or_measure(machine_key("cpu", dtype, torch.get_num_threads()),
                           lambda: _matmul_tflops("cpu", dtype), remeasure=True)


def _matmul_tflops(device: str, dtype: str) -> float:
    import time

    import torch

    dt = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(dtype, torch.float32)
    n = 4096 if device.startswith("cuda") else 1024
    a = torch.randn(n, n, device=device, dtype=dt)
    b = torch.randn(n, n, device=device, dtype=dt)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    reps = 10 if device.startswith("cuda") else 3
    (a @ b).sum().item()  # warm-up (kernel selection, thread pool)
    best = float("inf")
    for _ in range(5):
        sync()
        t0 = time.perf_counter()
        for _ in range(reps):
            c = a @ b
        sync()
        best = min(best, (time.perf_counter() - t0) / reps)
    del c
    return 2 * n**3 / best / 1e12


@dataclass(frozen=True)
class DeviceInfo:
    """The device a run would use, as far as it can be known without torch."""

    kind: str  # "cuda" | "cpu" | "mps"
    name: str
    index: int
    memory_bytes: int | None
    spec: GPUSpec | None
    peak_tflops: float | None
    peak_basis: str
    board_power_w: float | None


def detect_device(index: int = 0) -> DeviceInfo:
    """GPU `index` via NVML, else the CPU (or Apple's MPS). Never raises, never imports torch."""
    try:
        info = _nvml_device(index)
    except Exception:
        info = None
    if info is not None:
        return info
    if sys.platform == "darwin" and platform.machine() == "arm64":
        return DeviceInfo("mps", "Apple GPU (MPS)", 0, total_ram(), None, None,
                          "Apple GPU: no table peak; measured when a run starts", None)
    return DeviceInfo("cpu", _cpu_name(), 0, total_ram(), None, None,
                      "CPU: no table peak; measured with a matmul when needed", None)


def _nvml_device(index: int) -> DeviceInfo | None:
    import pynvml

    pynvml.nvmlInit()
    try:
        if index >= pynvml.nvmlDeviceGetCount():
            return None
        h = pynvml.nvmlDeviceGetHandleByIndex(index)
        name = pynvml.nvmlDeviceGetName(h)
        name = name.decode() if isinstance(name, bytes) else str(name)
        memory = int(pynvml.nvmlDeviceGetMemoryInfo(h).total)
        try:
            power: float | None = pynvml.nvmlDeviceGetEnforcedPowerLimit(h) / 1000
        except pynvml.NVMLError:
            power = None
    finally:
        pynvml.nvmlShutdown()
    spec = lookup_gpu(name)
    if spec is None:
        return DeviceInfo("cuda", name, index, memory, None, None,
                          f"{name} is not in the peak table; measured with a matmul when needed", power)
    peak, basis = table_peak(spec, "auto")
    return DeviceInfo("cuda", name, index, memory, spec, peak, basis, power or spec.board_power_w)


def _cpu_name() -> str:
    return f"CPU ({cpu_model() or platform.processor() or platform.machine()}, {os.cpu_count()} threads)"


@dataclass(frozen=True)
class NvmlSample:
    """One reading of a GPU; a field is None where the card or driver does not report it."""

    used_bytes: int | None
    total_bytes: int | None
    power_w: float | None
    energy_j: float | None  # since the driver loaded (nvmlDeviceGetTotalEnergyConsumption)


class NvmlSampler:
    """Reads memory, power and energy of one GPU; `available` is False without NVML/GPU.

    Safe everywhere: construction and `sample()` never raise. Call `close()` when done.
    """

    def __init__(self, index: int = 0):
        self.index = index
        self.available = False
        self._nvml = None
        self._handle = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml  # initialised: close() must shut it down
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            self.available = True
        except Exception:
            self.close()

    def _read(self, fn_name: str) -> object | None:
        try:
            return getattr(self._nvml, fn_name)(self._handle)
        except Exception:
            return None

    def sample(self) -> NvmlSample | None:
        """The current reading, or None when NVML is not available."""
        if not self.available:
            return None
        mem = self._read("nvmlDeviceGetMemoryInfo")
        power_mw = self._read("nvmlDeviceGetPowerUsage")
        energy_mj = self._read("nvmlDeviceGetTotalEnergyConsumption")
        return NvmlSample(
            used_bytes=int(mem.used) if mem is not None else None,
            total_bytes=int(mem.total) if mem is not None else None,
            power_w=power_mw / 1000 if isinstance(power_mw, (int, float)) else None,
            energy_j=energy_mj / 1000 if isinstance(energy_mj, (int, float)) else None,
        )

    def close(self) -> None:
        """Release NVML (idempotent)."""
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass
        self.available = False
        self._nvml = None
        self._handle = None

    def __enter__(self) -> NvmlSampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
