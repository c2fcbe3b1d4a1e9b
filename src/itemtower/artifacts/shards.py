"""Sharded batch embedding (issue 14): `itemtower embed --shard i/n` (or under torchrun, RANK/WORLD_SIZE) embeds
its share of the catalog into OUT.shards/, and `itemtower embed --merge` joins the shards into OUT, the .npz one
unsharded run writes (same ids in catalog order, same vectors).

Which items: every shard streams the whole catalog through the same checks (catalog.CatalogStream), so all see
the same usable records in the same order, and shard i takes those at positions k with k % n == i. Reading is
cheap next to the model (BENCHMARKS.md 14a: read ~6,600 items/s, model ~300), no shard needs the item count up
front, and the merge interleaves the shards back into catalog order without reading the catalog again.

Each shard is three files, `shard-00001-of-00004.{f32,ids.json,json}`: the raw float32 rows, the ids, and the
manifest (which shard of how many, which model and which catalog by fingerprint, rows, dim, done). The manifest is
written last (atomically) and says done only when the rows and ids are complete, so a shard killed midway has no
finished manifest and is redone by the next run; a finished shard of the same model and catalog is skipped.
A manifest of another model, catalog or shard count is an error naming what differs (delete OUT.shards/ to start
over), never a silent mix.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from itemtower.artifacts.streaming import CHUNK, EmptyCatalogError, _write_npz, embed_chunks

__all__ = ["ShardError", "ShardManifest", "embed_shard", "merge_shards", "parse_shard", "shard_dir",
           "shard_from_env"]

FORMAT = "itemtower-embed-shard/1"
MODEL_FILES = ("manifest.json", "tower_body.pth", "tower_norm.pth", "featurizer.json", "tokenizer.json")


class ShardError(ValueError):
    """A shard spec, or shards on disk, that cannot be used (the message says what to do)."""


def parse_shard(spec: str) -> tuple[int, int]:
    """'i/n' (0 <= i < n) -> (i, n)."""
    try:
        i, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise ShardError(f"--shard takes i/n (this shard's number from 0, of n), got {spec!r}") from None
    if n < 1 or not 0 <= i < n:
        raise ShardError(f"--shard {spec}: need n >= 1 and 0 <= i < n")
    return i, n


def shard_from_env(env: dict[str, str] | None = None) -> tuple[int, int] | None:
    """(RANK, WORLD_SIZE) under torchrun (WORLD_SIZE > 1), else None."""
    env = os.environ if env is None else env
    world = int(env.get("WORLD_SIZE", "1") or 1)
    return (int(env.get("RANK", "0")), world) if world > 1 else None


def shard_dir(out: str | Path) -> Path:
    """Where the shards of `out` live: OUT.shards/ beside it."""
    out = Path(out)
    return out.with_name(out.name + ".shards")


def _stem(i: int, n: int) -> str:
    return f"shard-{i:05d}-of-{n:05d}"


@dataclass
class ShardManifest:
    """What one shard file holds; `done` only once rows and ids are complete."""

    format: str
    shard: int
    of: int
    model: str  # fingerprint of the model directory's files
    catalog: dict[str, Any]  # path, size, mtime_ns, sha256 of its first MiB
    rows: int
    dim: int
    done: bool

    def same_run(self, other: "ShardManifest") -> list[str]:
        """What differs between two shards' runs (model, catalog, shard count): empty if they belong together."""
        return [k for k in ("model", "catalog", "of") if getattr(self, k) != getattr(other, k)]


def model_fingerprint(model_dir: str | Path) -> str:
    """sha256 over the model directory's weight, vocabulary and manifest files: a changed model is another run."""
    h = hashlib.sha256()
    for name in MODEL_FILES:
        p = Path(model_dir) / name
        if p.exists():
            h.update(name.encode())
            with p.open("rb") as fh:
                while block := fh.read(1 << 20):
                    h.update(block)
    return h.hexdigest()[:16]


def catalog_fingerprint(catalog: str | Path) -> dict[str, Any]:
    p = Path(catalog)
    st = p.stat()
    with p.open("rb") as fh:
        head = hashlib.sha256(fh.read(1 << 20)).hexdigest()[:16]
    return {"name": p.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "head_sha256": head}


