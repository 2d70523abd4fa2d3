"""``anima``: Anima from a terminal, on the same client as everything else.

    anima store "Dana is allergic to peanuts." --category health --tag dana
    anima query "What should Dana avoid?"
    anima query "deploy steps" --metadata project=apollo --since 30d --recency-days 14
    anima query "Where does Dana live?" --as-of 2025-06-01     # or --include-superseded
    anima correct 3f2c…-… "Dana moved to Lyon."                 # the old fact is superseded
    anima correct 3f2c…-… --by 9a1b…-…                          # by an existing memory
    anima store-batch notes.jsonl --source notes     # JSON Lines or a JSON array; - for stdin
    anima forget 3f2c…-…  [--purge [--chain]]
    anima feedback 3f2c…-… 9a1b…-…  [--not-useful] [--conversation-id conv-42]
    anima bootstrap --limit 20
    anima stats --json

Reads ``ANIMA_URL`` (default http://127.0.0.1:8000) and ``ANIMA_API_KEY``, else the key
file ``scripts/serve`` wrote (``var/local-api-key``; see ``config.find_api_key``).
Exit status: 0 done, 1 Anima answered an error (or ``store-batch`` refused some items),
2 bad usage, 3 Anima not reachable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

from anima_client import config, formatting
from anima_client.client import AnimaClient
from anima_client.errors import AnimaConnectionError, AnimaError
from anima_client.dates import SINCE_HELP, parse_since
from anima_client.models import AddBatchResult, ApiModel

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

#: The most items the API takes in one add-batch; ``store-batch`` sends bigger files in chunks.
BATCH_SIZE = 100


class UsageError(Exception):
    """Bad input found after parsing (an unreadable batch file): exit status 2."""


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not JSON: {error}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value


def _key_value(text: str) -> tuple[str, Any]:
    """``KEY=VALUE``; VALUE is read as JSON when it is JSON (``3``, ``true``, ``"3"``), else as text."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key, value


