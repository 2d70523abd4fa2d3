"""Where the client finds the service and its key.

The library reads an argument, else ``ANIMA_URL`` / ``ANIMA_API_KEY``. The command-line
tool and the MCP server also look for the key file that ``scripts/serve`` writes on its
first run (``find_api_key``), so that on the machine that runs Anima nothing needs to be
copied by hand.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8000"
URL_ENV = "ANIMA_URL"
KEY_ENV = "ANIMA_API_KEY"
KEY_FILE_ENV = "ANIMA_API_KEY_FILE"
KEY_FILE_NAME = "local-api-key"

#: The checkout this package sits in (for an editable install: the Anima repository).
_CHECKOUT = Path(__file__).resolve().parent.parent


def base_url(explicit: str | None = None) -> str:
    return (explicit or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")


def api_key(explicit: str | None = None) -> str | None:
    return explicit or os.environ.get(KEY_ENV) or None


def key_file_candidates() -> list[Path]:
    """Key files in the order they are tried after ``ANIMA_API_KEY``."""
    candidates = []
    if os.environ.get(KEY_FILE_ENV):
        candidates.append(Path(os.environ[KEY_FILE_ENV]).expanduser())
    if os.environ.get("ANIMA_DATA_DIR"):
        candidates.append(Path(os.environ["ANIMA_DATA_DIR"]).expanduser() / KEY_FILE_NAME)
    candidates.append(Path.cwd() / "var" / KEY_FILE_NAME)
    candidates.append(_CHECKOUT / "var" / KEY_FILE_NAME)
    return candidates


def find_api_key(explicit: str | None = None) -> str | None:
    """The key: an argument, ``ANIMA_API_KEY``, ``ANIMA_API_KEY_FILE``,
    ``$ANIMA_DATA_DIR/local-api-key``, ``./var/local-api-key``, then the checkout's
    ``var/local-api-key`` — the first that is set or exists."""
    key = api_key(explicit)
    if key:
        return key
    for path in key_file_candidates():
        if path.is_file():
            text = path.read_text().strip()
            if text:
                return text
    return None
