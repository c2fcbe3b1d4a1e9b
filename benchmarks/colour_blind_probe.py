"""What a trained model leaves on the table (BENCHMARKS.md 13g): the same weights served colour-blind, where the
variant misses are, and whether lexical signal is missing.

    cd benchmarks
    ../.venv/bin/python colour_blind_probe.py --model ../runs/i9/base/myntra-noprod-new/model --catalog myntra-noprod
    ../.venv/bin/python colour_blind_probe.py --model ... --catalog myntra-noprod --misses --lexical

Default: the model scored as trained and with `Featurizer.colour_blind` switched on after loading (colour words
out of the text, the STD colour field empty; the weights unchanged), as defaults_table.py scores it.
--misses (Myntra): for the variant pairs whose partner is not among the query's 10 nearest, how many share the
query's title once colour words are out, how many items share that title, and the colour-free word Jaccard of the
two descriptions (misses against hits).
--lexical (Myntra): the model's cosine fused with TF-IDF of all the text (h and sqrt(w) x TF-IDF side by side,
so the cosine is the sum), and TF-IDF of words with 1-, 1-2- and 1-3-grams (sublinear tf).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

import numpy as np

from defaults_table import METRICS, load_catalog, score, scored_subset


def _row(r: dict, keys) -> str:
    return " / ".join(f"{k} {r[k]:.3f}" for k in keys)


def colour_blind(model: Path, catalog: str, items, pairs, labels) -> np.ndarray:
    """Print the scores as trained and colour-blind; return the as-trained vectors of the scored items."""
    from itemtower.artifacts import Embedder

    rows, fields, lab = scored_subset(catalog, items, labels)
    emb = Embedder.load(model)
    emb.precision = "fp32"
    sub = [items[i] for i in rows]
    keys = METRICS["musinsa" if catalog == "musinsa" else "myntra"]
    out = None
    for blind in (False, True):
        emb.featurizer.colour_blind = blind
        v = emb.embed(sub)
        out = v if not blind else out
        print(("colour-blind" if blind else "as trained") + ": " + _row(score(v, items, rows, fields, pairs, lab),
                                                                        keys), flush=True)
    return out


def misses(v: np.ndarray, items, pairs) -> None:
    from itemtower.evaluation.topk import top_k
    from itemtower.features.lexicon import load_lexicon

    lex = load_lexicon()
    words = {k[0].lower() for k, senses in lex.index.items()
             if len(k) == 1 and any(s.std_field == "color" for s in senses)}
    for it in items:
        for c in it["std"].get("base_colour", []):
            words |= set(c.lower().split())

    def plain(text: str) -> list[str]:
        return [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in words]

    key = [" ".join(plain(it["title"])) for it in items]
    crowd = Counter(key)
    desc = [set(plain((it.get("re", {}).get("description") or [""])[0])) for it in items]
    pos = {it["id"]: i for i, it in enumerate(items)}
    idx, _ = top_k(v, 10)
    near = [set(r) for r in idx]
    directed = [(pos[a], pos[b]) for a, b in pairs]  # the first id of each pair asks for the second
    miss = [(i, j) for i, j in directed if j not in near[i]]
    hit = [(i, j) for i, j in directed if j in near[i]]
    same = [(i, j) for i, j in miss if key[i] == key[j]]
    jac = lambda i, j: len(desc[i] & desc[j]) / max(1, len(desc[i] | desc[j]))  # noqa: E731
    print(f"pairs with the same colour-free title: {np.mean([key[pos[a]] == key[pos[b]] for a, b in pairs]):.3f}")
    print(f"misses (first id -> second): {len(miss)} of {len(directed)}; sharing the colour-free title: {len(same)}, "
          f"items with that title: median {np.median([crowd[key[i]] for i, _ in same]):.0f} "
          f"(quartiles {np.percentile([crowd[key[i]] for i, _ in same], 25):.0f}, "
          f"{np.percentile([crowd[key[i]] for i, _ in same], 75):.0f})")
    print(f"description word Jaccard, colour-free: misses median {np.median([jac(*p) for p in miss]):.2f}, "
          f"hits median {np.median([jac(*p) for p in hit]):.2f}")


def lexical(v: np.ndarray, catalog: str, items, pairs, labels) -> None:
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    from itemtower.evaluation import baselines as bl

    rows, fields, lab = scored_subset(catalog, items, labels)
    keys = METRICS["myntra"][:4]
    texts = [bl.item_text(it) for it in items]
    t = bl.tfidf_embeddings(texts)
    for w in (0.25, 1.0):
        x = sp.hstack([sp.csr_matrix(v), t * np.sqrt(w)]).tocsr()
        print(f"h + {w} x TF-IDF char 2-4: " + _row(score(x, items, rows, fields, pairs, lab), keys), flush=True)
    for ng in ((1, 1), (1, 2), (1, 3)):
        x = normalize(TfidfVectorizer(ngram_range=ng, sublinear_tf=True).fit_transform(texts))
        print(f"TF-IDF words {ng}: " + _row(score(x, items, rows, fields, pairs, lab), keys), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--catalog", choices=["myntra", "myntra-noprod", "musinsa"], default="myntra-noprod")
    ap.add_argument("--misses", action="store_true")
    ap.add_argument("--lexical", action="store_true")
    args = ap.parse_args()
    items, pairs, labels = load_catalog(args.catalog)  # once: the adapters read and parse the whole catalog
    v = colour_blind(args.model, args.catalog, items, pairs, labels)
    if args.misses:
        misses(v, items, pairs)
    if args.lexical:
        lexical(v, args.catalog, items, pairs, labels)


if __name__ == "__main__":
    main()