def _since(text: str):
    try:
        return parse_since(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _memory_id(text: str) -> str:
    try:
        return str(UUID(text.strip()))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a memory id (a UUID): {text!r}") from None


def read_batch(text: str) -> tuple[list[str | dict[str, Any]], list[str]]:
    """The items of a batch file and where each came from (``line 3``, ``item [2]``).

    A JSON array, or JSON Lines (one item a line, blank lines skipped); an item is an
    add body (``{"content": …, "tags": […]}``) or a plain string (its content)."""
    if text.lstrip().startswith("["):
        try:
            values = json.loads(text)
        except ValueError as error:
            raise UsageError(f"not a JSON array: {error}") from None
        entries = [(f"item [{index}]", value) for index, value in enumerate(values)]
    else:
        entries = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entries.append((f"line {number}", json.loads(line)))
            except ValueError as error:
                raise UsageError(f"line {number}: not JSON: {error}") from None
    for where, value in entries:
        if not isinstance(value, (str, dict)):
            raise UsageError(f"{where}: expected a JSON object (an add body) or a string, got {type(value).__name__}")
    if not entries:
        raise UsageError("no items: give JSON Lines (one memory a line) or a JSON array")
    return [value for _, value in entries], [where for where, _ in entries]


def _store_batch(client: AnimaClient, items: list[str | dict[str, Any]]) -> AddBatchResult:
    """All items, ``BATCH_SIZE`` a request; one result with indexes into ``items``."""
    listed: list[dict[str, Any]] = []
    meta: dict[str, Any] = {}
    for start in range(0, len(items), BATCH_SIZE):
        try:
            part = client.add_batch(items[start : start + BATCH_SIZE])
        except AnimaError:
            if start:
                print(f"anima: the first {start} items were sent before this error", file=sys.stderr)
            raise
        listed.extend({**item.model_dump(), "index": item.index + start} for item in part.items)
        meta = part.meta.model_dump()
    counts = {status: sum(entry["status"] == status for entry in listed) for status in ("created", "duplicate", "invalid")}
    return AddBatchResult.model_validate({"items": listed, "counts": counts, "meta": meta})


def _new_memory_options(parser: argparse.ArgumentParser) -> None:
    """The fields of a new memory (``store``, ``correct``)."""
    parser.add_argument("--category")
    parser.add_argument("--tag", action="append", dest="tags", metavar="TAG", help="a tag (repeatable)")
    parser.add_argument("--source")
    parser.add_argument("--catalyst", action="store_true", help="mark it a catalyst (φ starts at 1.0)")
    parser.add_argument("--metadata", type=_json_object, help="a JSON object kept with the memory")
    parser.add_argument("--occurred-at", metavar="WHEN", help="when it happened (ISO 8601 date or datetime)")
    parser.add_argument(
        "--expires-at", metavar="WHEN", help="after this (ISO 8601 date or datetime) it no longer holds"
    )
    parser.add_argument(
        "--valid-from", metavar="WHEN", help="since when it holds (ISO 8601, not in the future; default: now)"
    )


def _new_memory(args: argparse.Namespace) -> dict[str, Any]:
    """The keywords of ``_new_memory_options`` for ``add``/``correct``."""
    return {
        "category": args.category, "tags": args.tags, "source": args.source,
        "is_catalyst": True if args.catalyst else None, "metadata": args.metadata,
        "occurred_at": args.occurred_at, "expires_at": args.expires_at, "valid_from": args.valid_from,
    }


def _content(text: str) -> str:
    return sys.stdin.read() if text == "-" else text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anima",
        description="Long-term memory from the command line. "
        f"Uses ${config.URL_ENV} (default {config.DEFAULT_URL}) and ${config.KEY_ENV} "
        "(else var/local-api-key).",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help=f"Anima's base URL (default: ${config.URL_ENV} or {config.DEFAULT_URL})")
    common.add_argument("--json", action="store_true", help="print the API's JSON instead of text")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    bootstrap = commands.add_parser("bootstrap", parents=[common], help="the conversation-start context, by tier")
    bootstrap.add_argument("--limit", type=int, help="most memories (1-200, default 50)")
    bootstrap.add_argument("--active-limit", type=int, help="most active-tier memories")
    bootstrap.add_argument("--max-chars", type=int, help="budget for the total content")
    for tier in ("active", "thread", "stable"):
        bootstrap.add_argument(f"--no-{tier}", action="store_true", help=f"leave out the {tier} tier")

    store = commands.add_parser("store", parents=[common], help="store a memory ('-' reads it from stdin)")
    store.add_argument("content", help="the memory's text, or - for stdin")
    _new_memory_options(store)

    correct = commands.add_parser(
        "correct", parents=[common],
        help="correct a memory: store the new fact (or --by an existing memory); the old one is superseded",
    )
    correct.add_argument("memory_id", type=_memory_id, metavar="ID", help="the id of the memory that is wrong now")
    correct.add_argument("content", nargs="?", help="the corrected fact, or - for stdin")
    correct.add_argument(
        "--by", type=_memory_id, metavar="ID", help="an existing memory that corrects it (instead of new content)"
    )
    _new_memory_options(correct)

    query = commands.add_parser("query", parents=[common], help="find memories by meaning")
    query.add_argument("text", help="what you are looking for")
    query.add_argument("--limit", type=int, help="most results (1-100, default 20)")
    query.add_argument("--threshold", type=float, help="lowest similarity (0-1, default 0.3)")
    query.add_argument("--tier", action="append", dest="tiers", metavar="TIER", help="only this tier (repeatable)")
    query.add_argument("--category")
    query.add_argument("--tag", action="append", dest="tags", metavar="TAG", help="must have this tag (repeatable)")
    query.add_argument("--mode", choices=["semantic", "hybrid"])
    query.add_argument("--conversation-id", help="record co-occurrence under this conversation")
    query.add_argument(
        "--metadata", action="append", type=_key_value, metavar="KEY=VALUE",
        help="metadata must contain this (repeatable; VALUE is JSON when it parses: 3, true, \"3\")",
    )
    query.add_argument("--source", help="only memories from this source")
    query.add_argument("--since", type=_since, metavar="WHEN", help=f"created since: {SINCE_HELP}")
    query.add_argument("--occurred-since", type=_since, metavar="WHEN", help=f"happened since: {SINCE_HELP}")
    query.add_argument("--occurred-before", metavar="WHEN", help="happened before (ISO 8601 date or datetime)")
    query.add_argument(
        "--recency-days", type=float, metavar="N",
        help="favour recently used memories: weight halves every N days since the last access",
    )
    validity = query.add_mutually_exclusive_group()
    validity.add_argument(
        "--as-of", type=_since, metavar="WHEN", help=f"the facts valid at that moment: {SINCE_HELP}"
    )
    validity.add_argument(
        "--include-superseded", action="store_true", help="corrected and expired memories too"
    )

    batch = commands.add_parser(
        "store-batch", parents=[common], help="store many memories from JSON Lines or a JSON array ('-': stdin)"
    )
    batch.add_argument("file", help='a file of add bodies ({"content": …, "tags": […]}) or strings; - for stdin')
    batch.add_argument("--source", help="source of the items that name none")

    forget = commands.add_parser("forget", parents=[common], help="delete a memory (restorable; --purge: for good)")
    forget.add_argument("memory_id", type=_memory_id, metavar="ID", help="the memory's id")
    forget.add_argument(
        "--purge", action="store_true", help="remove it for good, with every copy of its text (not restorable)"
    )
    forget.add_argument(
        "--chain", action="store_true", help="with --purge: its whole chain of corrections too"
    )

    feedback = commands.add_parser(
        "feedback", parents=[common], help="mark memories useful (φ up) or, with --not-useful, misleading (φ down)"
    )
    feedback.add_argument("memory_ids", nargs="+", type=_memory_id, metavar="ID", help="the memories' ids")
    feedback.add_argument("--not-useful", action="store_true", help="they misled: lower their φ")
    feedback.add_argument("--conversation-id", help="the conversation the memories were used in")

    commands.add_parser("stats", parents=[common], help="φ statistics of the namespace")
    return parser


