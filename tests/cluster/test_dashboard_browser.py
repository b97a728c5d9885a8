"""The dashboard of a 3-node cluster in a real browser (Debian's Chromium via Playwright, the
``browser`` fixture of tests/conftest.py): each node's page shows the ring with three nodes,
all up; kill -9 one node and the survivors' pages turn it down, with no console errors."""

from __future__ import annotations

import re
from pathlib import Path

from .conftest import wait_until

URL_RE = re.compile(r"dashboard: (http://127\.0\.0\.1:\d+/)")


def dashboard_url(log_path: Path) -> str | None:
    match = URL_RE.search(log_path.read_text())
    return match.group(1) if match else None


def test_each_page_shows_the_ring_and_a_killed_node_turns_down(make_cluster, browser) -> None:
    cluster = make_cluster(3, sets=['node.metrics=["dashboard"]', "plugins.dashboard.port=0",
                                    "plugins.dashboard.sample_interval_seconds=0.5"])
    urls = [wait_until(lambda n=n: dashboard_url(n.log_path), 20, f"{n.node_id}'s dashboard")
            for n in cluster.nodes[:3]]
    assert len(set(urls)) == 3
    errors: list[str] = []
    pages = []
    for url in urls:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.wait_for_function(
            "() => document.querySelectorAll(\"#nodes tbody tr[data-state='up']\").length === 3",
            timeout=30_000)
        assert page.eval_on_selector("#ring", "c => c.dataset.nodes") == "3"
        pages.append(page)

    cluster[2].kill()  # node-3
    for page in pages[:2]:
        page.wait_for_function(
            "() => { const r = document.querySelector(\"#nodes tbody tr[data-node='node-3']\");"
            " return r && r.dataset.state !== 'up'; }", timeout=30_000)
        assert page.locator("#nodes tbody tr[data-state='up']").count() == 2
    assert errors == []
