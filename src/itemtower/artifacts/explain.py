"""Explanations: which title and RE tokens each STD query attended to, so a merchandiser can see why two products
are close ("the 'pant.silhouette' query read 와이드 and wide").

Reads the cross-attention weights of the served tower (averaged over heads and blocks) for one item. A model
trained with photos also says how much each query read the item's photo ("image_weight"; 0 without a photo).
"""

from __future__ import annotations

from typing import Any

import torch

from itemtower.features.dataset import collate_items
from itemtower.ids import TYPE_PAD, TYPE_TITLE

__all__ = ["explain_item"]


def explain_item(embedder, item: dict[str, Any], top: int = 5) -> dict[str, Any]:
    """Per STD field: its value(s), the `top` text tokens its query attended to most, and the weight it gave to
    nothing (the null slot).

    Args:
        embedder: an artifacts.Embedder (needs .tower and .featurizer).
        item: a normalized item.
    Returns:
        {"id", "pool", "query_gate", ["photo": bool,] "fields": [{"field", "values", "null_weight",
        ["image_weight",] "tokens": [{"token", "segment", "weight"}]}]}; "fields" is empty for a tower without
        queries (pool="text"); "photo" and "image_weight" only for a model trained with photos.
    """
    feat, tower = embedder.featurizer, embedder.tower
    enc = feat.encode([item])[0]
    photos = _photos(embedder, item)
    view = collate_items([enc], feat.max_text_tokens, photos)
    t_re = view[1]
    weights = tower.attention(*view)  # per block (1, F, 1 + T), or (1, F, 2 + T) with a photo slot
    out: dict[str, Any] = {"id": item.get("id"), "pool": tower.cfg.pool, "fields": []}
    if photos is not None:
        out["photo"] = bool(photos[1][0])
    if tower.cfg.pool == "query+text":
        out["query_gate"] = round(float(tower.body.query_gate.detach().abs().mean()), 4)
    if not weights:
        return out
    w = torch.stack(weights).mean(0)[0]  # (F, 1 [+ 1] + T)
    img_w = None
    if photos is not None:  # [null, photo, text]: the photo's column apart, the rest as a text model's
        img_w, w = w[:, 1], torch.cat([w[:, :1], w[:, 2:]], 1)
    ids, types = t_re[0, 0].tolist(), t_re[0, 1].tolist()
    re_names = feat.schema.re_fields
    seg = ["title" if t == TYPE_TITLE else f"re.{re_names[t - 2]}" if t >= 2 else "" for t in types]
    tokens = [feat.tokenizer.id_to_token(i) for i in ids]
    std_in = item.get("std") or {}
    for f, name in enumerate(feat.std_fields):
        row = w[f]
        order = torch.argsort(row[1:], descending=True).tolist()
        best = [{"token": tokens[j], "segment": seg[j], "weight": round(float(row[1 + j]), 4)}
                for j in order if types[j] != TYPE_PAD][:top]
        field = {"field": name, "values": list(std_in.get(name) or []), "null_weight": round(float(row[0]), 4)}
        if img_w is not None:
            field["image_weight"] = round(float(img_w[f]), 4)
        out["fields"].append({**field, "tokens": best})
    return out


def _photos(embedder, item: dict[str, Any]):
    """(features (1, P), present (1,)) for a model trained with photos (present False without one), else None."""
    if not getattr(embedder, "uses_photos", False):
        return None
    got = embedder.photos_of([item])
    if got is None:
        import numpy as np

        return np.zeros((1, embedder.tower.cfg.image_dim), np.float32), np.zeros(1, bool)
    return got
