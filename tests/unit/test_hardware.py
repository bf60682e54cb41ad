"""GPU table lookups, detection without a GPU, the NVML sampler, measured peaks."""

from __future__ import annotations

import sys
import time
import types

import pytest

from gpttui.plan import hardware as H


@pytest.mark.parametrize("text, name", [
    ("NVIDIA GeForce RTX 4070", "RTX 4070"), ("RTX 4070", "RTX 4070"), ("rtx4070", "RTX 4070"),
    ("4070", "RTX 4070"), ("RTX 4070 Ti", "RTX 4070 Ti"), ("NVIDIA GeForce RTX 4070 Ti", "RTX 4070 Ti"),
    ("4070ti", "RTX 4070 Ti"), ("NVIDIA GeForce RTX 4070 SUPER", "RTX 4070 Super"),
    ("NVIDIA GeForce RTX 4070 Ti SUPER", "RTX 4070 Ti Super"), ("4070tisuper", "RTX 4070 Ti Super"),
    ("NVIDIA GeForce RTX 3090", "RTX 3090"), ("RTX 3090 Ti", "RTX 3090 Ti"), ("3060 Ti", "RTX 3060 Ti"),
    ("NVIDIA GeForce RTX 5090", "RTX 5090"), ("H100", "H100 SXM"), ("NVIDIA H100 80GB HBM3", "H100 SXM"),
    ("NVIDIA H100 PCIe", "H100 PCIe"), ("NVIDIA H200", "H200"), ("NVIDIA A100-SXM4-80GB", "A100 80GB"),
    ("NVIDIA A100-SXM4-40GB", "A100 40GB"), ("NVIDIA A100-PCIE-40GB", "A100 40GB"), ("A100", "A100 80GB"),
    ("NVIDIA A10", "A10"), ("Tesla T4", "T4"), ("Tesla V100-SXM2-16GB", "V100 16GB"), ("NVIDIA L4", "L4"),
    ("NVIDIA L40S", "L40S"), ("NVIDIA RTX A6000", "RTX A6000"),
    ("NVIDIA RTX 6000 Ada Generation", "RTX 6000 Ada"),
])
def test_lookup(text, name):
    spec = H.lookup_gpu(text)
    assert spec is not None and spec.name == name


@pytest.mark.parametrize("text", ["NVIDIA GeForce RTX 4070 Laptop GPU", "A10G", "NVIDIA H100 NVL",
                                  "Quadro RTX 6000", "Radeon RX 7900", "", "GTX 1080"])
def test_lookup_rejects_other_cards(text):
    assert H.lookup_gpu(text) is None


def test_geforce_rates_are_fp32_accumulate():
    assert H.lookup_gpu("RTX 4070").bf16_tflops == pytest.approx(58.3, abs=0.05)
    assert H.lookup_gpu("RTX 4090").bf16_tflops == pytest.approx(165.2, abs=0.05)
    assert H.lookup_gpu("RTX 3090").bf16_tflops == pytest.approx(71, abs=0.3)
    assert H.lookup_gpu("A100").bf16_tflops == 312 and H.lookup_gpu("H100 PCIe").bf16_tflops == 756
    assert H.lookup_gpu("T4").bf16_tflops is None and H.lookup_gpu("T4").fp16_tflops == 65
    for spec in H.known_gpus():
        assert spec.fp16_tflops > spec.fp32_tflops > 0 and spec.memory_gb > 0 and spec.board_power_w > 0


def test_close_matches():
    assert "RTX 4070" in H.close_matches("RTX 4070 Laptop")
    assert "A10" in H.close_matches("A10G")


def test_peak_for_table_and_dtypes():
    assert H.peak_for("NVIDIA GeForce RTX 4070", "bfloat16") == (58.3, "RTX 4070 bf16 dense peak 58.3 TFLOPS (table)")
    assert H.peak_for("Tesla T4", "auto")[0] == 65  # no bf16: auto resolves to fp16
    value, basis = H.peak_for("Tesla T4", "bfloat16")
    assert value is None and "no bfloat16" in basis
    assert H.peak_for("H100", "float32")[0] == 67


def _broken_pynvml(monkeypatch):
    fake = types.ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    def fail(*a):
        raise NVMLError("NVML Shared Library Not Found")

    fake.NVMLError = NVMLError
    fake.nvmlInit = fail
    fake.nvmlShutdown = fail
    monkeypatch.setitem(sys.modules, "pynvml", fake)


def test_detect_device_without_gpu_is_cpu(monkeypatch):
    _broken_pynvml(monkeypatch)
    info = H.detect_device()
    assert info.kind in ("cpu", "mps") and info.spec is None and info.peak_tflops is None
    assert info.peak_basis and info.name


