"""Prometheus metrics: request counts and latency per route, and the index size.

Each app gets its own CollectorRegistry (not prometheus_client's global one), so that tests that build several
apps in one process do not clash on duplicate metric names, and /metrics shows only this app's numbers.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics", "MetricsMiddleware"]

# Latency buckets (seconds) around the service's target (similar-by-id p99 < 25 ms).
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class Metrics:
    """The metrics of one app, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "itemtower_requests", "HTTP requests handled", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "itemtower_request_duration_seconds", "Time to handle a request, by route", ["method", "route"],
            buckets=_BUCKETS, registry=self.registry,
        )
        self.items = Gauge("itemtower_index_items", "Items in the index", registry=self.registry)

    def track_index_size(self, size: Callable[[], float]) -> None:
        """Read the index size when /metrics is scraped, rather than updating a number on every write."""
        self.items.set_function(size)


class MetricsMiddleware:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware on the hot similar-by-id path).

    The route label is the route's template (`/items/{item_id}/similar`), never the raw path, so that the number
    of time series stays bounded whatever ids clients ask for; unmatched paths share the label "<unmatched>".
    """

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # if the app raises before sending a response, that is what the client gets
        start = time.perf_counter()

        async def send_and_record(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = scope.get("route")  # set by the router once it has matched (the scope dict is shared)
            # path_format drops converters: "/items/{item_id:path}" is labelled "/items/{item_id}"
            label = getattr(route, "path_format", None) or getattr(route, "path", None) or "<unmatched>"
            method = scope.get("method", "")
            self.metrics.latency.labels(method, label).observe(time.perf_counter() - start)
            self.metrics.requests.labels(method, label, str(status)).inc()
