"""Service settings, read from the environment (ITEMTOWER_*) or passed explicitly by tests and the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Where the model is and the service's limits.

    Environment: ITEMTOWER_MODEL (model_dir), ITEMTOWER_API_KEY, ITEMTOWER_MAX_BATCH, ITEMTOWER_MAX_K,
    ITEMTOWER_MAX_BODY_BYTES, ITEMTOWER_SNAPSHOT_EVERY_OPS, ITEMTOWER_SNAPSHOT_EVERY_SECONDS,
    ITEMTOWER_ANN_THRESHOLD, ITEMTOWER_EF_SEARCH, ITEMTOWER_HNSW_M, ITEMTOWER_SEARCH_THREADS, ITEMTOWER_TORCH_THREADS,
    ITEMTOWER_BATCH_WAIT_MS, ITEMTOWER_BATCH_MAX_ITEMS, ITEMTOWER_NEIGHBOUR_DEPTH, ITEMTOWER_NEIGHBOUR_MAX_ITEMS,
    ITEMTOWER_IMAGE_ROOT, ITEMTOWER_MAX_IMAGE_BYTES, ITEMTOWER_IMAGE_CACHE, ITEMTOWER_DEVICE, ITEMTOWER_PRECISION,
    ITEMTOWER_FAISS_GPU.
    Keyword arguments (`Settings(model_dir=...)`) override the
    environment.
    """

    model_config = SettingsConfigDict(env_prefix="ITEMTOWER_", populate_by_name=True, extra="ignore")

    # The env name is ITEMTOWER_MODEL (what the Makefile and README use), not ITEMTOWER_MODEL_DIR.
    model_dir: Path = Field(
        Path("runs/demo"),
        validation_alias=AliasChoices("ITEMTOWER_MODEL", "model_dir"),
        description="trained model directory (manifest.json, tower_*.pth, ...; the index in its index/ subfolder)",
    )
    api_key: str | None = Field(None, description="when set, PUT and DELETE require the header X-API-Key")
    max_batch: int = Field(256, ge=1, description="most items per POST /embed and per PUT /items (a batch write)")
    max_k: int = Field(100, ge=1, description="most results per similar/search request")
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="largest accepted request body")
    snapshot_every_ops: int = Field(1000, ge=1, description="snapshot the index (and cut the write-ahead log) after "
                                    "this many writes")
    snapshot_every_seconds: float = Field(60.0, gt=0, description="... or when this many seconds have passed "
                                          "since the last snapshot and there are new writes")
    # The vector store (index/backend.py): faiss = in this process, durable by the write-ahead log and snapshots in
    # MODEL/index, one writer; milvus = a Milvus collection that several processes share (durable in Milvus).
    index_backend: Literal["faiss", "milvus"] = Field("faiss", description="ITEMTOWER_INDEX_BACKEND: faiss or milvus")
    milvus_uri: str | None = Field(None, description="ITEMTOWER_MILVUS_URI: a Milvus server (http://HOST:19530) or a "
                                   "milvus-lite file (PATH.db, one process); default MODEL/index/milvus.db")
    milvus_collection: str = Field("itemtower", description="the Milvus collection that holds the items")
    milvus_index_type: Literal["HNSW", "FLAT"] = Field("HNSW", description="Milvus vector index (FLAT: exact)")
    milvus_token: str | None = Field(None, description="Milvus credentials (user:password or an API key)")
    milvus_read_cache_seconds: float = Field(1.0, ge=0, description="a search hit's stored JSON is reused this long "
                                             "to build the response (0: always read it again)")
    # Search and the model (serve/batcher.py, index/ann.py; BENCHMARKS.md section 11 for the measured defaults)
    ann_threshold: int = Field(10_000, ge=0, description="more items than this: HNSW (approximate); this many or "
                               "fewer: exact flat search. 0: always HNSW")
    ef_search: int = Field(32, ge=1, description="HNSW candidate list per query: higher = better recall, slower")
    hnsw_m: int = Field(32, ge=2, description="HNSW neighbours per node (used when the graph is (re)built)")
    faiss_gpu: Literal["auto", "on", "off"] = Field("auto", description="ITEMTOWER_FAISS_GPU: FAISS search on a GPU "
                                                    "(exact at any size; index/gpu.py): auto = when faiss has one, "
                                                    "on = an error at start-up without one, off = the CPU")
    search_threads: int = Field(1, ge=1, description="OpenMP threads per FAISS search (concurrency comes from "
                                "concurrent requests; more threads per query only add contention)")
    torch_threads: int = Field(1, ge=1, description="torch threads for the model (torch.set_num_threads)")
    device: Literal["cpu", "cuda", "auto"] = Field("cpu", description="ITEMTOWER_DEVICE: where the model runs; cuda "
                                                 "without a GPU leaves the service without a model, /health says why")
    precision: Literal["auto", "fp32", "bf16"] = Field("auto", description="ITEMTOWER_PRECISION: the model's "
                                                       "matmuls; auto = bf16 autocast where the device has bf16 "
                                                       "kernels (as `itemtower index` embeds), else fp32")
    batch_wait_ms: float = Field(2.0, ge=0, description="embed work waits at most this long for other requests' "
                                 "items to share one model call; 0 switches cross-request batching off")
    batch_max_items: int = Field(256, ge=1, description="most items in one model call of the batching queue")
    neighbour_depth: int = Field(30, ge=0, description="similar-by-id answers from kept lists of each item's top "
                                 "this many (serve/neighbours.py), right as of the last write; 0 switches them off")
    # Photos (issue 12; serve/photos.py): which server files an item's `image` may name, and sent photos' size
    image_root: Path | None = Field(None, description="ITEMTOWER_IMAGE_ROOT: the folder an item's image path must be "
                                    "inside (symlinks followed); unset: image paths are refused")
    max_image_bytes: int = Field(2 * 1024 * 1024, ge=1024, description="largest photo sent as a data URL (decoded)")
    image_cache: Path | None = Field(None, description="photo feature cache of a model trained with photos "
                                     "(default ~/.cache/itemtower/images)")
    neighbour_max_items: int = Field(200_000, ge=0, description="most items with a kept list (about 0.5 kB each "
                                     "at depth 30); past it, the oldest lists make room")
