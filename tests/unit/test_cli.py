"""The CLI's light paths: start-up time, no heavy imports, --estimate/presets output, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env_extra or {})}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_help_is_fast():
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        r = run("-m", "gpttui", "--help")
        best = min(best, time.perf_counter() - t0)
        assert r.returncode == 0 and "--estimate" in r.stdout
    assert best < 0.5, f"gpttui --help took {best:.2f} s"


def test_light_paths_import_neither_torch_nor_textual():
    code = (
        "import sys, contextlib, io\n"
        "from gpttui.cli import main as cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert cli.main(['presets']) == 0\n"
        "    assert cli.main(['presets', '--json']) == 0\n"
        "    assert cli.main(['--estimate', 'seed-000']) == 0\n"
        "    assert cli.main(['--estimate', 'demo', '--gpu', 'RTX 4070', '--json']) == 0\n"
        "heavy = sorted(m for m in ('torch', 'textual') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    r = run("-c", code)
    assert r.returncode == 0, r.stderr
    assert "HEAVY []" in r.stdout


def test_estimate_seed_000_json_pins_the_numbers():
    r = run("-m", "gpttui", "--estimate", "seed-000", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["preset"] == "seed-000" and out["device"]["value"] == "RTX 4070"
    assert out["params_nanogpt"]["value"] == 40_560_000
    assert out["tokens_per_iter"]["value"] == 524_288
    assert out["total_tokens"]["value"] == 10_485_760_000
    assert abs(out["total_flops_6n"]["value"] / 2.552e18 - 1) < 1e-3
    assert out["time_s"]["basis"].endswith("assumed MFU 35% of 1 × 58.3 TFLOPS)")
    assert all("basis" in v for k, v in out.items() if isinstance(v, dict))


def test_estimate_table_has_sections_and_units():
    r = run("-m", "gpttui", "--estimate", "seed-000", "--set", "max_iters=10000", "--gpu", "RTX 4090")
    assert r.returncode == 0, r.stderr
    for part in ("RTX 4090", "40.56 M", "5.24 B", "1.28e18", "GiB", "kWh", "Memory per GPU", "165.2 TFLOPS"):
        assert part in r.stdout, part


def test_bad_set_is_exit_2_and_one_line():
    r = run("-m", "gpttui", "--estimate", "seed-000", "--set", "lr=1e-3")
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert lines == ["gpttui: error: --set: unknown key 'lr' — did you mean 'learning_rate'?"]
    r = run("-m", "gpttui", "--estimate", "seed-000", "--set", "dropout=1.5")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "'dropout'" in r.stderr


def test_unknown_gpu_lists_close_matches():
    r = run("-m", "gpttui", "--estimate", "seed-000", "--gpu", "RTX 4070 Laptop")
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1
    assert "unknown GPU 'RTX 4070 Laptop'" in r.stderr and "RTX 4070" in r.stderr


def test_presets_json_lists_user_and_builtin(tmp_path):
    conf = tmp_path / "conf"
    (conf / "presets").mkdir(parents=True)
    (conf / "presets" / "mine.toml").write_text(
        'description = "my run"\nmax_iters = 10\nwarmup_iters = 1\nlr_decay_iters = 10\n')
    (conf / "presets" / "broken.toml").write_text("dropout = 3.0\n")
    r = run("-m", "gpttui", "presets", "--json", env_extra={"GPTTUI_CONFIG_DIR": str(conf)})
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert rows["seed-000"]["params"] == 40_560_000 and rows["seed-000"]["source"] == "built-in"
    assert rows["seed-000"]["total_tokens"] == 10_485_760_000
    assert rows["mine"]["source"] == "user" and rows["mine"]["description"] == "my run"
    assert "'dropout'" in rows["broken"]["error"]
    r = run("-m", "gpttui", "presets", env_extra={"GPTTUI_CONFIG_DIR": str(conf)})
    assert r.returncode == 0 and "seed-002-main" in r.stdout and "63.52 M" in r.stdout


def test_cpu_estimate_reads_the_kept_peak_without_torch(isolated_dirs):
    """#22: with this machine's CPU peak kept, `--estimate demo` (a CPU preset) imports no
    torch and uses the kept figure (it imported torch only to key the store by its threads)."""
    data, _ = isolated_dirs
    code = (
        "import sys, json, contextlib, io\n"
        "from gpttui.plan import peakstore\n"
        "peakstore.keep(peakstore.machine_key('cpu', 'float32'), 0.0123)\n"
        "from gpttui.cli import main as cli\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    assert cli.main(['--estimate', 'demo', '--json']) == 0\n"
        "print('TORCH', 'torch' in sys.modules)\n"
        "print('PEAK', json.loads(out.getvalue())['peak_tflops']['value'])\n"
    )
    r = run("-c", code, env_extra={"GPTTUI_DATA_DIR": str(data)})
    assert r.returncode == 0, r.stderr
    assert "TORCH False" in r.stdout and "PEAK 0.0123" in r.stdout


def test_cpu_estimate_table_says_cpu_words_and_units(isolated_dirs):
    """#22: on a CPU no "per GPU", a throughput with its unit, and the warning's tokens per
    parameter as the table prints it (0.045, not 0.0)."""
    data, _ = isolated_dirs
    code = (
        "from gpttui.plan import peakstore\n"
        "peakstore.keep(peakstore.machine_key('cpu', 'float32'), 0.25)\n"
        "from gpttui.cli import main as cli\n"
        "raise SystemExit(cli.main(['--estimate', 'demo']))\n"
    )
    r = run("-c", code, env_extra={"GPTTUI_DATA_DIR": str(data), "COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    assert "per GPU" not in r.stdout and "Memory " in r.stdout
    assert "tokens/s │" in r.stdout.replace("  ", " ") or " tokens/s " in r.stdout
    assert "0.045 tokens/param" in r.stdout and "0.045 tokens per parameter" in r.stdout
