"""``manage.py benchmark``: latency, scale and ranking at N memories, written to a report (SPEC §7).

Everything happens in a fresh namespace ``bench-<timestamp>`` with its own API key, on
the database the settings give; both are removed at the end unless ``--keep``. The logic
lives in ``benchmarks.benchmarking`` (load, measure, compare), ``locustfiles.loadrun``
(server set and locust) and ``locustfiles.report`` (targets, JSON, Markdown, PNG).
"""

import logging
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from benchmarks.benchmarking import (
    DEFAULT_AGREEMENT_QUERIES,
    DEFAULT_ITERATIONS,
    DEFAULT_RESONANT_SHARE,
    DEFAULT_SIZES,
    BenchmarkError,
    BenchmarkOptions,
    kept_namespace_remove,
    run_benchmark,
)
from locustfiles.loadrun import LoadRunError
from locustfiles.report import render_files


def _sizes(value: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in value.split(",") if part.strip()]
    except ValueError:
        raise CommandError(f"--sizes takes comma-separated integers, not {value!r}") from None
    if not sizes or min(sizes) < 1:
        raise CommandError("--sizes must list positive integers")
    return sizes


class Command(BaseCommand):
    help = "Benchmark add/query/bootstrap latency, scale and ranking agreement in a throw-away namespace."

    def add_arguments(self, parser):
        parser.add_argument(
            "--sizes", default=",".join(str(s) for s in DEFAULT_SIZES),
            help="corpus sizes to measure at, ascending, comma-separated (default %(default)s)",
        )  # fmt: skip
        parser.add_argument(
            "--synthetic", action="store_true",
            help="synthetic clustered unit vectors (fast); default: real texts embedded with the configured model",
        )  # fmt: skip
        parser.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS, help="measured requests per series")
        parser.add_argument(
            "--agreement-queries", type=int, default=DEFAULT_AGREEMENT_QUERIES,
            help="queries compared with the exact full-scan ranking (default %(default)s)",
        )  # fmt: skip
        parser.add_argument(
            "--resonant-share", type=float, default=DEFAULT_RESONANT_SHARE,
            help="share of memories with φ in [3, 5] (the rest in [0, 1]; default %(default)s)",
        )  # fmt: skip
        parser.add_argument("--url", help="also measure through this running server (its database must be this one)")
        parser.add_argument(
            "--locust", action="store_true",
            help="start gunicorn + the task worker and run the locust mix (50 users, 60 s) and a saturation run",
        )  # fmt: skip
        parser.add_argument("--locust-users", type=int, default=50)
        parser.add_argument("--locust-seconds", type=int, default=60)
        parser.add_argument("--saturation-users", type=int, default=50)
        parser.add_argument("--saturation-seconds", type=int, default=30)
        parser.add_argument("--load-threads", type=int, help="torch threads while embedding the corpus (default: all cores)")
        parser.add_argument("--seed", type=int, default=2026)
        parser.add_argument(
            "--profile",
            type=int,
            default=0,
            metavar="N",
            help="at the largest size, profile N requests per operation: SQL statements, Python stages, CPU ms",
        )
        parser.add_argument("--out", default="docs/benchmarks/", help="report directory (default %(default)s)")
        parser.add_argument("--name", help="report file name (default: benchmark-synthetic or benchmark-embedded)")
        parser.add_argument("--keep", action="store_true", help="keep the namespace and its API key")
        parser.add_argument("--remove", metavar="NAMESPACE", help="remove a namespace a --keep run left, then stop")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **opts):
        if opts["remove"]:
            try:
                count = kept_namespace_remove(opts["remove"])
            except BenchmarkError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"removed {opts['remove']}: {count} memories, its benchmark key and tasks")
            return
        options = BenchmarkOptions(
            sizes=_sizes(opts["sizes"]),
            synthetic=opts["synthetic"],
            iterations=opts["iterations"],
            agreement_queries=opts["agreement_queries"],
            resonant_share=opts["resonant_share"],
            keep=opts["keep"],
            url=opts["url"],
            locust=opts["locust"],
            locust_users=opts["locust_users"],
            locust_seconds=opts["locust_seconds"],
            saturation_users=opts["saturation_users"],
            saturation_seconds=opts["saturation_seconds"],
            seed=opts["seed"],
            progress=not opts["no_progress"],
            profile=opts["profile"],
            command=" ".join(["python", "manage.py", *sys.argv[1:]]) if sys.argv[1:2] == ["benchmark"] else "",
        )
        if opts["load_threads"]:
            options.load_threads = opts["load_threads"]
        if options.profile < 0:
            raise CommandError("--profile must be 0 (off) or a number of requests")
        if options.iterations < 1 or options.agreement_queries < 1:
            raise CommandError("--iterations and --agreement-queries must be at least 1")
        if not 0 <= options.resonant_share <= 1:
            raise CommandError("--resonant-share must be in [0, 1]")
        # django-q logs every enqueued task and httpx every request at INFO: thousands of
        # lines that would bury the progress.
        quieted = {name: logging.getLogger(name) for name in ("django-q", "httpx")}
        levels = {name: logger.level for name, logger in quieted.items()}
        for logger in quieted.values():
            logger.setLevel(logging.WARNING)
        try:
            report = run_benchmark(options, log=lambda message: self.stdout.write(message))
        except (BenchmarkError, LoadRunError) as exc:
            raise CommandError(str(exc)) from None
        finally:
            for name, logger in quieted.items():
                logger.setLevel(levels[name])
        name = opts["name"] or f"benchmark-{report['corpus']['mode']}"
        paths = render_files(report, Path(opts["out"]), name)
        for row in report["targets"]:
            verdict = {True: "met", False: "NOT MET", None: "not measured"}[row["met"]]
            self.stdout.write(f"  {row['target']}: {row['measured']} — {verdict}")
        self.stdout.write(self.style.SUCCESS("wrote " + ", ".join(str(p) for p in paths.values())))
