"""FaissIndex on a GPU (index/gpu.py): the setting, its errors and /info on this CPU-only faiss; the GPU copy kept
in step through writes, deletes, rebuilds, save and load against a fake GPU (faiss.index_cpu_to_gpu replaced by
a CPU clone that refuses what a GPU index refuses); and, marked `gpu`, the same against a real CUDA faiss."""

from __future__ import annotations

import threading

import faiss
import numpy as np
import pytest
from fastapi.testclient import TestClient

from fakes import FakeEmbedder, catalog
from itemtower.index import AnnConfig, FaissIndex
from itemtower.index import ann as annlib
from itemtower.index import gpu as gpulib
from itemtower.serve.app import create_app
from itemtower.serve.settings import Settings

DIM = 32
EXACT = AnnConfig(threshold=10**9)  # the reference: exact flat on the CPU at any size


def unit(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def items(ids: list[str]) -> list[dict]:
    # one in 50 is Red: a filter that makes the widening search fetch far past k
    return [{"title": sid, "std": {"colour": ["Red" if int(sid[1:]) % 50 == 0 else "Blue"]}} for sid in ids]


def upsert(indexes: tuple[FaissIndex, ...], ids: list[str], vecs: np.ndarray) -> None:
    for idx in indexes:
        idx.upsert(ids, vecs, items(ids))


def assert_same_top10(a: FaissIndex, b: FaissIndex, n_queries: int = 20) -> None:
    """The same ids in the same order and the same scores, plain, filtered (a rare value) and with exclusions."""
    for q in unit(n_queries, seed=99):
        for kw in ({}, {"filters": {"colour": "Red"}}, {"exclude": {"i1", "i2", "i3"}}):
            ra, rb = a.search(q, 10, **kw), b.search(q, 10, **kw)
            assert [i for i, _ in ra] == [i for i, _ in rb], kw
            np.testing.assert_allclose([s for _, s in ra], [s for _, s in rb], rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- this faiss (no GPU)


@pytest.fixture
def cpu_build(monkeypatch):
    """faiss as faiss-cpu installs it, even where a GPU build is installed."""
    for name in ("StandardGpuResources", "index_cpu_to_gpu"):
        monkeypatch.delattr(faiss, name, raising=False)


@pytest.mark.skipif(hasattr(faiss, "index_cpu_to_gpu"), reason="a GPU build of faiss is installed")
def test_gpu_count_is_zero_with_faiss_cpu():
    assert gpulib.gpu_count() == 0
    assert gpulib.faiss_build().startswith("faiss-cpu ")


def test_on_without_a_gpu_build_is_a_clear_error(cpu_build):
    """"on" names the setting, the faiss installed, what to install and the other values."""
    with pytest.raises(gpulib.GpuUnavailable) as e:
        FaissIndex(DIM, AnnConfig(gpu="on"))
    msg = str(e.value)
    for part in ("ITEMTOWER_FAISS_GPU=on", gpulib.faiss_build(), "without GPU support", "pip install faiss-gpu-cu12",
                 "ITEMTOWER_FAISS_GPU=auto", "off"):
        assert part in msg


def test_on_with_a_gpu_build_but_no_device_says_so(monkeypatch):
    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 0, raising=False)
    monkeypatch.setattr(faiss, "StandardGpuResources", object, raising=False)
    monkeypatch.setattr(faiss, "index_cpu_to_gpu", lambda *a: pytest.fail("no GPU to copy to"), raising=False)
    index = FaissIndex(DIM)
    with pytest.raises(gpulib.GpuUnavailable, match=r"sees no GPU .*CUDA_VISIBLE_DEVICES"):
        index.configure(AnnConfig(gpu="on"))
    assert index.ann.gpu == "off" and not index.on_gpu  # a refused configure changes nothing


@pytest.mark.parametrize("setting", ["auto", "off"])
def test_auto_and_off_keep_the_cpu_layouts(cpu_build, setting):
    """Without a GPU, auto and off are today's index: flat up to the threshold, HNSW above, nothing on a GPU."""
    idx = FaissIndex(DIM, AnnConfig(threshold=50, m=16, ef_construction=40, gpu=setting))
    ids = [f"i{j}" for j in range(40)]
    idx.upsert(ids, unit(40, 0), items(ids))
    assert idx.kind == "flat" and not idx.on_gpu
    ids = [f"i{j}" for j in range(40, 120)]
    idx.upsert(ids, unit(80, 1), items(ids))
    assert idx.kind == "hnsw" and not idx.on_gpu
    assert idx.gpu_info() == {"used": False, "setting": setting, "faiss": gpulib.faiss_build()}


def test_gpu_setting_is_checked():
    with pytest.raises(ValueError, match="AnnConfig.gpu must be one of auto, on, off"):
        AnnConfig(gpu="yes")
    assert AnnConfig().gpu == "off"  # an index made in code is the same on every machine


def test_the_service_reads_ITEMTOWER_FAISS_GPU(monkeypatch):
    assert Settings().faiss_gpu == "auto"
    monkeypatch.setenv("ITEMTOWER_FAISS_GPU", "off")
    assert Settings().faiss_gpu == "off"
    monkeypatch.setenv("ITEMTOWER_FAISS_GPU", "yes")
    with pytest.raises(ValueError, match="faiss_gpu"):
        Settings()


def service(tmp_path, setting: str) -> TestClient:
    embedder = FakeEmbedder()
    cat = catalog()
    index = FaissIndex(embedder.dim)
    index.upsert([it["id"] for it in cat], embedder.embed(cat), cat)
    return TestClient(create_app(Settings(model_dir=tmp_path / "unused", faiss_gpu=setting), embedder=embedder,
                                 index=index))


def test_service_start_stops_on_ITEMTOWER_FAISS_GPU_on_without_a_gpu(cpu_build, tmp_path, caplog):
    with pytest.raises(gpulib.GpuUnavailable, match="ITEMTOWER_FAISS_GPU=on"):
        with service(tmp_path, "on"):
            pass
    assert "pip install faiss-gpu-cu12" in caplog.text


def test_info_says_the_gpu_is_not_used(cpu_build, tmp_path):
    with service(tmp_path, "auto") as client:
        gpu = client.get("/info").json()["index"]["gpu"]
    assert gpu == {"used": False, "setting": "auto", "faiss": gpulib.faiss_build()}


# ---------------------------------------------------------------- a fake GPU


class FakeGpuIndex:
    """What GpuMirror uses of a GPU index (ntotal, add_with_ids, search), over a CPU clone of the index it was
    made from: a separate copy, so a write that misses it shows. Refuses k past gpulib.MAX_K, as FAISS GPU does."""

    def __init__(self, cpu: faiss.IndexIDMap2) -> None:
        assert annlib.kind_of(cpu) == annlib.FLAT  # what FaissIndex must only ever copy to a GPU
        self.inner = faiss.clone_index(cpu)
        self.searches = 0
        self.fail_adds = False

    @property
    def ntotal(self) -> int:
        return self.inner.ntotal

    def add_with_ids(self, x: np.ndarray, ids: np.ndarray) -> None:
        if self.fail_adds:
            raise RuntimeError("Error in allocMemory: Failed to cudaMalloc (error 2 out of memory)")
        self.inner.add_with_ids(x, ids)

    def search(self, q: np.ndarray, k: int):
        if not 0 < k <= gpulib.MAX_K:
            raise RuntimeError(f"GPU index only supports min/max-K selection up to {gpulib.MAX_K} (requested {k})")
        self.searches += 1
        return self.inner.search(q, k)


@pytest.fixture
def fake_gpu(monkeypatch):
    """One fake GPU; returns the list of the copies made on it (the latest last)."""
    made: list[FakeGpuIndex] = []

    def to_gpu(res, device, index):
        assert device == 0
        made.append(FakeGpuIndex(index))
        return made[-1]

    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 1, raising=False)
    monkeypatch.setattr(faiss, "StandardGpuResources", object, raising=False)
    monkeypatch.setattr(faiss, "index_cpu_to_gpu", to_gpu, raising=False)
    monkeypatch.setattr(gpulib, "_resources", {})
    return made


