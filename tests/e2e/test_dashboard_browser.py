"""The dashboard page in a real browser: Debian's Chromium, driven by Playwright.

The page loads from a running node under traffic; its charts draw points that change between
two moments, the ring shows the cluster as /api/cluster reports it, the console stays free of
errors, and wide and narrow screenshots are saved (``DISTCACHE_TEST_ARTIFACTS``, default
``test-artifacts/``). Skipped, saying why, only when Chromium cannot be installed.

The same page from a 3-node cluster: tests/cluster/test_dashboard_browser.py.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import redis

ARTIFACTS = Path(os.environ.get("DISTCACHE_TEST_ARTIFACTS",
                              Path(__file__).resolve().parents[2] / "test-artifacts"))


def traffic(port: int, stop: threading.Event) -> None:
    """Bounded load: a few hundred requests a second until stopped (at most 60 s)."""
    client = redis.Redis(port=port, socket_timeout=5)
    deadline = time.monotonic() + 60
    i = 0
    while not stop.is_set() and time.monotonic() < deadline:
        pipe = client.pipeline(transaction=False)
        for j in range(20):
            pipe.set(f"key:{(i + j) % 500}", "x" * (j + 1))
            pipe.get(f"key:{(i + j * 7) % 700}")
        pipe.execute()
        i += 20
        time.sleep(0.02)
    client.close()


def chart_state(page, chart: str) -> dict:
    return page.eval_on_selector(f"#{chart}", "c => ({points: +c.dataset.points || 0, "
                                 "t: c.dataset.t, last: c.dataset.last, image: c.toDataURL()})")


def test_the_page_draws_live_charts_without_errors(make_node, browser) -> None:
    node = make_node('node.metrics=["dashboard"]', "plugins.dashboard.port=0",
                     "plugins.dashboard.sample_interval_seconds=0.5")
    port = node.node.metrics_sinks["dashboard"].port
    stop = threading.Event()
    load = threading.Thread(target=traffic, args=(node.port, stop), daemon=True)
    load.start()
    errors: list[str] = []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_function("() => +document.getElementById('chart-ops').dataset.points >= 3",
                               timeout=30_000)
        first = {c: chart_state(page, c) for c in ("chart-ops", "chart-latency", "chart-hits",
                                                   "chart-memory")}
        page.wait_for_function(
            "t => document.getElementById('chart-ops').dataset.t !== t",
            arg=first["chart-ops"]["t"], timeout=30_000)
        page.wait_for_timeout(600)
        second = {c: chart_state(page, c) for c in first}
        for chart in first:
            assert second[chart]["points"] >= 2, chart
            assert second[chart]["image"] != first[chart]["image"], f"{chart} did not change"
        assert float(second["chart-ops"]["last"]) > 0
        assert page.text_content("#status") == "serving"
        assert page.eval_on_selector("#ring", "c => c.dataset.nodes") == "1"
        assert page.locator("#nodes tbody tr[data-state='up']").count() == 1
        assert page.locator("#commands tbody tr").count() >= 2
        assert "GET" in page.text_content("#commands")
        page.screenshot(path=str(ARTIFACTS / "dashboard-wide.png"), full_page=True)
        phone = browser.new_page(viewport={"width": 390, "height": 844},
                                 device_scale_factor=2, is_mobile=True)
        phone.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        phone.on("pageerror", lambda e: errors.append(str(e)))
        phone.goto(f"http://127.0.0.1:{port}/")
        phone.wait_for_function(
            "() => +document.getElementById('chart-ops').dataset.points >= 2", timeout=30_000)
        phone.screenshot(path=str(ARTIFACTS / "dashboard-narrow.png"), full_page=True)
        # Readable on a phone: nothing wider than the screen (wide tables scroll in place).
        wide = phone.evaluate("""() => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > 391
                         && !(e.parentElement && e.parentElement.closest('.scroll, pre')))
            .map(e => e.tagName + '#' + e.id + '.' + e.className).slice(0, 5)""")
        assert phone.evaluate("() => document.documentElement.scrollWidth") <= 390, wide
    finally:
        stop.set()
        load.join(10)
    assert errors == []