def _run(client: AnimaClient, args: argparse.Namespace) -> tuple[ApiModel, str]:
    """The command's result and its text form."""
    if args.command == "bootstrap":
        result = client.bootstrap(
            limit=args.limit, active_limit=args.active_limit, max_chars=args.max_chars,
            include_active=False if args.no_active else None,
            include_thread=False if args.no_thread else None,
            include_stable=False if args.no_stable else None,
        )
        return result, formatting.bootstrap_text(result)
    if args.command == "store":
        result = client.add(_content(args.content), **_new_memory(args))
        return result, formatting.add_text(result)
    if args.command == "correct":
        # With --by, a field given too is refused by Anima (400 naming it), not dropped here.
        content = None if args.content is None else _content(args.content)
        result = client.correct(args.memory_id, content, corrected_by=args.by, **_new_memory(args))
        return result, formatting.correction_text(result)
    if args.command == "query":
        result = client.query(
            args.text, limit=args.limit, threshold=args.threshold, tiers=args.tiers, category=args.category,
            tags=args.tags, mode=args.mode, conversation_id=args.conversation_id,
            metadata=dict(args.metadata) if args.metadata else None, source=args.source,
            created_after=args.since, recency_half_life_days=args.recency_days,
            occurred_after=args.occurred_since, occurred_before=args.occurred_before,
            as_of=args.as_of, include_superseded=args.include_superseded or None,
        )
        return result, formatting.query_text(result)
    if args.command == "store-batch":
        items, labels = args.batch
        if args.source:
            items = [
                {"content": item, "source": args.source} if isinstance(item, str) else {"source": args.source, **item}
                for item in items
            ]
        result = _store_batch(client, items)
        return result, formatting.add_batch_text(result, labels=labels)
    if args.command == "forget":
        if args.purge:
            result = client.memories.purge(args.memory_id, chain=args.chain)
            return result, formatting.purged_text(result)
        result = client.memories.delete(args.memory_id)
        return result, formatting.deleted_text(result)
    if args.command == "feedback":
        result = client.feedback(args.memory_ids, useful=not args.not_useful, conversation_id=args.conversation_id)
        return result, formatting.feedback_text(result)
    result = client.stats()
    return result, formatting.stats_text(result)


def _error_text(error: AnimaError) -> str:
    lines = [f"anima: {error}"]
    fields: dict[str, Any] = error.details.get("fields") or {}
    lines.extend(f"  {name}: {' '.join(messages)}" for name, messages in fields.items())
    if error.code == "UNAUTHORIZED":
        lines.append(f"  set {config.KEY_ENV}, or run ./scripts/serve once to make var/local-api-key")
    return "\n".join(lines)


def _read_batch_file(name: str) -> tuple[list[str | dict[str, Any]], list[str]]:
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read {name}: {error}") from None
    try:
        return read_batch(text)
    except UsageError as error:
        raise UsageError(f"{'stdin' if name == '-' else name}: {error}") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "correct" and (args.content is None) == (args.by is None):
        parser.error("correct: give the new content or --by ID, one of the two")
    if args.command == "forget" and args.chain and not args.purge:
        parser.error("forget: --chain goes with --purge")
    if args.command == "store-batch":
        try:
            args.batch = _read_batch_file(args.file)
        except UsageError as error:
            print(f"anima: {error}", file=sys.stderr)
            return EXIT_USAGE
    try:
        with AnimaClient(args.url, config.find_api_key()) as client:
            result, text = _run(client, args)
    except AnimaConnectionError as error:
        print(f"anima: {error.message}\n  is Anima running? (./scripts/serve)", file=sys.stderr)
        return EXIT_UNREACHABLE
    except AnimaError as error:
        print(_error_text(error), file=sys.stderr)
        return EXIT_ERROR
    try:
        print(json.dumps(result.to_api(), indent=2, ensure_ascii=False) if args.json else text)
        sys.stdout.flush()
    except BrokenPipeError:  # `anima query … | head`: the reader left, which is not an error
        # As the Python docs advise: point stdout at devnull so the exit-time flush is quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    # store-batch: the valid items are stored, but say that some were not.
    if isinstance(result, AddBatchResult) and result.counts.invalid:
        return EXIT_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
