"""The service entry point: `uvicorn main:app --reload` (Swagger UI at http://127.0.0.1:8000/docs).

The model is read from ITEMTOWER_MODEL (default runs/demo; `make demo` trains one there); without a model the
service still starts and /health says how to train one. ITEMTOWER_API_KEY, when set, is required (header
X-API-Key) for PUT and DELETE.
"""

from itemtower.serve.app import create_app

app = create_app()
