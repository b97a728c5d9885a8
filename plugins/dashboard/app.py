"""The dashboard's HTTP server: an aiohttp application on the node's own event loop.

A slow or hostile HTTP client cannot delay RESP clients: aiohttp reads and writes without
blocking, each handler builds its reply from in-memory counters in well under a millisecond
(no handler awaits the keyspace), and nothing here runs per RESP request.
"""

from __future__ import annotations

import asyncio
import json
import logging
from importlib import resources
from typing import Any

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from .history import History
from .prometheus import registry_for
from .settings import DashboardSettings
from .stats import cluster_view, node_stats, node_status

log = logging.getLogger("distcache.dashboard")

#: The page and its script and style, shipped in the package (no CDN: the page needs no
#: network beyond the node).
STATIC_FILES = {"/": ("index.html", "text/html"),
                "/static/dashboard.js": ("dashboard.js", "application/javascript"),
                "/static/dashboard.css": ("dashboard.css", "text/css")}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "style-src 'self'; script-src 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data, separators=(",", ":")), status=status,
                        content_type="application/json", headers=SECURITY_HEADERS)


class DashboardSink:
    """The ``dashboard`` metrics sink: started and stopped with the node."""

    def __init__(self, settings: DashboardSettings | None) -> None:
        self.settings = settings or DashboardSettings()
        self.node: Any = None
        self.history: History | None = None
        self.runner: web.AppRunner | None = None
        #: The port actually bound (``plugins.dashboard.port = 0`` picks one).
        self.port = 0
        self._sampler: asyncio.Task[None] | None = None
        self._files = {path: (resources.files(__package__).joinpath("static", name)
                              .read_bytes(), kind)
                       for path, (name, kind) in STATIC_FILES.items()}

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self, node: Any) -> None:
        self.node = node
        settings = self.settings
        self.history = History(node, settings.history_seconds, settings.sample_interval_seconds)
        app = self.make_app(node)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, settings.host, settings.port, reuse_address=True)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or ()
        self.port = sockets[0].getsockname()[1] if sockets else settings.port
        self._sampler = asyncio.create_task(self._sample_forever(), name="dashboard-history")
        log.info("dashboard on http://%s:%d/", settings.host, self.port)

    async def stop(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    @property
    def url(self) -> str:
        host = self.settings.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"http://{shown}:{self.port}/"

    async def _sample_forever(self) -> None:
        assert self.history is not None
        while True:
            try:
                self.history.sample()
            except Exception:
                log.exception("dashboard history sample failed")
            await asyncio.sleep(self.settings.sample_interval_seconds)

    # -- the application -----------------------------------------------------------------------

    def make_app(self, node: Any) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self.page)
        app.router.add_get("/static/dashboard.js", self.page)
        app.router.add_get("/static/dashboard.css", self.page)
        app.router.add_get("/api/stats", self.api_stats)
        app.router.add_get("/api/cluster", self.api_cluster)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/health", self.health)
        self.registry = registry_for(node, self.settings.metrics_namespace)
        # Other plugins' pages, added before the app is frozen by the runner.
        node.pm.hook.distcache_http_routes(app=app, node=node)
        return app

    async def page(self, request: web.Request) -> web.Response:
        body, kind = self._files[request.path]
        return web.Response(body=body, content_type=kind, headers=SECURITY_HEADERS)

    async def api_stats(self, request: web.Request) -> web.Response:
        return _json(node_stats(self.node, self.history))

    async def api_cluster(self, request: web.Request) -> web.Response:
        return _json(cluster_view(self.node))

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def health(self, request: web.Request) -> web.Response:
        status = node_status(self.node)
        return _json({"status": status, "node": self.node.node_id},
                     status=200 if status == "serving" else 503)
