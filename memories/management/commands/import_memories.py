"""``manage.py import_memories``: store memories from a JSON Lines file (SPEC §7).

Every line is validated before anything of it is written (``memories.portability.parsing``).
A rejected line is reported on standard error as ``PATH: line N: field: why`` and skipped;
the summary counts it and names the first line numbers, and counts the ``supersedes``
entries left out (``memories.portability.importing``: not an error, the line is stored). Idempotent and safe to run
concurrently: to resume an interrupted import, run the same command again — stored lines
count as duplicates. The exit status is non-zero when nothing could be read (the file
cannot be opened, or every line was rejected) or the import was interrupted (database,
embedding provider, Ctrl-C); an interrupted import still prints its summary first.
"""

import os
import sys
import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from memories.embeddings import EmbeddingError
from memories.portability import IMPORT_BATCH_SIZE, ImportInterrupted, InvalidNamespace, memories_import

STDIN = "-"
#: Line numbers named in the one-line summary (every kept error is printed above it).
SUMMARY_LINE_NUMBERS = 20


def _counted(stream, bar):
    for line in stream:
        bar.update(len(line))
        yield line


def _error_lines(summary) -> str:
    if not summary.error_count:
        return ""
    numbers = ", ".join(str(error.line) for error in summary.errors[:SUMMARY_LINE_NUMBERS])
    return f" (lines {numbers}{', …' if summary.error_count > SUMMARY_LINE_NUMBERS else ''})"


def _summary_message(summary, elapsed: float) -> str:
    message = (
        f"read {summary.lines} lines in {elapsed:.1f} s: created {summary.created}, "
        f"duplicates {summary.duplicates}, errors {summary.error_count}{_error_lines(summary)}; "
        f"vectors: {summary.embeddings_reused} from the file, "
        f"{summary.embedded} embedded with {summary.embedding_model}"
    )
    if summary.ids_reassigned:
        message += f"; {summary.ids_reassigned} stored under a new id (their id was taken)"
    if summary.supersedes_dropped:
        message += (
            f"; {summary.supersedes_dropped} supersedes entries left out "
            "(they name no memory of the namespace that their memory supersedes or could supersede)"
        )
    return message


class Command(BaseCommand):
    help = (
        "Import memories from a JSON Lines file (as written by export_memories); '-' reads standard input. "
        "Run it again to resume an interrupted import."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="the .jsonl file, or - for standard input")
        parser.add_argument("--namespace", help="store every memory in this namespace instead of the file's")
        parser.add_argument(
            "--batch-size", type=int, default=IMPORT_BATCH_SIZE, help="memories per insert and per embedding call"
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, path, namespace, batch_size, no_progress, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        try:
            stream = sys.stdin.buffer if path == STDIN else open(path, "rb")
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        total = None if path == STDIN else os.fstat(stream.fileno()).st_size
        started = time.monotonic()
        interrupted = None
        try:
            with tqdm(
                total=total, desc="importing", unit="B", unit_scale=True, disable=no_progress, file=self.stderr
            ) as bar:
                summary = memories_import(lines=_counted(stream, bar), namespace=namespace, batch_size=batch_size)
        except ImportInterrupted as exc:
            summary, interrupted = exc.summary, exc
        except InvalidNamespace as exc:
            raise CommandError(str(exc)) from None
        finally:
            if path != STDIN:
                stream.close()
        message = _summary_message(summary, time.monotonic() - started)
        for error in summary.errors:
            self.stderr.write(f"{path}: {error}")
        if summary.error_count > len(summary.errors):
            self.stderr.write(f"{path}: … and {summary.error_count - len(summary.errors)} more rejected lines")
        if interrupted is not None:
            self.stderr.write(self.style.WARNING(message))
            cause = interrupted.__cause__
            reason = "the embedding provider failed: " if isinstance(cause, EmbeddingError) else ""
            raise CommandError(
                f"{path}: {reason}{interrupted}; the batches stored before it stay — "
                "run the same import again to continue (stored lines count as duplicates)"
            ) from None
        if summary.nothing_read:
            raise CommandError(f"nothing could be read from {path}: {message}")
        style = self.style.WARNING if summary.error_count else self.style.SUCCESS
        self.stdout.write(style(message))
