"""The node-level persistence state the request path reads: loading, and writes refused.

Dispatch reads two plain attributes of :class:`PersistenceStatus` (no call, no lookup per
request): ``loading`` (answer data commands with :data:`LOADING_ERROR`) and ``write_error``
(answer write commands with it while it is not None). Everything else here is for INFO.
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: Redis's reply while loading (``shared.loadingerr``), with our name.
LOADING_ERROR = "LOADING DistCache is loading the dataset in memory"

#: Redis's reply to writes while the last background save failed
#: (``shared.bgsaveerr``; stop-writes-on-bgsave-error), with our name.
SNAPSHOT_WRITE_ERROR = (
    "MISCONF DistCache is configured to save snapshots, but it's currently unable to persist "
    "to disk. Commands that may modify the data set are disabled, because this instance is "
    "configured to report errors during writes if snapshotting fails. Please check the "
    "DistCache logs for details about the error.")


def aof_write_error(reason: str) -> str:
    """Redis's reply to writes while the AOF cannot be written
    (``writeCommandsGetDiskErrorMessage``): ``reason`` is ``strerror(errno)``."""
    return f"MISCONF Errors writing to the AOF file: {reason}"


class PersistenceStatus:
    """Shared by the manager, the plugins (which report write failures here) and dispatch."""

    __slots__ = ("loading", "write_error", "_errors", "loading_start_time",
                 "loading_total_bytes", "loading_loaded_bytes", "_loading_started", "on_change")

    def __init__(self) -> None:
        #: True from start-up until recovery is over: data commands get ``-LOADING``.
        self.loading = False
        #: The error line write commands get, or None when writes are accepted.
        self.write_error: str | None = None
        self._errors: dict[str, str] = {}
        self.loading_start_time = 0
        self.loading_total_bytes = 0
        self.loading_loaded_bytes = 0
        self._loading_started = 0.0
        #: Called after ``loading`` or ``write_error`` changes (the node re-gates requests).
        self.on_change: Callable[[], None] | None = None

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def set_write_error(self, source: str, message: str | None) -> None:
        """A plugin reports that its writes fail (``message`` is the reply line for write
        commands) or work again (None)."""
        if message is None:
            self._errors.pop(source, None)
        else:
            self._errors[source] = message
        before = self.write_error
        self.write_error = next(iter(self._errors.values()), None)
        if self.write_error != before:
            self._changed()

    def begin_loading(self, total_bytes: int) -> None:
        if not self.loading:
            self.loading = True
            self._changed()
        self.loading_start_time = int(time.time())
        self._loading_started = time.monotonic()
        self.loading_total_bytes = total_bytes
        self.loading_loaded_bytes = 0

    def end_loading(self) -> None:
        if self.loading:
            self.loading = False
            self._changed()

    def loading_fields(self) -> list[tuple[str, object]]:
        """Redis's INFO fields while loading (``loading_*``)."""
        total = max(self.loading_total_bytes, 1)
        loaded = min(self.loading_loaded_bytes, total)
        elapsed = time.monotonic() - self._loading_started
        eta = int(elapsed * (total - loaded) / loaded) if loaded else 1
        return [
            ("loading_start_time", self.loading_start_time),
            ("loading_total_bytes", self.loading_total_bytes),
            ("loading_loaded_bytes", self.loading_loaded_bytes),
            ("loading_loaded_perc", f"{loaded * 100 / total:.2f}"),
            ("loading_eta_seconds", eta),
        ]
