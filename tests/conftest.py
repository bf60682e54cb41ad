"""Shared fixtures: every test gets its own data and config dirs (never the user's)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Point GPTTUI_DATA_DIR / GPTTUI_CONFIG_DIR at fresh temporary folders."""
    data = tmp_path / "data"
    conf = tmp_path / "config"
    data.mkdir()
    conf.mkdir()
    monkeypatch.setenv("GPTTUI_DATA_DIR", str(data))
    monkeypatch.setenv("GPTTUI_CONFIG_DIR", str(conf))
    return data, conf
