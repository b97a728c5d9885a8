"""The dashboard of a 3-node cluster in a real browser (Debian's Chromium via Playwright, the
``browser`` fixture of tests/conftest.py): each node's page shows the ring with three nodes,
all up, with this node's calls to each other one; kill -9 one node and the survivors' pages
turn it down and show the failed calls to it, with no console errors."""

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
        # This node's calls to the two others (heartbeats at least) and their latency.
        page.wait_for_function(
            "() => [...document.querySelectorAll('#nodes tbody tr')].filter(r =>"
            " /^[0-9]/.test(r.cells[5].textContent) && r.cells[6].textContent.includes"
            "(' / ')).length === 2", timeout=30_000)
        pages.append(page)

    # Failed calls to node-3 as the page shows them ("123 · 4 failed"; the start, before
    # every node listened, may have failed some).
    failed_to_node_3 = ("() => { const r = document.querySelector(\"#nodes tbody "
                        "tr[data-node='node-3']\"); const m = r && r.cells[5].textContent"
                        ".match(/([0-9]+) failed/); return m ? Number(m[1]) : 0; }")
    failed_before = [page.evaluate(failed_to_node_3) for page in pages[:2]]
    cluster[2].kill()  # node-3
    for page, before in zip(pages[:2], failed_before, strict=True):
        page.wait_for_function(
            "() => { const r = document.querySelector(\"#nodes tbody tr[data-node='node-3']\");"
            f" return r && r.dataset.state !== 'up' && ({failed_to_node_3})() > {before}; }}",
            timeout=30_000)
        assert page.locator("#nodes tbody tr[data-state='up']").count() == 2
    assert errors == []
