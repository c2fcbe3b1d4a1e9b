"""schemathesis against the app's own OpenAPI document: every route (writes with the API key), in-process over
ASGI with FakeEmbedder, every check schemathesis has (`--checks all`): no 5xx, every status code, content type,
header and body as documented, schema-valid requests accepted, schema-invalid ones rejected, 405s for undeclared
methods with a true Allow header, writes refused without the key.

Bounded and repeatable: a few dozen examples per route, derandomized (the same cases every run), no example
database; about 40 s on 2 cores. The fuzzing that found issue 10's bugs ran far longer (schemathesis CLI,
`--checks all`); this keeps what it found from coming back.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")  # the `test` extra pins it; a bare install skips, saying so

from hypothesis import HealthCheck, settings  # noqa: E402  (hypothesis comes with schemathesis)

from fakes import FakeEmbedder, catalog  # noqa: E402
from itemtower.index import FaissIndex  # noqa: E402
from itemtower.serve.app import create_app  # noqa: E402
from itemtower.serve.settings import Settings  # noqa: E402

KEY = "schemathesis-key"
EXAMPLES = 20  # per route and phase: each route's error paths, and about 1,000 requests in all


class ExplainingFake(FakeEmbedder):
    """FakeEmbedder with the real Embedder's explain capability (serve/deps.Explainer), so that the explain
    route's answer is checked too. (A model without attention answers a documented 501; test_api covers it.)"""

    def explain(self, item: dict, top: int = 5) -> dict:
        words = (item.get("title") or "").split()[:top]
        return {"id": item["id"], "fields": [
            {"field": field, "values": values, "null_weight": 0.5,
             "tokens": [{"token": w, "segment": "title", "weight": 0.5 / max(1, len(words))} for w in words]}
            for field, values in (item.get("std") or {}).items()]}


def _app():
    embedder = ExplainingFake()
    items = catalog()
    index = FaissIndex(embedder.dim)
    index.upsert([it["id"] for it in items], embedder.embed(items), items)
    # small limits, so that the limits themselves get exercised (k > max_k, more items than max_batch)
    return create_app(Settings(model_dir=Path("/nonexistent/itemtower-schemathesis"), api_key=KEY, max_k=20,
                               max_batch=8), embedder=embedder, index=index)


APP = _app()
# Loading the document starts the app's lifespan (kept for the process), so it already names the model's std fields.
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
SEEN: Counter = Counter()  # status classes of every response, for the summary below


@pytest.fixture(scope="module", autouse=True)
def _summary():
    yield
    print(f"\nschemathesis: {sum(SEEN.values())} requests, " + ", ".join(f"{k}: {v}" for k, v in sorted(SEEN.items())))


@schema.parametrize()
@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case):
    """Each generated request, sent with the API key: every schemathesis check passes on its response."""
    response = case.call_and_validate(headers={"X-API-Key": KEY})
    SEEN[f"{response.status_code // 100}xx"] += 1


class _Workflow(schema.as_state_machine()):
    """Sequences along the links schemathesis infers (PUT an item, then GET / similar / DELETE it, ...): the
    stateful checks (a deleted item is gone, a created one is there) on top of the per-response ones."""

    def get_call_kwargs(self, case):
        return {"headers": {"X-API-Key": KEY}}

    def after_call(self, response, case):
        SEEN[f"{response.status_code // 100}xx"] += 1


def test_stateful_workflows_conform():
    """A few short, derandomized workflows (bounded: 10 sequences of at most 6 calls)."""
    _Workflow.run(settings=settings(max_examples=10, stateful_step_count=6, derandomize=True, database=None,
                                    deadline=None, suppress_health_check=list(HealthCheck)))
