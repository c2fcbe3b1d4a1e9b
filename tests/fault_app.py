"""`uvicorn fault_app:app --app-dir tests`: the real service (create_app, the durable index in ITEMTOWER_MODEL/index)
with tests/fakes.FakeEmbedder standing in for the trained model, so that a server process starts in about a second
(no torch import). tests/test_fault.py uses it for the extra seeds of the kill -9 test; seed 0 runs main:app itself.
"""

import sys
import types

from fakes import FakeEmbedder


class _Embedder:
    @classmethod
    def load(cls, model_dir):
        return FakeEmbedder()


# app.py imports itemtower.artifacts when the lifespan starts: this stub answers instead (and keeps torch out).
_stub = types.ModuleType("itemtower.artifacts")
_stub.Embedder = _Embedder
sys.modules["itemtower.artifacts"] = _stub

from itemtower.serve.app import create_app  # noqa: E402  (after the stub, on purpose)

app = create_app()
