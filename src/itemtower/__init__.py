"""itemtower: self-supervised contrastive item embeddings for fashion catalogs."""

__version__ = "0.1.0"
__all__ = ["__version__"]
