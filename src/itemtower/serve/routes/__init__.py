"""One APIRouter per resource: service (health, info, metrics), embed, items, search."""

from itemtower.serve.routes import embed, items, search, service

__all__ = ["embed", "items", "search", "service"]
