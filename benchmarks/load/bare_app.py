"""The reference for the load benchmark: a bare FastAPI endpoint that returns a fixed payload.

It answers GET /items/{id}/similar with the bytes in the file named by ITEMTOWER_BENCH_PAYLOAD (a real response of
the service, fetched by benchmarks/load.py), so that the only difference from the service is the work the service
does: the same framework, the same server, the same bytes on the wire.

    ITEMTOWER_BENCH_PAYLOAD=payload.json python -m uvicorn benchmarks.load.bare_app:app --port 8001
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI, Response

_PAYLOAD = Path(os.environ.get("ITEMTOWER_BENCH_PAYLOAD", "payload.json")).read_bytes()

app = FastAPI()


@app.get("/items/{item_id:path}/similar")
async def similar(item_id: str) -> Response:
    return Response(_PAYLOAD, media_type="application/json")


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
