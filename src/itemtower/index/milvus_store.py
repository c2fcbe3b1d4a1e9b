"""MilvusIndex: the VectorIndex protocol over a Milvus collection (pymilvus), so several processes share one store.

Where FaissIndex keeps everything inside the service process (and index/store.py makes it durable with a
write-ahead log, snapshots and a one-writer lock), MilvusIndex keeps nothing of its own: every write goes to
Milvus, which makes it durable, and every read asks Milvus, so any number of service processes pointed at one
URI see each other's writes. The FAISS log, snapshots and directory lock do not apply to this backend.

The URI is a Milvus server or cluster (`http://host:19530`, with a token when it needs one) or a milvus-lite
file (a local path ending in `.db`; milvus-lite 3 keeps a directory there). A milvus-lite file is open in one
process at a time; to share it, run it as a server (`milvus-lite server --data-dir FILE --port PORT`) and point
every process at `http://127.0.0.1:PORT`.

One row per item: `id` (VARCHAR primary key: the string id), `vector` (FLOAT_VECTOR, inner product), `item`
(VARCHAR: the stored JSON text, exactly what FaissIndex stores and `get_json` returns), `std` (JSON: the std
fields as lists, what filters match; index/milvus_expr.py) and `grp` (VARCHAR: the item's group, for variants).
The collection is created with Strong consistency: a read in one process sees a write acknowledged in another.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections import OrderedDict
from typing import Any, Iterator, Sequence

import numpy as np

from itemtower.index.milvus_expr import filter_expr, literal, std_json
from itemtower.index.snapshot import item_to_json
from itemtower.index.wal import UnstorableError
from itemtower.index.checks import checked_upsert

__all__ = ["MilvusIndex", "MilvusUnavailable", "is_local_uri", "MAX_TOP_K"]

log = logging.getLogger("itemtower.index")

MAX_TOP_K = 16_384  # Milvus's largest `limit` for search and query
MAX_ID_BYTES = 1024  # the primary key's VARCHAR length
MAX_ITEM_BYTES = 65_535  # Milvus's largest VARCHAR: the stored item's JSON text
_FIELDS = ("id", "vector", "item", "std", "grp")
_WRITE_BATCH = 1000  # rows per upsert call when loading a whole catalog (gRPC messages stay well under 64 MB)


class MilvusUnavailable(RuntimeError):
    """Milvus cannot be reached (or opened) at the URI; the message names it and says what to do."""


def is_local_uri(uri: str) -> bool:
    """A milvus-lite file (a local path) rather than a server address."""
    return "://" not in uri and not uri.startswith("unix:")


class _QuietMvccWarning(logging.Filter):
    """pymilvus's query iterator warns on every call that milvus-lite returns no MVCC timestamp (harmless)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "mvccTs" not in record.getMessage()


logging.getLogger("pymilvus.client.iterator.query_iterator").addFilter(_QuietMvccWarning())


class _HitCache:
    """The stored JSON of recent search hits, for `get_json` right after the search (the response is built from
    it, item by item, on the event loop: one Milvus round trip per hit otherwise). Entries live `seconds`; this
    process's own writes drop theirs at once."""

    def __init__(self, seconds: float, max_items: int = 50_000) -> None:
        self.seconds, self.max_items = seconds, max_items
        self._texts: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, texts: dict[str, str]) -> None:
        if self.seconds <= 0 or not texts:
            return
        now = time.monotonic()
        with self._lock:
            for sid, text in texts.items():
                self._texts[sid] = (text, now)
                self._texts.move_to_end(sid)
            while len(self._texts) > self.max_items:
                self._texts.popitem(last=False)

    def get(self, sid: str) -> str | None:
        hit = self._texts.get(sid)
        if hit is None or time.monotonic() - hit[1] > self.seconds:
            return None
        return hit[0]

    def drop(self, ids: Sequence[str]) -> None:
        with self._lock:
            for sid in ids:
                self._texts.pop(sid, None)


