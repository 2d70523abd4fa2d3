"""``anima``: Anima from a terminal, on the same client as everything else.

    anima store "Dana is allergic to peanuts." --category health --tag dana
    anima query "What should Dana avoid?"
    anima bootstrap --limit 20
    anima stats --json

Reads ``ANIMA_URL`` (default http://127.0.0.1:8000) and ``ANIMA_API_KEY``, else the key
file ``scripts/serve`` wrote (``var/local-api-key``; see ``config.find_api_key``).
Exit status: 0 done, 1 Anima answered an error, 2 bad usage, 3 Anima not reachable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from anima_client import config, formatting
from anima_client.client import AnimaClient
from anima_client.errors import AnimaConnectionError, AnimaError
from anima_client.models import ApiModel

EXIT_ERROR = 1
EXIT_UNREACHABLE = 3


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not JSON: {error}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value


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
    store.add_argument("--category")
    store.add_argument("--tag", action="append", dest="tags", metavar="TAG", help="a tag (repeatable)")
    store.add_argument("--source")
    store.add_argument("--catalyst", action="store_true", help="mark it a catalyst (φ starts at 1.0)")
    store.add_argument("--metadata", type=_json_object, help="a JSON object kept with the memory")

    query = commands.add_parser("query", parents=[common], help="find memories by meaning")
    query.add_argument("text", help="what you are looking for")
    query.add_argument("--limit", type=int, help="most results (1-100, default 20)")
    query.add_argument("--threshold", type=float, help="lowest similarity (0-1, default 0.3)")
    query.add_argument("--tier", action="append", dest="tiers", metavar="TIER", help="only this tier (repeatable)")
    query.add_argument("--category")
    query.add_argument("--tag", action="append", dest="tags", metavar="TAG", help="must have this tag (repeatable)")
    query.add_argument("--mode", choices=["semantic", "hybrid"])
    query.add_argument("--conversation-id", help="record co-occurrence under this conversation")

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
        content = sys.stdin.read() if args.content == "-" else args.content
        result = client.add(
            content, category=args.category, tags=args.tags, source=args.source,
            is_catalyst=True if args.catalyst else None, metadata=args.metadata,
        )
        return result, formatting.add_text(result)
    if args.command == "query":
        result = client.query(
            args.text, limit=args.limit, threshold=args.threshold, tiers=args.tiers, category=args.category,
            tags=args.tags, mode=args.mode, conversation_id=args.conversation_id,
        )
        return result, formatting.query_text(result)
    result = client.stats()
    return result, formatting.stats_text(result)


def _error_text(error: AnimaError) -> str:
    lines = [f"anima: {error}"]
    fields: dict[str, Any] = error.details.get("fields") or {}
    lines.extend(f"  {name}: {' '.join(messages)}" for name, messages in fields.items())
    if error.code == "UNAUTHORIZED":
        lines.append(f"  set {config.KEY_ENV}, or run ./scripts/serve once to make var/local-api-key")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
