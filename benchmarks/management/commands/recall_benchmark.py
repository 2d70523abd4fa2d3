"""``manage.py recall_benchmark PATH``: LoCoMo evidence recall through the real API.

The logic lives in ``benchmarks.recall_benchmark``. Each conversation gets a namespace of
its own (``bench-…``, removed at the end unless ``--keep``); the report goes to
``--output`` as JSON, Markdown and PNG.
"""

import logging
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from benchmarks.recall_benchmark import RecallBenchmarkError, RecallOptions, run_recall_benchmark, write_report
from memories.services.querying import MODE_HYBRID, MODE_SEMANTIC

DEVELOPMENT = "conv-26,conv-30,conv-41,conv-42,conv-43"


class Command(BaseCommand):
    help = "LoCoMo evidence recall@5/10/20 and MRR through the API, overall, per category and over time."

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="a LoCoMo JSON file (the upstream locomo10.json format)")
        parser.add_argument(
            "--conversations",
            help=f"comma-separated sample ids to run (default: all in the file; the development set is {DEVELOPMENT})",
        )
        parser.add_argument("--mode", choices=[MODE_HYBRID, MODE_SEMANTIC], help="default: the API's default")
        parser.add_argument(
            "--query-phi-increment", type=float, help="φ a query hit adds (default: ANIMA_QUERY_PHI_INCREMENT)"
        )
        parser.add_argument(
            "--output", type=Path, default=Path("docs/benchmarks/recall-locomo"),
            help="report path without suffix: .json, .md and .png are written (default %(default)s)",
        )  # fmt: skip
        parser.add_argument("--label", default="", help="a name for this run in the report's title")
        parser.add_argument("--keep", action="store_true", help="keep the namespaces (for inspection)")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **opts):
        if opts["query_phi_increment"] is not None and not 0 <= opts["query_phi_increment"] <= 1:
            raise CommandError("--query-phi-increment must be in [0, 1]")
        options = RecallOptions(
            path=opts["path"],
            conversations=[c.strip() for c in opts["conversations"].split(",") if c.strip()]
            if opts["conversations"]
            else None,
            query_phi_increment=opts["query_phi_increment"],
            mode=opts["mode"],
            keep=opts["keep"],
            progress=not opts["no_progress"],
            command="python manage.py recall_benchmark " + " ".join(sys.argv[2:]),
            label=opts["label"],
        )
        logging.getLogger("django-q").setLevel(logging.WARNING)  # one "Enqueued" line per query otherwise
        try:
            report = run_recall_benchmark(options, log=lambda line: self.stdout.write(line))
        except RecallBenchmarkError as exc:
            raise CommandError(str(exc)) from None
        for path in write_report(report, opts["output"]):
            self.stdout.write(f"wrote {path}")
        overall = report["results"]["overall"]
        split = {name: scores.get("recall@10") for name, scores in report["results"]["firstTenVsLater"].items()}
        later = "none" if split["later"] is None else f"{split['later']:.3f}"
        self.stdout.write(
            f"recall@10 {overall['recall@10']:.3f} (first ten {split['first10']:.3f}, later {later}); "
            f"MRR {overall['mrr']:.3f}"
        )