def test_detect_device_is_fast_and_never_raises():
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        info = H.detect_device()
        best = min(best, time.perf_counter() - t0)
    assert info.kind in ("cpu", "cuda", "mps")
    assert best < 0.05, f"detect_device took {best * 1000:.0f} ms"
    assert H.detect_device(index=99).kind in ("cpu", "mps")  # no 100th GPU: CPU, no error


def _fake_pynvml(monkeypatch, energy: bool):
    fake = types.ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    fake.NVMLError = NVMLError
    fake.nvmlInit = lambda: None
    fake.nvmlShutdown = lambda: None
    fake.nvmlDeviceGetCount = lambda: 1
    fake.nvmlDeviceGetHandleByIndex = lambda i: "h"
    fake.nvmlDeviceGetName = lambda h: b"NVIDIA GeForce RTX 4070"
    fake.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=3 * 2**30, total=12 * 2**30)
    fake.nvmlDeviceGetPowerUsage = lambda h: 150_500
    fake.nvmlDeviceGetEnforcedPowerLimit = lambda h: 180_000

    def energy_fn(h):
        if not energy:
            raise NVMLError("Not Supported")
        return 7_200_000

    fake.nvmlDeviceGetTotalEnergyConsumption = energy_fn
    monkeypatch.setitem(sys.modules, "pynvml", fake)


def test_detect_device_with_nvml(monkeypatch):
    _fake_pynvml(monkeypatch, energy=True)
    info = H.detect_device()
    assert (info.kind, info.name, info.spec.name, info.peak_tflops) == ("cuda", "NVIDIA GeForce RTX 4070", "RTX 4070", 58.3)
    assert info.memory_bytes == 12 * 2**30 and info.board_power_w == 180  # NVML's limit beats the table


def test_sampler_with_and_without_energy(monkeypatch):
    _fake_pynvml(monkeypatch, energy=True)
    with H.NvmlSampler(0) as s:
        assert s.available
        assert s.sample() == H.NvmlSample(3 * 2**30, 12 * 2**30, 150.5, 7200.0)
    _fake_pynvml(monkeypatch, energy=False)
    s = H.NvmlSampler(0)
    assert s.sample().energy_j is None and s.sample().power_w == 150.5
    s.close()
    assert not s.available and s.sample() is None


def test_sampler_without_gpu(monkeypatch):
    _broken_pynvml(monkeypatch)
    s = H.NvmlSampler(0)
    assert s.available is False and s.sample() is None
    s.close()


def test_sampler_real_never_raises():
    s = H.NvmlSampler(0)
    sample = s.sample()
    assert sample is None or isinstance(sample, H.NvmlSample)
    s.close()


def test_measured_cpu_peak_is_labelled():
    H.measured_matmul_tflops.cache_clear()
    value, basis = H.peak_for("cpu", "float32")
    assert value is not None and 0 < value < 100
    assert basis.startswith("CPU matmul ") and basis.endswith(" TFLOPS (measured)")
    assert H.measured_matmul_tflops("cpu", "float32") == value  # cached per process


def test_cpu_peak_is_measured_once_per_machine_and_kept(monkeypatch):
    from gpttui.plan import peakstore

    calls = []

    def fake(device, dtype):
        calls.append((device, dtype))
        return 0.05 * len(calls)

    monkeypatch.setattr(H, "_matmul_tflops", fake)
    H.measured_matmul_tflops.cache_clear()
    assert H.measured_matmul_tflops("cpu", "float32") == 0.05
    H.measured_matmul_tflops.cache_clear()  # a new process: the kept value, no new measurement
    assert H.measured_matmul_tflops("cpu", "float32") == 0.05 and len(calls) == 1
    assert H.remeasure_cpu_peak("float32") == 0.10 and len(calls) == 2  # on request
    assert H.measured_matmul_tflops("cpu", "float32") == 0.10
    (key,) = peakstore._load()
    assert key.startswith("cpu|float32|") and key.endswith("threads")
    H.measured_matmul_tflops.cache_clear()


def test_torch_threads_guess_matches_torch(monkeypatch):
    """The kept peak's key is found without torch: the guess is torch's own count."""
    import subprocess
    import sys

    from gpttui.plan import peakstore

    code = "import torch; print(torch.get_num_threads())"
    for env in ({}, {"OMP_NUM_THREADS": "1"}):
        real = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env={**__import__("os").environ, **env}, timeout=120).stdout.strip()
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        monkeypatch.delitem(sys.modules, "torch", raising=False)
        assert str(peakstore.torch_threads()) == real
