"""Exact-search recall@10 of ranking rules on a prepared LoCoMo pickle (see prepare.py).

These are the offline experiments that chose the service's hybrid ranking
(``memories/ranking.py``): every score is computed over all turns of a conversation, with
no index and no API, so a difference between two rules is the rules' alone. The service
itself is measured through its API by ``manage.py recall_benchmark``.

Subcommands, each printing one table (R@10 overall and per question category):

- ``fusion``: dense alone, BM25 alone, each with the session date in the text, reciprocal
  rank fusion (k, text weight) and a convex mix of similarity and max-normalised BM25;
- ``bm25-grid``: BM25's k1 and b, with and without the date, alone and in the convex mix;
- ``service``: a simulation of the service's hybrid query (a vector pool with a similarity
  threshold united with a text pool, scored ``0.7 × similarity + 0.3 × text / text_max``)
  with the variants that were tried: threshold, share, binary term frequency, leaving out
  common words (max-df);
- ``all``: the three in turn.

Tune only on the development conversations; the held-out ones are never evaluated here.

usage: python scripts/offline_recall/evaluate.py {fusion,bm25-grid,service,all} --prep /tmp/offline_recall/prep.pkl
"""

import argparse
import math
import pickle
from collections import defaultdict
from collections.abc import Callable

import numpy as np

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
RECALL_K = 10
BM25_K1 = 1.2
BM25_B = 0.75
RRF_K = 60
#: The service's rule (memories/ranking.py and the query settings' defaults).
SERVICE_SIMILARITY_SHARE = 0.7
SERVICE_POOL = 100
SERVICE_SIMILARITY_THRESHOLD = 0.3
SERVICE_MAX_DF = 0.2  # ranking.TEXT_COMMON_SHARE
#: Score of a turn outside both pools: below any fused score, so it ranks last.
NOT_A_CANDIDATE = -9.0
#: The grids that were tried.
RRF_KS = (5, 10, 20, 60)
RRF_TEXT_WEIGHTS = (0.5, 0.75, 1, 1.5)
CONVEX_SHARES = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
BM25_K1_B = ((1.2, 0.75), (1.2, 0.5), (1.2, 0.25), (1.2, 0), (0.9, 0.4), (2, 0.75), (0.5, 0.5))
BM25_GRID_SHARES = (0.6, 0.7)
SERVICE_MAX_DFS = (0.05, 0.1, 0.2, 0.3)

Scorer = Callable[[dict], np.ndarray]


def load_prepared(path: str) -> list[dict]:
    with open(path, "rb") as handle:
        return pickle.load(handle)


