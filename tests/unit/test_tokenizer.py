"""Offline GPT-2 BPE: known encodings, EOT, round trips, altered files."""

from __future__ import annotations

import shutil

import pytest

from gpttui import tokenizer as T


@pytest.fixture
def fresh_cache():
    T.get_encoding.cache_clear()
    yield
    T.get_encoding.cache_clear()


def test_known_encodings():
    enc = T.get_encoding()
    assert enc.name == "gpt2" and enc.n_vocab == T.VOCAB == 50257
    assert enc.encode("Hello world") == [15496, 995]
    assert enc.encode(" the") == [262]
    assert enc.encode("<|endoftext|>", allowed_special={"<|endoftext|>"}) == [T.EOT] == [50256]
    assert enc.eot_token == 50256


def test_unicode_round_trip():
    enc = T.get_encoding()
    text = "naïve café — 日本語のテキスト 🚀\n\ttabs  and  spaces"
    ids = enc.encode(text)
    assert enc.decode(ids) == text and max(ids) < T.VOCAB


def test_tokenizer_hash_is_stable():
    assert T.tokenizer_hash() == T.tokenizer_hash() and len(T.tokenizer_hash()) == 16


def test_altered_file_is_a_clear_error(tmp_path, monkeypatch, fresh_cache):
    vocab, encoder = T.bpe_files()
    bad_vocab = tmp_path / "vocab.bpe"
    shutil.copy(vocab, bad_vocab)
    with open(bad_vocab, "ab") as f:
        f.write(b"x y\n")
    monkeypatch.setattr(T, "bpe_files", lambda: (bad_vocab, encoder))
    with pytest.raises(T.TokenizerError) as e:
        T.get_encoding()
    assert "does not match GPT-2's" in str(e.value) and "\n" not in str(e.value)


def test_missing_file_is_a_clear_error(tmp_path, monkeypatch, fresh_cache):
    vocab, _ = T.bpe_files()
    monkeypatch.setattr(T, "bpe_files", lambda: (vocab, tmp_path / "encoder.json"))
    with pytest.raises(T.TokenizerError, match="file missing"):
        T.get_encoding()
