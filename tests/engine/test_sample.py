"""stream_sample: text equals the model's own generation, seeds repeat, multi-byte
characters arrive whole, nanoGPT checkpoints sample; save_sample writes JSON atomically."""

from __future__ import annotations

import json

import pytest
import torch

from gpttui.errors import RunError
from gpttui.model.gpt import GPT, GPTConfig
from gpttui.tokenizer import get_encoding
from gpttui.weights import checkpoint as ck
from gpttui.weights import sample

ARGS = dict(block_size=32, vocab_size=50304, n_layer=2, n_head=2, n_embd=32, dropout=0.0, bias=False)


@pytest.fixture
def run_dir(isolated_dirs):
    data, _ = isolated_dirs
    torch.manual_seed(0)
    model = GPT(GPTConfig(**ARGS))
    folder = data / "runs" / "20250101-000000-test"
    state = ck.build_checkpoint(model, None, None, ARGS, 10, 9.9, {"n_layer": 2}, None, 0, 0.0)
    ck.save_checkpoint(folder / "ckpt.pt", state)
    return folder


def reference(path, prompt: str, n: int, temperature: float, top_k, seed: int) -> str:
    """What the loaded model generates itself, decoded in one go."""
    enc = get_encoding()
    model, _ = ck.load_model(path)
    idx = torch.tensor([enc.encode(prompt)])
    g = torch.Generator().manual_seed(seed)
    out = model.generate(idx, n, temperature=temperature, top_k=top_k, generator=g, vocab_limit=enc.n_vocab)
    raw = b"".join(enc.decode_single_token_bytes(int(t)) for t in out[0, idx.size(1):])
    return raw.decode("utf-8", errors="replace")


def test_stream_sample_equals_generation(run_dir):
    pieces = list(sample.stream_sample(run_dir, "Hello world", max_new_tokens=40, temperature=1.5,
                                       top_k=None, seed=3, device="cpu"))
    assert len(pieces) > 1 and all(isinstance(p, str) and p for p in pieces)
    assert "".join(pieces) == reference(run_dir, "Hello world", 40, 1.5, None, 3)


def test_seed_repeats_and_varies(run_dir):
    def text(seed: int) -> str:
        return "".join(sample.stream_sample(run_dir / "ckpt.pt", "def ", 15, 1.0, 50, seed, "cpu"))

    assert text(1) == text(1)
    assert text(1) != text(2)


def test_empty_prompt_and_long_prompt(run_dir):
    assert "".join(sample.stream_sample(run_dir, "", max_new_tokens=5, device="cpu"))
    long_prompt = "word " * 100  # more tokens than block_size: cropped, still samples
    assert "".join(sample.stream_sample(run_dir, long_prompt, max_new_tokens=40, device="cpu"))


def test_multibyte_characters_are_never_split(run_dir, monkeypatch):
    """'🙂' and '日本' are two or more GPT-2 tokens each; every piece must decode cleanly."""
    enc = get_encoding()
    text = "a 🙂 日本! é€"
    tokens = enc.encode(text)
    assert len(tokens) > len(text.split())  # some characters do span tokens

    def fake_stream(self, idx, n, *args, **kwargs):
        for t in tokens[:n]:
            yield torch.tensor([[t]])

    monkeypatch.setattr(GPT, "stream", fake_stream)
    pieces = list(sample.stream_sample(run_dir, "x", max_new_tokens=len(tokens), device="cpu"))
    assert "".join(pieces) == text
    assert not any("\ufffd" in p for p in pieces)
    assert "🙂" in pieces or any("🙂" in p for p in pieces)
    assert len(pieces) < len(tokens)  # split characters were held back, then joined


def test_sample_from_nanogpt_checkpoint(tmp_path):
    torch.manual_seed(1)
    model = GPT(GPTConfig(**ARGS))
    nano = {
        "model": {"_orig_mod." + k: v for k, v in model.state_dict().items()},
        "optimizer": model.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu").state_dict(),
        "model_args": {k: ARGS[k] for k in ("n_layer", "n_head", "n_embd", "block_size", "bias", "vocab_size", "dropout")},
        "iter_num": 600000, "best_val_loss": torch.tensor(2.85),
        "config": {"out_dir": "out", "dataset": "openwebtext", "compile": True, "batch_size": 12},
    }
    path = tmp_path / "out" / "ckpt.pt"
    path.parent.mkdir()
    torch.save(nano, path)
    got = "".join(sample.stream_sample(tmp_path / "out", "The", 25, 1.0, 100, 7, "cpu"))
    assert got == reference(path, "The", 25, 1.0, 100, 7)


def test_missing_checkpoint_is_a_run_error(tmp_path):
    with pytest.raises(RunError, match="no checkpoint"):
        next(sample.stream_sample(tmp_path, "hi", device="cpu"))


def test_save_sample_writes_json(run_dir):
    settings = {"temperature": 0.8, "top_k": 200, "seed": 1337, "max_new_tokens": 10}
    path = sample.save_sample(run_dir, "Hi", "Hi there ☃", settings)
    assert path.parent == run_dir / "samples" and path.suffix == ".json"
    record = json.loads(path.read_text(encoding="utf-8"))
    assert record["prompt"] == "Hi" and record["text"] == "Hi there ☃" and record["settings"] == settings
    assert record["created"]
    second = sample.save_sample(run_dir / "ckpt.pt", "Hi", "again", settings)  # a ckpt path works
    assert second != path and second.parent == path.parent
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, second.name])
    with pytest.raises(RunError):
        sample.save_sample(run_dir / "nope", "a", "b", {})


@pytest.mark.parametrize("flag,value", [("--temperature", "-1"), ("--temperature", "nan"), ("--temperature", "inf"),
                                        ("--top-k", "-3"), ("--max-new-tokens", "0")])
def test_sample_refuses_bad_settings_in_one_line(run_dir, capsys, flag, value):
    from gpttui.cli.main import main

    assert main(["sample", str(run_dir), flag, value]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"gpttui: error: {flag} ") and "\n" not in err and "Traceback" not in err
    assert not (run_dir / "samples").exists() or not list((run_dir / "samples").iterdir())


def test_sample_interrupted_saves_the_text_and_exits_130(run_dir, capsys, monkeypatch):
    from gpttui.cli.main import main

    def stream(*a, **k):
        yield "partial "
        yield "text"
        raise KeyboardInterrupt

    monkeypatch.setattr(sample, "stream_sample", stream)
    assert main(["sample", str(run_dir), "--max-new-tokens", "100000000"]) == 130
    out = capsys.readouterr()
    assert "partial text" in out.out and "sampling interrupted" in out.err
    saved = [p for p in run_dir.rglob("*.json") if "sample" in p.name or "samples" in p.parts]
    assert any("partial text" in p.read_text() for p in saved)
