"""`python -m bench`: runs every benchmark in turn and prints their tables (`make bench` runs it with a
throwaway PostgreSQL server, which `bench.school` needs). `bench.reid` is left out: it needs dlib, which the
product does not install (see its docstring)."""

import importlib
import sys

BENCHMARKS = (
    "bench.pipeline",
    "bench.galleries",
    "bench.layouts",
    "bench.signals",
    "bench.identity",
    "bench.emotion_models",
    "bench.gallery_emotions",
    "bench.flags",
    "bench.dashboard",
    "bench.report",
    "bench.classes",
    "bench.classroom",
    "bench.school",
)


def main() -> int:
    worst = 0
    for name in BENCHMARKS:
        print(f"\n== {name}", flush=True)
        worst = max(worst, importlib.import_module(name).main([]))
    return worst


if __name__ == "__main__":
    sys.exit(main())