def _read_manifest(path: Path) -> ShardManifest | None:
    try:
        m = ShardManifest(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None  # unreadable or torn: the shard is redone
    return m if m.format == FORMAT else None


def _write_json_atomic(path: Path, obj: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def embed_shard(embedder, model_dir: str | Path, catalog: str | Path, out: str | Path, shard: int, n_shards: int,
                batch_size: int | None = None, chunk: int = CHUNK,
                on_chunk: Callable[[int], None] | None = None) -> tuple[ShardManifest, bool, Any]:
    """Embed shard `shard` of `n_shards` of `catalog` into shard_dir(out). Returns (its manifest, whether it was
    already done and skipped, the CatalogStream read (None when skipped): its problems). Raises ShardError when
    OUT.shards/ holds shards of another model, catalog or shard count."""
    from itemtower.catalog import CatalogStream

    d = shard_dir(out)
    d.mkdir(parents=True, exist_ok=True)
    stem = _stem(shard, n_shards)
    want = ShardManifest(FORMAT, shard, n_shards, model_fingerprint(model_dir), catalog_fingerprint(catalog), 0,
                         embedder.dim, False)
    for other in _manifests(d):
        if diff := want.same_run(other):
            raise ShardError(f"{d} holds shards of another run ({', '.join(diff)} differ: shard "
                             f"{other.shard}/{other.of}); delete {d} or choose another --out")
    done = _read_manifest(d / f"{stem}.json")
    if done is not None and done.done and _complete(d, stem, done):
        return done, True, None
    (d / f"{stem}.json").unlink(missing_ok=True)  # redone from the start: no stale 'done' while it runs
    stream = CatalogStream(catalog)
    mine = (it for k, it in enumerate(stream) if k % n_shards == shard)
    ids: list[str] = []
    with (d / f"{stem}.f32").open("wb") as raw:  # any earlier partial shard is overwritten
        for part_ids, vecs in embed_chunks(embedder, mine, batch_size, chunk):
            raw.write(vecs.tobytes())
            ids.extend(part_ids)
            if on_chunk:
                on_chunk(len(ids))
        raw.flush()
        os.fsync(raw.fileno())
    if stream.n_items == 0:
        raise EmptyCatalogError(f"{catalog}: no usable items; nothing to embed")
    _write_json_atomic(d / f"{stem}.ids.json", ids)
    want.rows, want.done = len(ids), True
    _write_json_atomic(d / f"{stem}.json", asdict(want))
    return want, False, stream


def _manifests(d: Path) -> list[ShardManifest]:
    return [m for p in sorted(d.glob("shard-*-of-*.json")) if not p.name.endswith(".ids.json")
            and (m := _read_manifest(p)) is not None]


def _complete(d: Path, stem: str, m: ShardManifest) -> bool:
    """The rows file has exactly the manifest's rows (a shard whose files were cut or replaced is redone)."""
    raw, ids = d / f"{stem}.f32", d / f"{stem}.ids.json"
    return raw.exists() and ids.exists() and raw.stat().st_size == m.rows * m.dim * 4


def merge_shards(out: str | Path, model_dir: str | Path | None = None, catalog: str | Path | None = None,
                 block: int = 8192) -> tuple[int, int]:
    """Join the finished shards in shard_dir(out) into `out` (the unsharded run's .npz: ids in catalog order).
    With model_dir / catalog given, the shards must be of that model and catalog. Returns (N, D); raises
    ShardError naming the missing or unfinished shards."""
    d = shard_dir(out)
    found = _manifests(d) if d.is_dir() else []
    if not found:
        raise ShardError(f"no shards in {d}; run `itemtower embed --shard i/n --out {out}` for each i first")
    ref = found[0]
    for m in found[1:]:
        if diff := ref.same_run(m):
            raise ShardError(f"{d} mixes shards of different runs ({', '.join(diff)} differ); delete it and rerun")
    if model_dir is not None and model_fingerprint(model_dir) != ref.model:
        raise ShardError(f"the shards in {d} were made by another model than {model_dir}")
    if catalog is not None and catalog_fingerprint(catalog) != ref.catalog:
        raise ShardError(f"the shards in {d} were made from another catalog than {catalog} (or it changed since)")
    by_shard = {m.shard: m for m in found if m.done and _complete(d, _stem(m.shard, m.of), m)}
    missing = [i for i in range(ref.of) if i not in by_shard]
    if missing:
        raise ShardError(f"{d}: shard(s) {', '.join(f'{i}/{ref.of}' for i in missing)} not finished; run them "
                         "(a rerun skips the finished ones)")
    return _interleave(d, [by_shard[i] for i in range(ref.of)], Path(out), block)


def _interleave(d: Path, shards: list[ShardManifest], out: Path, block: int) -> tuple[int, int]:
    """Row k of the catalog is row k // n of shard k % n: blocks of rows from every shard, written in order."""
    n, dim = len(shards), shards[0].dim
    total = sum(m.rows for m in shards)
    ids_of = [json.loads((d / f"{_stem(m.shard, m.of)}.ids.json").read_text(encoding="utf-8")) for m in shards]
    rows = [np.memmap(d / f"{_stem(m.shard, m.of)}.f32", dtype="<f4", mode="r", shape=(m.rows, dim))
            if m.rows else np.zeros((0, dim), np.float32) for m in shards]
    ids: list[str] = [None] * total  # type: ignore[list-item]
    for i in range(n):
        ids[i::n] = ids_of[i]
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".merge-", dir=out.parent) as tmp:
        raw_path = Path(tmp) / "embeddings.f32"
        with raw_path.open("wb") as raw:
            for j0 in range(0, rows[0].shape[0], block):
                j1 = min(j0 + block, rows[0].shape[0])
                k0, k1 = j0 * n, min(j1 * n, total)  # catalog rows [k0, k1) come from shard rows [j0, j1)
                buf = np.empty((k1 - k0, dim), np.float32)
                for i in range(n):
                    buf[i::n] = rows[i][j0: j0 + len(buf[i::n])]
                raw.write(buf.tobytes())
        partial = Path(tmp) / out.name
        _write_npz(partial, ids, raw_path, dim)
        os.replace(partial, out)
    return total, dim