def assert_in_step(idx: FaissIndex) -> None:
    """The GPU copy holds exactly the CPU index's ids and vectors, in storage order, and mirrors the current one."""
    mirror = idx._gpu
    assert mirror is not None and mirror.cpu is idx._index and idx.kind == "flat"
    gpu, cpu = mirror.gpu.inner, idx._index
    np.testing.assert_array_equal(faiss.vector_to_array(gpu.id_map), faiss.vector_to_array(cpu.id_map))
    assert gpu.ntotal == cpu.ntotal
    if cpu.ntotal:
        np.testing.assert_array_equal(gpu.index.reconstruct_n(0, gpu.ntotal), cpu.index.reconstruct_n(0, cpu.ntotal))


def test_fake_gpu_index_follows_upserts_deletes_rebuilds_save_and_load(fake_gpu, tmp_path):
    """Every path that changes the index keeps the GPU copy right, and searches use it: the same top 10 as exact
    CPU search throughout, well past the HNSW threshold, which does not apply on a GPU."""
    ref = FaissIndex(DIM, EXACT)
    idx = FaissIndex(DIM, AnnConfig(threshold=50, gpu="auto"))
    ids = [f"i{j}" for j in range(600)]
    upsert((ref, idx), ids[:300], unit(300, 0))
    upsert((ref, idx), ids[300:], unit(300, 1))
    assert idx.on_gpu and idx.kind == "flat" and len(fake_gpu) == 1  # the empty index's copy, grown since
    assert_in_step(idx)
    before = fake_gpu[-1].searches
    assert_same_top10(ref, idx)
    assert fake_gpu[-1].searches > before  # the searches went to the GPU copy

    upsert((ref, idx), ids[:60], unit(60, 2))  # replaced: the old vectors are tombstones on both
    for sid in ids[100:150]:
        assert ref.delete(sid) and idx.delete(sid)
    assert idx.tombstones == 110 and len(fake_gpu) == 1
    assert_in_step(idx)
    assert_same_top10(ref, idx)

    for sid in ids[150:300]:  # the 166th tombstone of 660 stored passes compact_fraction: rebuilt, a new copy
        ref.delete(sid), idx.delete(sid)
    assert len(fake_gpu) == 2 and idx.tombstones == 300 - 206
    assert_in_step(idx)
    assert_same_top10(ref, idx)
    idx.rebuild()
    assert len(fake_gpu) == 3 and idx.tombstones == 0
    assert_in_step(idx)
    assert_same_top10(ref, idx)

    idx.save(tmp_path / "snap")
    loaded = FaissIndex.load(tmp_path / "snap", AnnConfig(threshold=50, gpu="on"))
    assert loaded.on_gpu and loaded._gpu.gpu is fake_gpu[-1]
    assert_in_step(loaded)
    assert_same_top10(ref, loaded)
    assert FaissIndex.load(tmp_path / "snap").on_gpu is False  # the setting, not the snapshot, decides


