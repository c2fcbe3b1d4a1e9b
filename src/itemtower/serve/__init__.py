"""The HTTP service: `create_app(settings, embedder, index)` builds a FastAPI app (see app.py)."""

from itemtower.serve.settings import Settings

__all__ = ["Settings", "create_app"]


def create_app(*args, **kwargs):
    # Imported lazily so that `from itemtower.serve import Settings` does not pull in FastAPI and prometheus.
    from itemtower.serve.app import create_app as _create_app

    return _create_app(*args, **kwargs)