class MilvusIndex:
    """A Milvus collection behind the VectorIndex protocol (string ids, items, std filters, upsert/delete).

    Build it with `MilvusIndex.connect(uri, dim, ...)`. Scores are inner products, as FaissIndex's. Thread-safe
    (pymilvus's client is). `index_type` "FLAT" is exact; "HNSW" (the default) is approximate, searched with
    ef = max(ef_search, k), times `filter_ef_factor` when a std filter is given: HNSW skips the items a filter
    drops while it walks the graph, and at ef 32 a filter that 10% of items pass kept 0.62 of the true top 10 in
    milvus-lite (ef 512: 0.995; BENCHMARKS.md, Milvus).
    """

    backend = "milvus"
    self_persisting = True  # every write is durable in Milvus when acknowledged: nothing to save at shutdown

    def __init__(self, client: Any, uri: str, collection: str, dim: int, *, index_type: str = "HNSW",
                 ef_search: int = 32, read_cache_seconds: float = 1.0, filter_ef_factor: int = 16) -> None:
        self._client, self.uri, self.collection, self.dim = client, uri, collection, int(dim)
        self.index_type, self.ef_search = index_type.upper(), int(ef_search)
        self.filter_ef_factor = int(filter_ef_factor)
        # milvus-lite applies one write at a time safely (its docs: concurrent writers to a collection are not
        # supported): this process's writes to a milvus-lite file take turns; a Milvus server needs no such lock.
        self._writing: Any = threading.Lock() if is_local_uri(uri) else contextlib.nullcontext()
        self._hits = _HitCache(read_cache_seconds)

    # ------------------------------------------------------------------ connecting

    @classmethod
    def connect(cls, uri: str, dim: int, collection: str = "itemtower", *, index_type: str = "HNSW",
                hnsw_m: int = 32, ef_construction: int = 200, ef_search: int = 32, token: str | None = None,
                timeout: float = 10.0, read_cache_seconds: float = 1.0) -> "MilvusIndex":
        """Connect to Milvus at `uri` and open `collection` (created empty when missing).

        Raises:
            MilvusUnavailable: nothing answers at `uri`, or the milvus-lite file is open in another process.
            ValueError: the collection exists with another dimension or other fields.
        """
        from itemtower.index.milvus_connect import open_client

        client = open_client(uri, token=token, timeout=timeout)
        self = cls(client, uri, collection, dim, index_type=index_type, ef_search=ef_search,
                   read_cache_seconds=read_cache_seconds)
        self._build_params = {"M": int(hnsw_m), "efConstruction": int(ef_construction)}
        if client.has_collection(collection):
            self._check_collection()
            return self
        try:
            self._create()
        except Exception:
            # Several service processes started together on an empty store: one creates the collection, the
            # others' create fails; they use the one that now exists (and fail as before if there is none).
            if not client.has_collection(collection):
                raise
            log.info("Milvus collection %r was created by another process meanwhile; using it", collection)
            for attempt in range(20):  # its index may still be on the way: loading needs it
                try:
                    self._check_collection()
                    break
                except ValueError:
                    raise
                except Exception:
                    if attempt == 19:
                        raise
                    time.sleep(0.25)
        return self

    def _create(self) -> None:
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=MAX_ID_BYTES)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        schema.add_field("item", DataType.VARCHAR, max_length=MAX_ITEM_BYTES)
        schema.add_field("std", DataType.JSON)
        schema.add_field("grp", DataType.VARCHAR, max_length=MAX_ID_BYTES)
        params = self._client.prepare_index_params()
        build = getattr(self, "_build_params", {}) if self.index_type == "HNSW" else {}
        params.add_index(field_name="vector", index_type=self.index_type, metric_type="IP", params=build)
        self._client.create_collection(self.collection, schema=schema, consistency_level="Strong")
        # sync=False: pymilvus would poll the (empty) index's state every 0.5 s, via an RPC milvus-lite lacks
        self._client.create_index(self.collection, params, sync=False)
        self._client.load_collection(self.collection)
        log.info("created Milvus collection %r (dim %d, %s) at %s", self.collection, self.dim, self.index_type,
                 self.uri)

    def _check_collection(self) -> None:
        desc = self._client.describe_collection(self.collection)
        fields = {f["name"]: f for f in desc.get("fields", [])}
        where = f"the Milvus collection {self.collection!r} at {self.uri}"
        if set(_FIELDS) - set(fields):
            raise ValueError(f"{where} has fields {sorted(fields)}, not itemtower's {list(_FIELDS)}: set "
                             "ITEMTOWER_MILVUS_COLLECTION to another name, or drop it and run `itemtower index`")
        have = int((fields["vector"].get("params") or {}).get("dim", -1))
        if have != self.dim:
            raise ValueError(f"{where} holds vectors of dimension {have}; this model's have {self.dim}: rebuild it "
                             "with `itemtower index` (ITEMTOWER_INDEX_BACKEND=milvus) or set "
                             "ITEMTOWER_MILVUS_COLLECTION to another name")
        self._client.load_collection(self.collection)

    def recreate(self) -> None:
        """Drop the collection and create it empty (`itemtower index`: the catalog replaces every earlier write)."""
        if self._client.has_collection(self.collection):
            self._client.drop_collection(self.collection)
        self._create()
        self._hits.drop(list(self._hits._texts))

    def close(self) -> None:
        """Close the client (and, for a milvus-lite file, the in-process server that pymilvus started for it)."""
        try:
            self._client.close()
        finally:
            if is_local_uri(self.uri):
                from itemtower.index.milvus_connect import release_local

                release_local(self.uri)

    def info(self) -> dict[str, Any]:
        """What /info says about the index: backend, where, and where durability comes from."""
        from itemtower.index.milvus_connect import redact

        return {"backend": self.backend, "uri": redact(self.uri), "collection": self.collection,
                "index_type": self.index_type, "items": len(self),
                "durability": "every acknowledged write is durable in Milvus; the FAISS write-ahead log, "
                              "snapshots and one-writer directory lock do not apply"}

    # ------------------------------------------------------------------ reading

    def _rows(self, ids: Sequence[str], fields: list[str]) -> list[dict[str, Any]]:
        if not ids:
            return []
        return list(self._client.get(self.collection, ids=list(ids), output_fields=fields))

    def __len__(self) -> int:
        rows = self._client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def __contains__(self, id: object) -> bool:
        return isinstance(id, str) and bool(self._rows([id], ["id"]))

    def ids(self) -> Iterator[str]:
        """Every id (Milvus's order), read in pages of 1,000."""
        it = self._client.query_iterator(self.collection, batch_size=1000, filter="", output_fields=["id"])
        try:
            while True:
                page = it.next()
                if not page:
                    return
                for row in page:
                    yield str(row["id"])
        finally:
            it.close()

    def get_json(self, id: str) -> str | None:
        """The stored JSON text; a hit of a search in the last `read_cache_seconds` is answered from that search."""
        text = self._hits.get(id)
        if text is not None:
            return text
        rows = self._rows([id], ["item"])
        return str(rows[0]["item"]) if rows else None

    def get(self, id: str) -> dict[str, Any] | None:
        """The stored item, read from Milvus (a fresh dict), or None."""
        rows = self._rows([id], ["item"])
        return json.loads(rows[0]["item"]) if rows else None

    def vector(self, id: str) -> np.ndarray | None:
        rows = self._rows([id], ["vector"])
        return np.asarray(rows[0]["vector"], dtype=np.float32) if rows else None

    def group_ids(self, group: str) -> list[str]:
        rows = self._client.query(self.collection, filter=f"grp == {literal(group)}", output_fields=["id"],
                                  limit=MAX_TOP_K)
        return sorted(str(r["id"]) for r in rows)

    def search(self, query: np.ndarray, k: int, filters: dict[str, str] | None = None,
               exclude: set[str] | None = None) -> list[tuple[str, float]]:
        """Up to k (id, score), best first, among the items that pass `filters` and are not in `exclude`; Milvus
        applies both before ranking, so a rare filter still returns its top k (k is capped at MAX_TOP_K)."""
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if q.shape[0] != self.dim:
            raise ValueError(f"query has dimension {q.shape[0]}; this index holds vectors of dimension {self.dim}")
        k = min(int(k), MAX_TOP_K)
        if k <= 0:
            return []
        params: dict[str, Any] = {"metric_type": "IP"}
        if self.index_type == "HNSW":
            ef = max(self.ef_search, k) * (self.filter_ef_factor if filters else 1)
            params["params"] = {"ef": min(MAX_TOP_K, ef)}
        result = self._client.search(self.collection, data=[q.tolist()], limit=k, anns_field="vector",
                                     filter=filter_expr(filters, exclude), output_fields=["item"],
                                     search_params=params)
        hits = list(result[0]) if result else []
        self._hits.put({str(h["id"]): str(h["entity"]["item"]) for h in hits})
        return [(str(h["id"]), float(h["distance"])) for h in hits]

    # ------------------------------------------------------------------ writing

    def _rows_for(self, ids: Sequence[str], vectors: np.ndarray, items: Sequence[dict[str, Any]]
                  ) -> list[dict[str, Any]]:
        """Checked rows; what FaissIndex.upsert refuses is refused the same way (ValueError), and what Milvus
        cannot hold (an over-long id or item) is an UnstorableError naming the id."""
        ids, vecs = checked_upsert(ids, vectors, items, self.dim)
        rows = []
        for sid, vec, item in zip(ids, vecs, items):
            try:
                text = item_to_json(sid, item)
            except ValueError as e:
                raise UnstorableError(str(e)) from None
            group = item.get("group")
            group = group if isinstance(group, str) else ""
            for what, value, most in (("id", sid, MAX_ID_BYTES), ("item", text, MAX_ITEM_BYTES),
                                      ("group", group, MAX_ID_BYTES)):
                if len(value.encode("utf-8")) > most:
                    raise UnstorableError(f"item {sid[:80]!r}: its {what} is longer than the {most} bytes a Milvus "
                                          "field holds")
            rows.append({"id": sid, "vector": vec.tolist(), "item": text, "std": std_json(item), "grp": group})
        return rows

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, items: Sequence[dict[str, Any]]) -> None:
        """Add items, replacing any whose id is present: one Milvus upsert (durable when it returns)."""
        rows = self._rows_for(ids, vectors, items)
        if not rows:
            return
        self._hits.drop([r["id"] for r in rows])
        with self._writing:
            self._client.upsert(self.collection, rows)

    def load_all(self, ids: Sequence[str], vectors: np.ndarray, items: Sequence[dict[str, Any]],
                 batch: int = _WRITE_BATCH) -> None:
        """Upsert a whole catalog, `batch` rows per call (not all or nothing, unlike `upsert`)."""
        for start in range(0, len(ids), batch):
            stop = start + batch
            self.upsert(ids[start:stop], vectors[start:stop], items[start:stop])
        self._client.flush(self.collection)

    def delete(self, id: str) -> bool:
        """Remove one item; False (and nothing changed) when it is not there."""
        self._hits.drop([id])
        with self._writing:
            if id not in self:
                return False
            self._client.delete(self.collection, ids=[id])
        return True

    def save(self, directory: Any = None) -> None:
        """Nothing to write: Milvus holds every acknowledged write. Flushes Milvus's memory buffer to its
        segments (not needed for durability: Milvus logs each write before answering)."""
        self._client.flush(self.collection)

    def __repr__(self) -> str:
        return f"MilvusIndex(uri={self.uri!r}, collection={self.collection!r}, dim={self.dim}, {self.index_type})"