def test_searches_past_the_gpu_k_limit_use_the_cpu_index(fake_gpu, monkeypatch):
    """A rare filter widens past what a GPU search may return: that round is the CPU flat index's, exact too."""
    monkeypatch.setattr(gpulib, "MAX_K", 64)  # the fake refuses k > 64 as a GPU refuses k > 2048
    ref, idx = FaissIndex(DIM, EXACT), FaissIndex(DIM, AnnConfig(gpu="on"))
    ids = [f"i{j}" for j in range(2000)]
    upsert((ref, idx), ids, unit(2000, 3))
    assert_same_top10(ref, idx)  # the Red filter (1 in 50) fetches 40, 160, ... 2000
    assert [i for i, _ in idx.search(unit(1, 4)[0], 100)] == [i for i, _ in ref.search(unit(1, 4)[0], 100)]


def test_rebuild_keeps_writes_made_while_it_builds(fake_gpu, monkeypatch):
    """Rows written between the rebuild's copy and its swap reach the new CPU index and its GPU copy."""
    ref, idx = FaissIndex(DIM, EXACT), FaissIndex(DIM, AnnConfig(gpu="on"))
    idx.background_rebuilds = True  # the write below must not wait for the rebuild it happens inside
    ids = [f"i{j}" for j in range(300)]
    upsert((ref, idx), ids, unit(300, 5))
    real_build, late = annlib.build, unit(5, 6)

    def build_then_write(*args):
        new = real_build(*args)
        monkeypatch.setattr(annlib, "build", real_build)
        upsert((ref, idx), [f"i{j}" for j in range(1000, 1005)], late)
        ref.delete("i7"), idx.delete("i7")
        return new

    monkeypatch.setattr(annlib, "build", build_then_write)
    idx.rebuild()
    assert_in_step(idx)
    assert "i1000" in idx and "i7" not in idx and idx.tombstones == 1
    assert idx.search(late[0], 1)[0][0] == "i1000"
    assert_same_top10(ref, idx)


def test_configure_moves_an_index_onto_the_gpu_and_back(fake_gpu):
    """off -> on: an HNSW index is rebuilt flat with its GPU copy; on -> off: the copy goes, HNSW comes back."""
    ref = FaissIndex(DIM, EXACT)
    idx = FaissIndex(DIM, AnnConfig(threshold=50, m=16, ef_construction=40))
    upsert((ref, idx), [f"i{j}" for j in range(400)], unit(400, 7))
    assert idx.kind == "hnsw" and not idx.on_gpu and not fake_gpu
    idx.configure(AnnConfig(threshold=50, m=16, ef_construction=40, gpu="on"))
    assert idx.kind == "flat" and idx.on_gpu
    assert_in_step(idx)
    assert_same_top10(ref, idx)
    assert idx.gpu_info()["used"] is True
    idx.configure(AnnConfig(threshold=50, m=16, ef_construction=40, gpu="off"))
    assert idx.kind == "hnsw" and not idx.on_gpu


