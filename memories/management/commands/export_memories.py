"""``manage.py export_memories``: write memories as JSON Lines (SPEC §7).

Streams through a server-side cursor (``memories.portability.memories_export``),
so memory use stays flat at any table size. A file is written as ``PATH.partial`` and
renamed when complete (removed when the export fails), so an interrupted export never
leaves a file that looks whole.
The file is created with mode 0600 (owner only, whatever the umask): it holds every
memory of the exported namespaces.
With no ``--output`` (or ``-``) the lines go to standard output and the progress bar
and summary to standard error.
"""

import json
import os
import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from memories.portability import EXPORT_CHUNK_SIZE, memories_export, memories_export_count

STDOUT = "-"
#: Owner read/write only: an export holds every memory of its namespaces.
FILE_MODE = 0o600


def _open_private(path: str):
    """Create ``path`` afresh for writing, a file only its owner can read (0600, whatever
    the umask). Whatever has that name already (a stale ``.partial``, or a hard link or
    symlink planted in a shared directory) is unlinked first, never written through."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    # O_EXCL: a name re-created after the unlink is refused (an error), not opened.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        return os.fdopen(fd, "w", encoding="utf-8", newline="\n")
    except BaseException:
        os.close(fd)
        raise


class Command(BaseCommand):
    help = "Export memories as JSON Lines (one memory per line) to a file or standard output."

    def add_arguments(self, parser):
        parser.add_argument("-o", "--output", default=STDOUT, help="file to write (default: standard output)")
        parser.add_argument("--namespace", help="only this namespace (default: all)")
        parser.add_argument("--include-deleted", action="store_true", help="also soft-deleted and merged memories")
        parser.add_argument(
            "--with-embeddings", action="store_true", help="add embedding, embeddingModel, embeddingTruncated"
        )
        parser.add_argument("--chunk-size", type=int, default=EXPORT_CHUNK_SIZE, help="rows per cursor fetch")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, output, namespace, include_deleted, with_embeddings, chunk_size, no_progress, **options):
        if chunk_size < 1:
            raise CommandError("--chunk-size must be at least 1")
        to_stdout = output == STDOUT
        report = self.stderr if to_stdout else self.stdout
        started = time.monotonic()
        total = memories_export_count(namespace=namespace, include_deleted=include_deleted)
        records = memories_export(
            namespace=namespace, include_deleted=include_deleted, with_embeddings=with_embeddings, chunk_size=chunk_size
        )
        partial = f"{output}.partial"
        try:
            stream = self.stdout if to_stdout else _open_private(partial)
        except OSError as exc:
            raise CommandError(f"cannot write {partial}: {exc.strerror}") from None
        written = 0
        try:
            with tqdm(total=total, desc="exporting", unit="memory", disable=no_progress, file=self.stderr) as bar:
                for record in records:
                    line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
                    # OutputWrapper adds the newline itself.
                    stream.write(line if to_stdout else line + "\n")
                    written += 1
                    bar.update(1)
        except BaseException:
            if not to_stdout:
                stream.close()
                os.unlink(partial)
            raise
        if not to_stdout:
            stream.close()
            os.replace(partial, output)
        elapsed = time.monotonic() - started
        where = "standard output" if to_stdout else output
        report.write(
            f"exported {written} memories{' with embeddings' if with_embeddings else ''} to {where} "
            f"in {elapsed:.1f} s ({written / elapsed if elapsed else 0:.0f}/s)",
            style_func=self.style.SUCCESS,
        )
