"""Reading shop tables (CSV, TSV, JSON Lines, Parquet) as (line, row) pairs, for `adapters.table`.

A row that cannot be read (wrong number of cells, bad UTF-8, bad JSON) is an error `Problem` on its line and is
skipped; the reader goes on. Parquet needs pyarrow, imported only when a .parquet file is read. No torch here.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Iterator

from itemtower.catalog import Problem
from itemtower.catalog.adapters import jsonl_objects

__all__ = ["FORMATS", "PARQUET_HINT", "table_format", "read_table", "cell_text"]

FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
           ".parquet": "parquet", ".pq": "parquet"}
MAX_CELL_CHARS = 1 << 26
UTF8_HINT = " (if every row says so, the file is in another encoding: save it as UTF-8, or iconv -f cp949 -t utf-8)"
PARQUET_HINT = "reading .parquet needs pyarrow: pip install 'itemtower[table]' (pyarrow==26.0.1)"




def table_format(path: str | Path) -> str:
    """"csv", "tsv", "jsonl" or "parquet" from the file's extension; ValueError for any other."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unknown table format {Path(path).suffix!r}; expected one of "
                         f"{', '.join(sorted(FORMATS))}")
    return fmt


def read_table(path: str | Path, problems: list[Problem]) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]:
    """(columns, rows) of a table. Rows are (line, {column: value}); unreadable rows are appended to `problems`
    as errors and skipped. JSON Lines columns are the keys of the first 1,000 objects. Raises FileNotFoundError,
    ValueError (unknown extension, no header), ImportError (Parquet without pyarrow)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"table not found: {p}")
    fmt = table_format(p)
    if fmt == "parquet":
        return _read_parquet(p)
    if fmt == "jsonl":
        return _jsonl_columns(p), _read_jsonl(p, problems)
    return _read_delimited(p, "\t" if fmt == "tsv" else ",", problems)


def _read_delimited(p: Path, delimiter: str, problems: list[Problem]):
    # surrogateescape: a badly encoded cell is a problem on its line, not a crash of the whole file
    csv.field_size_limit(max(csv.field_size_limit(), MAX_CELL_CHARS))  # long descriptions are normal
    fh = p.open(encoding="utf-8-sig", errors="surrogateescape", newline="")
    reader = csv.reader(fh, delimiter=delimiter, strict=True)  # strict: a broken quote is named, not swallowed
    try:
        header = next(reader, None)
    except csv.Error as e:
        fh.close()
        raise ValueError(f"{p}: line 1: the header row cannot be read: {e}") from None
    if not header:
        fh.close()
        raise ValueError(f"{p}: empty file; expected a header row naming the columns")
    header = [h.strip() for h in header]

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        with fh:
            while True:
                try:
                    cells = next(reader)
                except StopIteration:
                    return
                except csv.Error as e:  # a bad quote, an unterminated quoted cell, a cell over the limit
                    problems.append(Problem(reader.line_num, None, "record", "", f"unreadable row: {e}; skipped"))
                    continue
                line = reader.line_num
                if not any(c.strip() for c in cells):
                    continue
                if len(cells) != len(header):
                    problems.append(Problem(line, None, "record", delimiter.join(cells),
                                            f"{len(cells)} columns, the header has {len(header)}; row skipped"))
                    continue
                bad = next((h for h, c in zip(header, cells) if _has_surrogate(c)), None)
                if bad is not None:
                    problems.append(Problem(line, None, bad, cells[header.index(bad)].encode(
                        "utf-8", "surrogateescape")[:60], "not UTF-8; row skipped" + UTF8_HINT))
                    continue
                yield line, dict(zip(header, cells))

    return header, rows()


def _has_surrogate(text: str) -> bool:
    return any("\udc80" <= c <= "\udcff" for c in text)


def _jsonl_columns(p: Path, n: int = 1000) -> list[str]:
    cols: dict[str, None] = {}
    with p.open("rb") as fh:
        for _, raw in zip(range(n), fh):
            try:
                obj = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                continue
            if isinstance(obj, dict):
                cols.update(dict.fromkeys(obj))
    return list(cols)


def _read_jsonl(p: Path, problems: list[Problem]) -> Iterator[tuple[int, dict[str, Any]]]:
    return jsonl_objects(p, problems, bad_json="not valid JSON ({error}); row skipped",
                         not_object="not a JSON object; row skipped")


def _read_parquet(p: Path):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError(PARQUET_HINT) from None
    pf = pq.ParquetFile(p)

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        n = 0
        for batch in pf.iter_batches(batch_size=10_000):
            for row in batch.to_pylist():
                n += 1
                yield n, row

    return list(pf.schema_arrow.names), rows()


def cell_text(value: Any) -> str | None:
    """A scalar cell as a stripped string ("895" for 895 and 895.0, as a shop writes a price), None if empty."""
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    s = str(value).strip()
    return s or None
