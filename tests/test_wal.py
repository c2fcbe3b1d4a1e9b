"""The write-ahead log (index/wal.py) and the directory lock (index/lock.py), without the service."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import zlib

import numpy as np
import pytest

from itemtower.index.lock import DirectoryLocked, DirLock
from itemtower.index.wal import UnstorableError, WriteAheadLog, encode_record, read_log


def vecs(n: int, dim: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def test_append_then_read_back_exactly(tmp_path):
    """Records come back in order with their sequence numbers, items, and bit-identical vectors."""
    path = tmp_path / "wal.jsonl"
    wal = WriteAheadLog(path, next_seq=1)
    v = vecs(2)
    assert wal.append("upsert", ["a", "b"], [{"id": "a", "title": "빨간 셔츠"}, {"id": "b"}], v) == 1
    assert wal.append("delete", ["a"]) == 2
    wal.close()
    result = read_log(path)
    assert result.warnings == [] and not result.corrupt and result.good_bytes == path.stat().st_size
    up, de = result.records
    assert (up.seq, up.op, up.ids, up.items[0]["title"]) == (1, "upsert", ["a", "b"], "빨간 셔츠")
    assert up.vectors.dtype == np.float32 and np.array_equal(up.vectors, v)
    assert (de.seq, de.op, de.ids) == (2, "delete", ["a"])


def test_each_line_is_json_with_a_checksum_of_its_bytes(tmp_path):
    """A line is a JSON object; crc is the CRC-32 of the line without its crc key (checked by hand here)."""
    line = encode_record(5, "delete", ["x"])
    obj = json.loads(line)
    assert obj["seq"] == 5 and line.endswith(b"\n")
    without = line.rstrip(b"\n").replace(b',"crc":"' + obj["crc"].encode() + b'"', b"")
    assert f"{zlib.crc32(without):08x}" == obj["crc"]


def test_torn_last_line_is_reported_ignored_and_cut_before_appending(tmp_path):
    """A crash in mid-write leaves half a line: it is a warning, the records before it are kept, and the next
    append starts on a clean line (so the half line never ends up in the middle of the log)."""
    path = tmp_path / "wal.jsonl"
    wal = WriteAheadLog(path, next_seq=1)
    wal.append("delete", ["a"])
    wal.close()
    good = path.stat().st_size
    half = encode_record(2, "upsert", ["b"], [{"id": "b"}], vecs(1))[:40]
    with open(path, "ab") as f:
        f.write(half)
    result = read_log(path)
    assert [r.seq for r in result.records] == [1] and result.good_bytes == good and not result.corrupt
    assert len(result.warnings) == 1 and "last line (line 2" in result.warnings[0] and "ignored" in result.warnings[0]
    wal = WriteAheadLog(path, next_seq=2, good_bytes=result.good_bytes)
    wal.append("delete", ["c"])
    wal.close()
    again = read_log(path)
    assert [r.seq for r in again.records] == [1, 2] and again.warnings == []


def test_checksum_mismatch_in_the_middle_is_named_and_skipped(tmp_path):
    """A flipped byte inside an earlier line: that line is reported as lost, the others replay."""
    path = tmp_path / "wal.jsonl"
    wal = WriteAheadLog(path, next_seq=1)
    for i in range(3):
        wal.append("delete", [f"id{i}"])
    wal.close()
    raw = path.read_bytes().split(b"\n")
    raw[1] = raw[1].replace(b"id1", b"idX")  # still valid JSON: only the checksum can tell
    path.write_bytes(b"\n".join(raw))
    result = read_log(path)
    assert [r.ids[0] for r in result.records] == ["id0", "id2"] and result.corrupt
    assert "line 2 is damaged (checksum mismatch)" in result.warnings[0]


def test_a_line_with_a_stale_sequence_number_is_refused(tmp_path):
    """Sequence numbers must rise: a repeated one is damage, not a second write."""
    path = tmp_path / "wal.jsonl"
    path.write_bytes(encode_record(1, "delete", ["a"]) + encode_record(1, "delete", ["b"]) +
                     encode_record(2, "delete", ["c"]))
    result = read_log(path)
    assert [r.ids[0] for r in result.records] == ["a", "c"] and "does not follow 1" in result.warnings[0]


@pytest.mark.parametrize("item, why", [({"id": "a", "price": float("nan")}, "JSON"),
                                       ({"id": "a", "title": "\ud800"}, "not valid Unicode")])
def test_unstorable_write_is_refused_before_anything_is_written(tmp_path, item, why):
    """NaN and lone surrogates cannot be written back as JSON: refused, the log unchanged, no seq used."""
    path = tmp_path / "wal.jsonl"
    wal = WriteAheadLog(path, next_seq=1)
    with pytest.raises(UnstorableError, match=why):
        wal.append("upsert", ["a"], [item], vecs(1))
    assert wal.append("delete", ["a"]) == 1
    wal.close()
    assert [r.seq for r in read_log(path).records] == [1]


def test_concurrent_appends_get_distinct_sequence_numbers_and_all_land(tmp_path):
    """Eight threads appending at once (group commit): every record on disk, seqs 1..N without gaps."""
    path = tmp_path / "wal.jsonl"
    wal = WriteAheadLog(path, next_seq=1)
    got: list[int] = []
    lock = threading.Lock()

    def writer(t: int) -> None:
        for j in range(25):
            s = wal.append("delete", [f"t{t}-{j}"])
            with lock:
                got.append(s)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wal.close()
    assert sorted(got) == list(range(1, 201))
    records = read_log(path).records
    assert [r.seq for r in records] == list(range(1, 201))
    assert len({r.ids[0] for r in records}) == 200


def test_truncate_through_keeps_only_later_records(tmp_path):
    """After a snapshot at seq 3, the log holds a mark at 3 (the numbering's floor) and 4.., and appending
    continues after it."""
    path = tmp_path / "wal.jsonl"
    wal = WriteAheadLog(path, next_seq=1)
    for i in range(5):
        wal.append("delete", [str(i)])
    assert wal.truncate_through(3) == 2
    wal.append("delete", ["5"])
    wal.close()
    assert [(r.seq, r.op) for r in read_log(path).records] == [(3, "mark"), (4, "delete"), (5, "delete"),
                                                              (6, "delete")]
    assert not (tmp_path / "wal.jsonl.tmp").exists()


def test_missing_log_reads_as_empty(tmp_path):
    result = read_log(tmp_path / "nope.jsonl")
    assert result.records == [] and result.warnings == []


# ---------------------------------------------------------------------------------------------------- the lock


def test_second_lock_in_this_process_is_refused_then_free_after_release(tmp_path):
    """flock locks an open file, so a second open in the same process is refused too; release frees it."""
    first = DirLock.acquire(tmp_path / "index")
    with pytest.raises(DirectoryLocked, match=r"locked by another process \(pid \d+\).*scale reads"):
        DirLock.acquire(tmp_path / "index")
    first.release()
    DirLock.acquire(tmp_path / "index").release()


def test_lock_held_by_another_process_is_refused_and_freed_when_it_dies(tmp_path):
    """A real second process: while it holds the lock we are refused (its pid named); once it is killed the lock
    is free again (the kernel drops it: no stale lock after kill -9)."""
    code = ("import sys, time; from itemtower.index.lock import DirLock; DirLock.acquire(sys.argv[1]); "
            "print('locked', flush=True); time.sleep(60)")
    p = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "locked"
        with pytest.raises(DirectoryLocked, match=f"pid {p.pid}"):
            DirLock.acquire(tmp_path)
    finally:
        p.kill()
        p.wait(timeout=10)
    DirLock.acquire(tmp_path).release()