def test_a_saved_hnsw_index_loads_flat_onto_the_gpu(fake_gpu, tmp_path):
    ref = FaissIndex(DIM, EXACT)
    idx = FaissIndex(DIM, AnnConfig(threshold=50, m=16, ef_construction=40))
    upsert((ref, idx), [f"i{j}" for j in range(400)], unit(400, 8))
    idx.save(tmp_path / "snap")
    loaded = FaissIndex.load(tmp_path / "snap", AnnConfig(threshold=50, gpu="on"))
    assert loaded.kind == "flat"
    assert_in_step(loaded)
    assert_same_top10(ref, loaded)


def test_a_failed_gpu_write_leaves_the_cpu_index_serving(fake_gpu, caplog):
    """A FAISS error on the GPU (out of memory) loses no write: the CPU index serves, its layout the threshold's."""
    ref = FaissIndex(DIM, EXACT)
    idx = FaissIndex(DIM, AnnConfig(threshold=50, m=16, ef_construction=40, gpu="on"))
    upsert((ref, idx), [f"i{j}" for j in range(40)], unit(40, 9))
    fake_gpu[-1].fail_adds = True
    upsert((ref, idx), [f"i{j}" for j in range(40, 100)], unit(60, 10))
    assert not idx.on_gpu and idx.kind == "hnsw" and len(idx) == 100
    assert "out of memory" in idx.gpu_info()["error"] and "FAISS on the GPU failed" in caplog.text
    assert [i for i, _ in idx.search(unit(1, 11)[0], 5)] == [i for i, _ in ref.search(unit(1, 11)[0], 5)]


def test_info_says_the_gpu_is_used(fake_gpu, tmp_path):
    with service(tmp_path, "auto") as client:
        gpu = client.get("/info").json()["index"]["gpu"]
        r = client.post("/search", json={"item": {"title": "black fleece"}, "k": 3})
        assert r.status_code == 200 and len(r.json()["items"]) == 3
    assert gpu["used"] is True and gpu["setting"] == "auto"
    assert fake_gpu[-1].searches > 0


# ---------------------------------------------------------------- a real GPU (pytest -m gpu, on a CUDA faiss)

needs_gpu = pytest.mark.skipif(gpulib.gpu_count() == 0, reason="faiss has no GPU here (faiss-cpu, or no device)")


@pytest.mark.gpu
@needs_gpu
def test_gpu_index_matches_cpu_flat(tmp_path):
    """On a real GPU: the same top 10 as exact CPU search after upserts, replacements, deletes, a rebuild and a
    save + load; the copy is a GpuIndexFlat inside the id map."""
    ref, idx = FaissIndex(DIM, EXACT), FaissIndex(DIM, AnnConfig(threshold=50, gpu="on"))
    ids = [f"i{j}" for j in range(5000)]
    upsert((ref, idx), ids, unit(5000, 20))
    assert idx.on_gpu and idx.kind == "flat" and idx._gpu.ntotal == 5000
    assert type(faiss.downcast_index(idx._gpu.gpu.index)).__name__.startswith("GpuIndexFlat")
    assert_same_top10(ref, idx, n_queries=50)  # the Red filter widens past 2048: CPU rounds
    upsert((ref, idx), ids[:500], unit(500, 21))
    for sid in ids[1000:1500]:
        ref.delete(sid), idx.delete(sid)
    assert_same_top10(ref, idx, n_queries=50)
    idx.rebuild()
    assert idx.tombstones == 0 and idx._gpu.ntotal == len(idx)
    assert_same_top10(ref, idx, n_queries=50)
    idx.save(tmp_path / "snap")
    loaded = FaissIndex.load(tmp_path / "snap", AnnConfig(gpu="on"))
    assert loaded.on_gpu
    assert_same_top10(ref, loaded, n_queries=50)


@pytest.mark.gpu
@needs_gpu
def test_gpu_searches_from_several_threads_agree_with_one():
    """The service searches from two threads (and fills neighbour lists from a third): one GPU, one lock."""
    idx = FaissIndex(DIM, AnnConfig(gpu="on"))
    ids = [f"i{j}" for j in range(3000)]
    idx.upsert(ids, unit(3000, 30), items(ids))
    queries = unit(64, 31)
    want = [idx.search(q, 10) for q in queries]
    got: dict[int, list] = {}

    def run(t: int) -> None:
        got[t] = [idx.search(q, 10) for q in queries]

    threads = [threading.Thread(target=run, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(got[t] == want for t in range(4))
