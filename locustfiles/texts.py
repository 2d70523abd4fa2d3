"""Realistic texts for the load test and the benchmark: what an assistant stores and asks.

No Django and no locust here: the locustfile (run by locust, gevent-patched) and
``benchmarks.benchmarking`` (run by Django) both import it.

``QUERY_TEXTS`` is the pool of questions (50, repeated, so the embedding cache warms as
it would for a real assistant); ``memory_text(i)`` is the ``i``-th of 720,000 distinct
statements, built from fragments by a mixed-radix index of a permuted ``i`` (so that
neighbouring indexes differ in every fragment), so a corpus of any size up to that has
no two equal contents and needs no de-duplication.
"""

import uuid

QUERY_TEXTS = [
    "What food should Dana avoid?",
    "Which database does the project use in production?",
    "How does the user like their code formatted?",
    "When is the weekly planning meeting?",
    "What operating system runs on the staging server?",
    "Who is responsible for the billing service?",
    "What did we decide about the authentication flow?",
    "Which editor does the user prefer?",
    "What are the user's dietary restrictions?",
    "Where does the user live?",
    "What is the deadline for the migration project?",
    "Which programming languages does the user know well?",
    "How should error messages be worded in the API?",
    "What is the preferred way to deploy to production?",
    "Which cloud provider hosts the main cluster?",
    "What time zone is the user in?",
    "What does the user do on weekends?",
    "How does the team review pull requests?",
    "Which test framework does the repository use?",
    "What was the root cause of last month's outage?",
    "How many people work on the mobile app?",
    "What is the user's favourite kind of music?",
    "Which libraries are we not allowed to use?",
    "What is the backup schedule for the database?",
    "How does the user want summaries written?",
    "What is the name of the user's dog?",
    "Which customers asked for the export feature?",
    "What were the results of the latency benchmark?",
    "How is the on-call rotation organised?",
    "What did the user say about tabs and spaces?",
    "Which conference is the user speaking at this year?",
    "What is the budget for the new hardware?",
    "How do we handle personal data in logs?",
    "What is the user's preferred language for documentation?",
    "Which books has the user recommended recently?",
    "What are the open research threads on retrieval quality?",
    "How should the assistant greet the user in the morning?",
    "What is the versioning policy for the public API?",
    "Which features are planned for the next release?",
    "What allergies does anyone on the team have?",
    "How does the user take their coffee?",
    "What is the URL of the internal wiki?",
    "Who approved the change to the pricing page?",
    "What hardware does the user's laptop have?",
    "How long do we keep access logs?",
    "What is the user's goal for this quarter?",
    "Which metrics does the dashboard show?",
    "What was agreed with the design team about colours?",
    "How should dates be formatted in reports?",
    "What is the user learning at the moment?",
]

_SUBJECTS = [
    "Dana", "The user", "Alice", "Bob", "The team", "Priya", "Marco", "The client", "Yuki", "Omar",
    "The on-call engineer", "Lena", "The product manager", "Sam", "The design team", "Ines", "Tom",
    "The data team", "Chen", "The support lead", "Ravi", "Nora", "The security team", "Jonas",
    "The mobile team", "Fatima", "Leo", "The finance department", "Eva", "The research group",
]
_PREDICATES = [
    "prefers", "is allergic to", "decided to use", "asked about", "does not like", "wants to try",
    "recommended", "is responsible for", "spent the week on", "complained about", "finished",
    "is worried about", "proposed", "rejected", "is learning", "mentioned", "scheduled a review of",
    "documented", "benchmarked", "migrated",
]
_OBJECTS = [
    "PostgreSQL 16", "peanuts", "tabs over spaces", "the billing service", "Debian 12 on staging",
    "dark mode", "the weekly planning meeting", "Rust for the parser", "the export feature",
    "oat milk in coffee", "the authentication flow", "Kubernetes upgrades", "the pricing page",
    "short summaries", "the mobile release", "vector search", "the backup schedule", "Thai food",
    "the on-call rotation", "type hints everywhere", "the latency dashboard", "Neovim", "jazz records",
    "the quarterly goals", "the internal wiki", "GDPR requests", "the design system colours",
    "ISO 8601 dates", "the conference talk", "a standing desk", "the Berlin office", "pytest fixtures",
    "the retrieval quality research", "the new laptop", "hiking on weekends", "the API versioning policy",
    "sourdough baking", "the incident report", "Japanese lessons", "the hardware budget",
]
_DETAILS = [
    "because it keeps the code simple", "after the outage in March", "for the next release",
    "and wants a reminder on Friday", "since the last sprint", "according to the meeting notes",
    "but only for internal tools", "to cut latency in half", "while travelling next month",
    "as agreed with the client", "after reading the benchmark results", "until the audit is done",
    "on the advice of the security team", "for the whole quarter", "and asked to keep it private",
    "which surprised everyone", "to save money on hosting", "after two failed attempts",
    "for accessibility reasons", "and will report back on Monday", "in the staging environment first",
    "because the old approach leaked memory", "to make onboarding easier", "since moving to Lisbon",
    "as a long-term experiment", "with a deadline at the end of June", "despite the extra cost",
    "for the mobile app only", "to match the style guide", "after a long discussion",
]

#: Distinct statements ``memory_text`` can make.
MEMORY_TEXT_COUNT = len(_SUBJECTS) * len(_PREDICATES) * len(_OBJECTS) * len(_DETAILS)
#: A prime that divides no factor of MEMORY_TEXT_COUNT: ``i × _SPREAD mod count`` is a permutation.
_SPREAD = 7919


def memory_text(index: int) -> str:
    """The ``index``-th statement; different indexes below ``MEMORY_TEXT_COUNT`` give different texts."""
    if not 0 <= index < MEMORY_TEXT_COUNT:
        raise ValueError(f"memory_text index must be in [0, {MEMORY_TEXT_COUNT})")
    index = (index * _SPREAD) % MEMORY_TEXT_COUNT
    index, detail = divmod(index, len(_DETAILS))
    index, obj = divmod(index, len(_OBJECTS))
    subject, predicate = divmod(index, len(_PREDICATES))
    return f"{_SUBJECTS[subject]} {_PREDICATES[predicate]} {_OBJECTS[obj]} {_DETAILS[detail]}."


def unique_memory_text(seed: int) -> str:
    """A statement no corpus holds yet: a generated one with a fresh note id (an add of new content)."""
    return f"{memory_text(seed % MEMORY_TEXT_COUNT)[:-1]} (note {uuid.uuid4().hex[:12]})."


def query_variant(index: int) -> str:
    """A question the embedding cache has not seen: a pool question, reworded by ``index``."""
    question = QUERY_TEXTS[index % len(QUERY_TEXTS)]
    return f"Remind me, question {index}: {question[0].lower()}{question[1:]}"
