"""Which values of a field does a model's top-10 mix up? Error analysis of attribute consistency@10.

    .venv/bin/python benchmarks/confusions.py --model runs/bench/myntra_v2/model --catalog runs/myntra2.jsonl \
        --field article_type

Embeds the catalog with the model (h, as served), takes each item's 10 nearest neighbours (exact cosine, the item
itself excluded) and counts the unordered (value, value) pairs where query and neighbour differ. Prints the share of
off-field neighbours and the commonest confusions with their share of all mismatches.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--catalog", type=Path, required=True)
    ap.add_argument("--field", required=True, help="STD field to check")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--top", type=int, default=12)
    args = ap.parse_args()

    from itemtower.evaluation import metrics as M
    from itemtower.artifacts import Embedder
    from itemtower.catalog import read_catalog

    items = read_catalog(args.catalog).items
    emb = Embedder.load(args.model).embed(items)
    idx, _ = M.top_k(emb, args.k)
    labels = [((it.get("std") or {}).get(args.field) or [None])[0] for it in items]
    pairs: Counter[tuple[str, str]] = Counter()
    n = 0
    for i, row in enumerate(idx):
        if labels[i] is None:
            continue
        for j in row:
            if labels[j] is None:
                continue
            n += 1
            if labels[i] != labels[j]:
                pairs[tuple(sorted((labels[i], labels[j])))] += 1
    miss = sum(pairs.values())
    print(f"{args.field}: {miss} of {n} neighbours ({miss / max(n, 1):.1%}) have another value")
    print("| values | neighbours | share of mismatches |\n|---|---|---|")
    for (a, b), c in pairs.most_common(args.top):
        print(f"| {a} / {b} | {c} | {c / miss:.3f} |")


if __name__ == "__main__":
    main()
