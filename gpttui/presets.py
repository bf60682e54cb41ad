"""Preset discovery: built-in `presets/*.toml` and the user's own in the config dir.

A user preset overrides a built-in of the same name. A path to a `.toml` file or a
nanoGPT `config/train_*.py` is accepted wherever a preset name is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gpttui import config as C
from gpttui.errors import ConfigError
from gpttui.paths import check_name, user_presets_dir


def builtin_dir() -> Path:
    """`presets/` in a source checkout, `gpttui/_presets` inside an installed wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_presets", here.parent / "presets"):
        if candidate.is_dir():
            return candidate
    return here / "_presets"


@dataclass(frozen=True)
class Preset:
    name: str
    source: str  # "built-in", "user" or "file"
    path: Path
    values: tuple[tuple[str, object], ...]
    inherited: frozenset[str] = frozenset()  # keys in `values` the file leaves to nanoGPT's default

    @property
    def description(self) -> str:
        return str(dict(self.values).get("description", ""))

    def config(self, overrides: list[str] | tuple[str, ...] = ()) -> C.TrainConfig:
        return C.build(dict(self.values), overrides, source=str(self.path.name))

    @property
    def keys(self) -> frozenset[str]:
        """The keys this preset sets itself (the others are inherited defaults)."""
        return frozenset(k for k, _ in self.values if k not in self.inherited)


def inherited_batching_warning(preset_keys: frozenset[str] | set[str], cfg: C.TrainConfig,
                               time_s: float | None = None) -> str | None:
    """A preset that sizes its own model or batch but inherits nanoGPT's
    gradient_accumulation_steps = 40 (GPT-2 on 8 GPUs): each iteration is 40 of the
    micro-batches it chose, at least 10x the step its own sizes suggest. `time_s`: the
    estimated run time, for the time per iteration."""
    n = cfg.gradient_accumulation_steps
    sized = preset_keys & {"batch_size", "block_size", "n_layer", "n_head", "n_embd"}
    if "gradient_accumulation_steps" in preset_keys or n < 10 or not sized:
        return None
    per_iter = f", ~{time_s / cfg.max_iters:.2g} s each here" if time_s else ""
    tokens = f" ({cfg.tokens_per_iter:,} tokens)" if cfg.tokens_per_iter else ""
    return (f"gradient_accumulation_steps = {n} is nanoGPT's default (GPT-2 on 8 GPUs), not set by this "
            f"preset: each iteration runs {n} micro-batches{tokens}{per_iter}; set "
            "gradient_accumulation_steps = 1 in the preset for one micro-batch per iteration")


def with_preset_warning(est: Any, preset_keys: frozenset[str] | set[str], cfg: C.TrainConfig) -> Any:
    """The estimate `est` with `inherited_batching_warning` first among its warnings, when
    it applies (Home and the editor show the estimate so)."""
    w = inherited_batching_warning(preset_keys, cfg, est.time_s.value)
    return replace(est, warnings=(w, *est.warnings)) if w else est


def _load(path: Path, source: str) -> Preset:
    """The preset in `path`; ConfigError (one line) if it does not load, including a path
    that is a folder or cannot be read."""
    if path.is_dir():
        raise ConfigError(f"{path} is a folder, not a preset file", f"move or rename it: {path.name} in {path.parent}")
    inherited: set[str] = set()
    try:
        values = C.load_file(path, inherited)
    except OSError as e:
        raise ConfigError(f"{path} cannot be read: {e.strerror or type(e).__name__}",
                          "fix its permissions, or move it away") from None
    return Preset(path.stem, source, path, tuple(values.items()), frozenset(inherited))


def discover() -> dict[str, Path]:
    """name -> path of every preset; user presets shadow built-ins."""
    found: dict[str, tuple[str, Path]] = {}
    for source, folder in (("built-in", builtin_dir()), ("user", user_presets_dir())):
        if folder.is_dir():
            for path in sorted(folder.glob("*.toml")):
                found[path.stem] = (source, path)
    return {name: path for name, (_, path) in sorted(found.items())}


@dataclass(frozen=True)
class BrokenPreset:
    """A preset file that does not load (e.g. a TOML syntax error): listed, flagged, and its
    `config()` raises the file's one-line error, so one bad file never hides the others."""

    name: str
    source: str
    path: Path
    error: str

    description = ""
    values: tuple[tuple[str, object], ...] = ()

    def config(self, overrides: list[str] | tuple[str, ...] = ()) -> C.TrainConfig:
        raise ConfigError(self.error, "fix the file or delete it")


def list_presets() -> list[Preset | BrokenPreset]:
    """Every preset, loaded; a file that does not load is a BrokenPreset in its place."""
    user = user_presets_dir().resolve()
    out: list[Preset | BrokenPreset] = []
    for p in discover().values():
        source = "user" if p.resolve().parent == user else "built-in"
        try:
            out.append(_load(p, source))
        except ConfigError as e:
            out.append(BrokenPreset(p.stem, source, p, str(e.args[0]) if e.args else str(e)))
    return out


def get(name_or_path: str) -> Preset:
    """A preset by name, or a `.toml`/nanoGPT `.py` file by path."""
    path = Path(name_or_path).expanduser()
    if path.suffix in {".toml", ".py"} and (path.exists() or "/" in name_or_path):
        if not path.exists():
            raise ConfigError(f"{name_or_path}: no such preset file", "check the path or run `gpttui presets`")
        return _load(path, "file")
    known = discover()
    if name_or_path in known:
        p = known[name_or_path]
        return _load(p, "user" if p.parent.resolve() == user_presets_dir().resolve() else "built-in")
    import difflib

    close = difflib.get_close_matches(name_or_path, known, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"known presets: {', '.join(known) or 'none'}"
    raise ConfigError(f"no preset named '{name_or_path}'", hint)


def save_user_preset(name: str, cfg: C.TrainConfig, header: str = "", comments: dict[str, str] | None = None) -> Path:
    """Write `cfg` as a user preset (only non-default values), atomically; `header` lines
    go first as `#` comments, `comments` end the lines of the keys they name."""
    from gpttui.fsutil import atomic_write_text

    check_name(name, "preset name")
    folder = user_presets_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    text = C.to_toml(cfg)
    if comments:
        text = "\n".join(f"{ln}  # {comments[k]}" if "=" in ln and (k := ln.split("=", 1)[0].strip()) in comments
                         else ln for ln in text.splitlines()) + "\n"
    if header:
        text = "".join(f"# {ln}\n" for ln in header.splitlines()) + text
    atomic_write_text(path, text)
    return path
