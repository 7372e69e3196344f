"""Where one request's time goes: wall and CPU milliseconds per named stage, as the school server's ingest answers
them in a `Server-Timing` header (the W3C header browsers' developer tools show) for bench.school to add up.

Wall time less CPU time is waiting: for the database, for a lock, or for the interpreter's lock while another
request's thread runs. Timing costs two clock reads a stage (well under a microsecond), so it is always on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Stages:
    """Milliseconds per stage, summed when a stage runs more than once."""

    wall: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        began, began_cpu = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            self.wall[name] = self.wall.get(name, 0.0) + (time.perf_counter() - began) * 1000
            self.cpu[name] = self.cpu.get(name, 0.0) + (time.thread_time() - began_cpu) * 1000

    def header(self) -> str:
        """The stages as a Server-Timing value: `name;dur=WALL_MS;desc="cpu CPU_MS"`, in the order they ran."""
        return ", ".join(f'{name};dur={ms:.2f};desc="cpu {self.cpu[name]:.2f}"' for name, ms in self.wall.items())


def parse_header(value: str) -> dict[str, tuple[float, float]]:
    """Stages.header read back: per stage, its wall and CPU milliseconds."""
    stages: dict[str, tuple[float, float]] = {}
    for entry in filter(None, (part.strip() for part in value.split(","))):
        name, _, rest = entry.partition(";dur=")
        wall, _, desc = rest.partition(";desc=")
        stages[name] = (float(wall), float(desc.strip('"').removeprefix("cpu ")))
    return stages
