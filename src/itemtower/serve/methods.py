"""405 with a true `Allow` header, decided by the route that owns the path.

Item ids may contain "/", so `/items/{item_id:path}` (GET, PUT, DELETE) also matches `/items/x/similar`; the
suffix routes are declared first and win for GET. Left alone, `PUT /items/x/similar` would reach the PUT of an
item with the id "x/similar", and `POST /items/x` would answer 405 with `Allow: GET` (Starlette names the methods
of the first route that matched the path, not of all of them). Here, the first route (in declaration order) whose
path matches owns it; every route with the same path template adds its methods; any other method is a 405 that
lists exactly those. The table is built at the first request (and again if routes are added later), so routes
added by any module count.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.responses import JSONResponse

__all__ = ["MethodGuard"]


def _flat_routes(router: Any) -> list[Any]:
    """Every route with its full path: FastAPI >= 0.16x keeps included routers nested (fastapi.routing
    iter_route_contexts flattens them, prefixes applied); older versions list them flat in router.routes."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:
        return list(router.routes)
    return list(iter_route_contexts(router.routes))


class MethodGuard:
    """ASGI middleware: 405 + `Allow` for a method the owning path template does not have."""

    def __init__(self, app: Any, router: Any) -> None:
        self.app, self.router = app, router
        self._table: list[tuple[re.Pattern, str, frozenset[str]]] | None = None
        self._built_for = -1

    def _build(self) -> list[tuple[re.Pattern, str, frozenset[str]]]:
        methods: dict[str, set[str]] = {}
        regex: dict[str, re.Pattern] = {}
        for route in _flat_routes(self.router):
            path, ms, pattern = (getattr(route, a, None) for a in ("path", "methods", "path_regex"))
            if path is None or ms is None or pattern is None:
                continue  # mounts (static files), websockets: Starlette's own routing decides
            methods.setdefault(path, set()).update(ms)
            regex.setdefault(path, pattern)
        return [(regex[p], p, frozenset(ms)) for p, ms in methods.items()]

    def allowed(self, path: str) -> frozenset[str] | None:
        """The methods of the path template that owns `path`; None when no route matches it (a 404)."""
        if self._table is None or self._built_for != len(self.router.routes):  # a route added after a request
            self._built_for = len(self.router.routes)
            self._table = self._build()
        for pattern, _, methods in self._table:
            if pattern.match(path):
                return methods
        return None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            allowed = self.allowed(scope.get("path", ""))
            if allowed is not None and scope["method"] not in allowed:
                allow = ", ".join(sorted(allowed))
                response = JSONResponse({"detail": f"method {scope['method']} not allowed on {scope['path']}; "
                                                   f"allowed: {allow}", "errors": []},
                                        status_code=405, headers={"Allow": allow})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
