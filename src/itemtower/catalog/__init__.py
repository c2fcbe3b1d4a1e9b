"""The catalog stage: items in, checked and normalized (no torch).

records.py reads and checks catalogs (read_catalog, CatalogStream: one record at a time, check_item, normalize_item),
lines.py writes catalogs and reads/writes pairs (write_catalog, read_pairs),
schema.py the Schema and infer_schema, problems.py Problem / CatalogError, jsonsafe.py what JSON can hold,
demo.py the built-in demo catalog, adapters/ real catalogs (Myntra, Musinsa, tables) -> items.
"""

from itemtower.catalog.problems import ERROR, WARNING, CatalogError, Problem
from itemtower.catalog.records import (CatalogReport, CatalogStream, check_item, normalize_item, read_catalog,
                                       read_pairs, write_catalog, write_pairs)

__all__ = ["ERROR", "WARNING", "CatalogError", "CatalogReport", "CatalogStream", "Problem", "check_item", "normalize_item", "read_catalog", "read_pairs",
           "write_catalog", "write_pairs"]