def bm25_scores(
    doc_lexemes: list[dict[str, int]],
    query_lexemes: list[dict[str, int]],
    *,
    k1: float = BM25_K1,
    b: float = BM25_B,
    binary_tf: bool = False,
    max_df: float = 1.0,
) -> np.ndarray:
    """(questions × turns) BM25 over one conversation, the conversation being the corpus.

    ``binary_tf`` scores a contained word by its idf alone (what a stored ``tsvector``
    can compute without positions); ``max_df`` leaves out a question's words found in
    more than that share of the turns, unless all of its words are that common.
    """
    postings: dict[str, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    for doc_index, doc in enumerate(doc_lexemes):
        for term, tf in doc.items():
            postings[term][0].append(doc_index)
            postings[term][1].append(tf)
    n_docs = len(doc_lexemes)
    doc_length = np.array([sum(doc.values()) for doc in doc_lexemes], float)
    length_norm = k1 * (1 - b + b * doc_length / doc_length.mean())
    scores = np.zeros((len(query_lexemes), n_docs))
    for query_index, query in enumerate(query_lexemes):
        terms = [term for term in query if term in postings]
        kept = [term for term in terms if len(postings[term][0]) <= max_df * n_docs] or terms
        for term in kept:
            docs, tfs = postings[term]
            df = len(docs)
            idf = math.log(1 + (n_docs - df + 0.5) / (df + 0.5))
            docs = np.array(docs)
            if binary_tf:
                scores[query_index, docs] += idf
            else:
                tf = np.array(tfs, float)
                scores[query_index, docs] += idf * tf * (k1 + 1) / (tf + length_norm[docs])
    return scores


class TextScoreCache:
    """BM25 matrices per conversation, lexeme set and parameters.

    They do not depend on the embeddings, so every rule and every embedding model
    evaluated in one run shares them.
    """

    def __init__(self) -> None:
        self._scores: dict[tuple, np.ndarray] = {}

    def get(self, conversation: dict, lexeme_key: str = "L", **params) -> np.ndarray:
        key = (conversation["id"], lexeme_key, tuple(sorted(params.items())))
        if key not in self._scores:
            self._scores[key] = bm25_scores(conversation[lexeme_key], conversation["QL"], **params)
        return self._scores[key]


def ranks(scores: np.ndarray) -> np.ndarray:
    """0-based rank of every turn for every question (ties by turn order)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    rank = np.empty_like(order)
    for row in range(scores.shape[0]):
        rank[row, order[row]] = np.arange(scores.shape[1])
    return rank


def recall_at_k(scores: np.ndarray, conversation: dict, k: int = RECALL_K) -> list[tuple[int, float]]:
    """(category, share of the question's evidence turns in the top k) per question."""
    ids = [turn["id"] for turn in conversation["turns"]]
    out = []
    for row, question in enumerate(conversation["qs"]):
        top = {ids[i] for i in np.argsort(-scores[row], kind="stable")[:k]}
        out.append((question["cat"], sum(e in top for e in question["ev"]) / len(question["ev"])))
    return out


def recall_summary(scorer: Scorer, conversations: list[dict]) -> dict:
    """Mean R@10 over all questions (``all``), their number (``n``) and per category (``c1``…``c4``)."""
    results = []
    for conversation in conversations:
        results += recall_at_k(scorer(conversation), conversation)
    by_category = defaultdict(list)
    for category, recall in results:
        by_category[category].append(recall)
    return dict(
        all=float(np.mean([recall for _, recall in results])),
        n=len(results),
        **{f"c{category}": float(np.mean(values)) for category, values in sorted(by_category.items())},
    )


def table_header() -> None:
    print(f"{'rule':44s} {'R@10':>6s}  " + " ".join(f"{name:>11s}" for name in CATEGORIES.values()))


def report(name: str, scorer: Scorer, conversations: list[dict]) -> dict:
    summary = recall_summary(scorer, conversations)
    print(f"{name:44s} {summary['all']:6.3f}  "
          + " ".join(f"{summary.get(f'c{c}', float('nan')):11.3f}" for c in CATEGORIES), flush=True)
    return summary


def dense(conversation: dict) -> np.ndarray:
    return conversation["Q"] @ conversation["E"].T


def dense_dated(conversation: dict) -> np.ndarray:
    return conversation["Q"] @ conversation["Ed"].T


def bm25_scorer(cache: TextScoreCache, lexeme_key: str = "L", **params) -> Scorer:
    return lambda conversation: cache.get(conversation, lexeme_key, **params)


def rrf_scorer(vector: Scorer, text: Scorer, *, k: int = RRF_K, text_weight: float = 1) -> Scorer:
    """Reciprocal rank fusion: 1 / (k + rank) from each side."""
    return lambda conversation: 1 / (k + ranks(vector(conversation))) + text_weight / (k + ranks(text(conversation)))


def convex_scorer(vector: Scorer, text: Scorer, *, similarity_share: float) -> Scorer:
    """``share × similarity + (1 − share) × text / text_max``: the text side scaled into [0, 1] per question."""

    def score(conversation: dict) -> np.ndarray:
        similarity, text_scores = vector(conversation), text(conversation)
        text_norm = text_scores / np.maximum(text_scores.max(axis=1, keepdims=True), 1e-9)
        return similarity_share * similarity + (1 - similarity_share) * text_norm

    return score


def service_scorer(
    cache: TextScoreCache,
    *,
    similarity_share: float = SERVICE_SIMILARITY_SHARE,
    pool: int = SERVICE_POOL,
    threshold: float = SERVICE_SIMILARITY_THRESHOLD,
    binary_tf: bool = False,
    max_df: float = 1.0,
    lexeme_key: str = "Ld",
) -> Scorer:
    """The service's hybrid query, exactly: the top ``pool`` turns by similarity (kept when
    at least ``threshold``) united with the top ``pool`` by text score (kept when it is
    positive), scored by the convex mix; BM25 without length normalisation (b = 0), over
    the turn texts with their session dates (the service indexes the date's words)."""

    def score(conversation: dict) -> np.ndarray:
        similarity = conversation["Q"] @ conversation["E"].T
        text = cache.get(conversation, lexeme_key, k1=BM25_K1, b=0.0, binary_tf=binary_tf, max_df=max_df)
        fused = np.full(similarity.shape, NOT_A_CANDIDATE)
        for row in range(similarity.shape[0]):
            vector_pool = np.argsort(-similarity[row])[:pool]
            text_pool = [j for j in np.argsort(-text[row])[:pool] if text[row, j] > 0]
            text_max = text[row].max() or 1
            candidates = {j for j in vector_pool if similarity[row, j] >= threshold} | set(text_pool)
            for j in candidates:
                fused[row, j] = (similarity_share * similarity[row, j]
                                 + (1 - similarity_share) * text[row, j] / text_max)
        return fused

    return score


def service_rule_scorer(cache: TextScoreCache) -> Scorer:
    """The rule the service ships: binary term frequency, words in over 20 % of turns left out."""
    return service_scorer(cache, binary_tf=True, max_df=SERVICE_MAX_DF)


def fusion_table(conversations: list[dict], cache: TextScoreCache) -> None:
    """Which fusion, and does the session date belong in the embedded text or the text side."""
    bm25 = bm25_scorer(cache, "L")
    bm25_dated = bm25_scorer(cache, "Ld")
    table_header()
    report("dense", dense, conversations)
    report("dense, date in the embedded text", dense_dated, conversations)
    report("bm25", bm25, conversations)
    report("bm25, date's words in the text", bm25_dated, conversations)
    report(f"rrf k{RRF_K}", rrf_scorer(dense, bm25), conversations)
    report(f"rrf k{RRF_K}, dates", rrf_scorer(dense_dated, bm25_dated), conversations)
    for k in RRF_KS:
        for text_weight in RRF_TEXT_WEIGHTS:
            report(f"rrf k{k} text weight {text_weight}", rrf_scorer(dense, bm25, k=k, text_weight=text_weight),
                   conversations)
    for share in CONVEX_SHARES:
        report(f"convex max-norm, similarity share {share}", convex_scorer(dense, bm25, similarity_share=share),
               conversations)


def bm25_grid_table(conversations: list[dict], cache: TextScoreCache) -> None:
    """BM25's saturation (k1) and length normalisation (b), alone and in the convex mix."""
    table_header()
    for k1, b in BM25_K1_B:
        for dated in (False, True):
            text = bm25_scorer(cache, "Ld" if dated else "L", k1=k1, b=b)
            report(f"bm25 k1={k1} b={b} date={dated}", text, conversations)
            for share in BM25_GRID_SHARES:
                report(f"  convex, similarity share {share}", convex_scorer(dense, text, similarity_share=share),
                       conversations)


def service_table(conversations: list[dict], cache: TextScoreCache) -> None:
    """The service's query as simulated offline, and the variants of its text side that were tried."""
    table_header()
    report("dense (semantic mode)", dense, conversations)
    report("service share 0.7 thr 0.3", service_scorer(cache), conversations)
    report("service share 0.7 thr 0 (no threshold)", service_scorer(cache, threshold=0), conversations)
    report("service share 0.6 thr 0.3", service_scorer(cache, similarity_share=0.6), conversations)
    report("service binary tf", service_scorer(cache, binary_tf=True), conversations)
    for max_df in SERVICE_MAX_DFS:
        report(f"service max-df {max_df}", service_scorer(cache, max_df=max_df), conversations)
        shipped = " (as shipped)" if max_df == SERVICE_MAX_DF else ""
        report(f"service max-df {max_df} binary tf{shipped}", service_scorer(cache, max_df=max_df, binary_tf=True),
               conversations)


TABLES = {"fusion": fusion_table, "bm25-grid": bm25_grid_table, "service": service_table}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", choices=[*TABLES, "all"])
    parser.add_argument("--prep", required=True, help="pickle written by prepare.py")
    args = parser.parse_args()
    conversations = load_prepared(args.prep)
    questions = sum(len(conversation["qs"]) for conversation in conversations)
    print(f"{len(conversations)} conversations ({', '.join(c['id'] for c in conversations)}), "
          f"{questions} questions; recall@{RECALL_K}, exact search")
    cache = TextScoreCache()
    for name, table in TABLES.items():
        if args.table in (name, "all"):
            print(f"\n## {name}")
            table(conversations, cache)


if __name__ == "__main__":
    main()
