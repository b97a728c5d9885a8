"""Results as dataclasses, medians and targets, the printed tables and the JSON file."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SERVERS = ("distcache", "redis")


@dataclass(frozen=True)
class Case:
    """One redis-benchmark configuration, run once per test (SET, GET) per server per round."""

    key: str
    label: str
    args: tuple[str, ...]
    requests: int


@dataclass
class RunResult:
    """One redis-benchmark invocation against one server (one test of one case)."""

    round: int
    case: str
    test: str
    server: str
    requests: int
    wall_s: float
    cpu_ticks: int
    cpu_us_per_op: float | None = None
    rps: float | None = None
    avg_ms: float | None = None
    min_ms: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    error: str | None = None


@dataclass
class ServerStats:
    """Medians over the rounds that succeeded, for one server, case and test."""

    rounds_ok: int
    rps: float | None
    p50_ms: float | None
    p99_ms: float | None
    cpu_us_per_op: float | None


@dataclass
class CaseSummary:
    case: str
    label: str
    test: str
    distcache: ServerStats
    redis: ServerStats
    ops_ratio: float | None
    cpu_ratio: float | None
    #: DistCache/Redis ops/s of each round (the two runs of a round are adjacent in time, so
    #: their spread shows how noisy the machine was).
    ops_ratio_per_round: list[float | None]


@dataclass
class MemoryResult:
    server: str
    keys: int
    key_bytes: int
    value_bytes: int
    rss_before: int
    rss_after: int
    dbsize: int
    load_s: float
    bytes_per_key: float


@dataclass
class Target:
    """One goal of the issue: ``value op threshold`` (``value`` is None when not measured)."""

    name: str
    value: float | None
    op: str
    threshold: float
    unit: str = "x"
    passed: bool | None = field(init=False)

    def __post_init__(self) -> None:
        if self.value is None:
            self.passed = None
        elif self.op == ">=":
            self.passed = self.value >= self.threshold
        else:
            self.passed = self.value <= self.threshold

    def cell(self) -> str:
        mark = {True: "PASS", False: "FAIL", None: "n/a"}[self.passed]
        return f"{self.op}{self.threshold:.2f}{self.unit} {mark}"


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def _per_round_ratios(runs: Sequence[RunResult], case: str, test: str) -> list[float | None]:
    rps = {(r.round, r.server): r.rps for r in runs if (r.case, r.test) == (case, test)}
    rounds = sorted({r for r, _ in rps})
    return [ratio(rps.get((r, "distcache")), rps.get((r, "redis"))) for r in rounds]


def summarise(cases: Sequence[Case], runs: Sequence[RunResult]) -> list[CaseSummary]:
    summaries = []
    for case in cases:
        for test in ("SET", "GET"):
            stats = {}
            for server in SERVERS:
                ok = [r for r in runs if (r.case, r.test, r.server) == (case.key, test, server)
                      and r.error is None]
                stats[server] = ServerStats(
                    rounds_ok=len(ok), rps=_median([r.rps for r in ok]),
                    p50_ms=_median([r.p50_ms for r in ok]), p99_ms=_median([r.p99_ms for r in ok]),
                    cpu_us_per_op=_median([r.cpu_us_per_op for r in ok]))
            dc, rd = stats["distcache"], stats["redis"]
            summaries.append(CaseSummary(
                case=case.key, label=case.label, test=test, distcache=dc, redis=rd,
                ops_ratio=ratio(dc.rps, rd.rps),
                cpu_ratio=ratio(dc.cpu_us_per_op, rd.cpu_us_per_op),
                ops_ratio_per_round=_per_round_ratios(runs, case.key, test)))
    return summaries


#: Throughput goals of the issue (DistCache ops/s over Redis ops/s), by case key.
OPS_TARGETS = {"c50": 0.9, "c50-P16": 0.5, "c50-P16-r100k": 0.45, "c1": 0.9}
CPU_TARGETS = {"c50": 1.3}
P99_TARGETS_MS = {"c1": 0.3}
MEMORY_TARGET = 2.5


def targets_for(summary: CaseSummary) -> dict[str, Target]:
    """The targets of one row, keyed by the column they sit beside."""
    name = f"{summary.label} {summary.test}"
    found = {}
    if summary.case in OPS_TARGETS:
        found["ops"] = Target(f"{name} ops/s ratio", summary.ops_ratio, ">=",
                              OPS_TARGETS[summary.case])
    if summary.case in CPU_TARGETS:
        found["cpu"] = Target(f"{name} server CPU/op ratio", summary.cpu_ratio, "<=",
                              CPU_TARGETS[summary.case])
    if summary.case in P99_TARGETS_MS:
        found["p99"] = Target(f"{name} DistCache p99", summary.distcache.p99_ms, "<=",
                              P99_TARGETS_MS[summary.case], unit="ms")
    return found


def memory_target(memory: dict[str, MemoryResult]) -> Target:
    value = ratio(memory["distcache"].bytes_per_key, memory["redis"].bytes_per_key) \
        if set(memory) == set(SERVERS) else None
    return Target("memory per key ratio", value, "<=", MEMORY_TARGET)


# -- printing ---------------------------------------------------------------------------------

def _num(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def _x(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-align the first two columns (names), right-align the rest (numbers)."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def throughput_table(summaries: Sequence[CaseSummary]) -> str:
    headers = ["case", "test", "DistCache ops/s", "Redis ops/s", "ratio", "target",
               "per-round ratios", "p50 ms DC", "p50 ms Redis", "p99 ms DC", "p99 ms Redis",
               "p99 target"]
    rows = []
    for s in summaries:
        t = targets_for(s)
        rounds = " ".join(_num(r, ".2f") for r in s.ops_ratio_per_round)
        rows.append([s.label, s.test, _num(s.distcache.rps, ",.0f"), _num(s.redis.rps, ",.0f"),
                     _x(s.ops_ratio), t["ops"].cell() if "ops" in t else "", rounds,
                     _num(s.distcache.p50_ms, ".3f"), _num(s.redis.p50_ms, ".3f"),
                     _num(s.distcache.p99_ms, ".3f"), _num(s.redis.p99_ms, ".3f"),
                     t["p99"].cell() if "p99" in t else ""])
    return render_table(headers, rows)


def cpu_table(summaries: Sequence[CaseSummary]) -> str:
    headers = ["case", "test", "DistCache us/op", "Redis us/op", "ratio", "target"]
    rows = []
    for s in summaries:
        t = targets_for(s)
        rows.append([s.label, s.test, _num(s.distcache.cpu_us_per_op, ".2f"),
                     _num(s.redis.cpu_us_per_op, ".2f"), _x(s.cpu_ratio),
                     t["cpu"].cell() if "cpu" in t else ""])
    return render_table(headers, rows)


def memory_table(memory: dict[str, MemoryResult]) -> str:
    headers = ["memory", "keys", "DistCache B/key", "Redis B/key", "ratio", "target"]
    dc, rd = memory.get("distcache"), memory.get("redis")
    target = memory_target(memory)
    keys = dc.keys if dc else rd.keys if rd else 0
    row = ["RSS delta", f"{keys:,}", _num(dc.bytes_per_key if dc else None, ".1f"),
           _num(rd.bytes_per_key if rd else None, ".1f"), _x(target.value), target.cell()]
    return render_table(headers, [row])


def all_targets(summaries: Sequence[CaseSummary],
                memory: dict[str, MemoryResult]) -> list[Target]:
    found = [t for s in summaries for t in targets_for(s).values()]
    return [*found, memory_target(memory)]


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=_jsonable) + "\n")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    raise TypeError(f"cannot store {type(value).__name__} in JSON")
