"""The MCP server (``anima_client.mcp_server``) seen from MCP clients of the official SDK:
over stdio (the server a real subprocess, as Claude Desktop runs it) and in-process;
every tool against a live Anima. Streamable HTTP (bearer keys, Host checks):
``test_mcp_http.py``."""

import asyncio
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone
from mcp import Client, ClientSession, StdioServerParameters, stdio_client

from anima_client import AnimaClient
from anima_client.conversations import RELEVANT_SIMILARITY
from anima_client.mcp_server import build_server
from keys.services import api_key_create
from memories.models import Memory, MemoryAssociation
from reflections.models import ConversationReflection, MetaReflection
from tests.client.conftest import FAST_RETRY

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
TOOLS = {"bootstrap", "remember", "recall", "correct", "feedback", "promote", "forget", "reflect", "handshake"}


def text_of(result) -> str:
    assert not result.is_error, result.content
    return "\n".join(block.text for block in result.content)


def add_dana(anima) -> list:
    """Two memories about Dana's food allergies, stored through the API; their ids."""
    return [
        anima.add("Dana is allergic to peanuts.", category="health", tags=["dana"]).memory.id,
        anima.add("Dana cannot eat almonds either.", category="health", tags=["dana"]).memory.id,
    ]


@pytest.fixture
def dana(anima):
    """Two stored memories about Dana's food allergies (returned: their ids)."""
    return add_dana(anima)


# --- over stdio: one session, the server a real subprocess -----------------------------------


@dataclass
class StdioSession:
    """What one stdio session saw (the handshake, the tool list, each tool's answer) and the
    rows it left: its associations' conversation ids, its reflections, the almonds memory
    the session corrected."""

    init: object
    tools: dict
    text: dict[str, str]
    dana: list
    association_contexts: list[list[str]]
    reflections: list[MetaReflection]
    context_qualities: list[int]
    corrected: Memory


async def _stdio_session(anima_url: str, key: str, dana: list):
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "anima_client.mcp_server"],
        env={"ANIMA_URL": anima_url, "ANIMA_API_KEY": key, "ANIMA_CONVERSATION_ID": "conv-stdio"},
        cwd=str(ROOT),
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as client:
        init = await client.initialize()
        tools = (await client.list_tools()).tools
        calls = {
            "bootstrap": await client.call_tool("bootstrap", {"limit": 10}),
            "remember": await client.call_tool("remember", {"content": "The staging server runs Debian 12.", "category": "infra"}),
            "recall": await client.call_tool("recall", {"query": "What can Dana not eat?", "threshold": 0.2, "tiers": ["active"]}),
            "promote": await client.call_tool("promote", {"memory_id": str(dana[0]), "tier": "stable", "reason": "allergy"}),
            "correct": await client.call_tool("correct", {"memory_id": str(dana[1]), "content": "Dana can eat almonds now."}),
            "handshake": await client.call_tool("handshake", {}),
            "reflect": await client.call_tool("reflect", {"context_quality": 9, "notes": "memory helped"}),
        }
        return init, tools, calls


@pytest.fixture(scope="module")
def stdio(django_db_setup, django_db_blocker, live_server) -> StdioSession:
    """One session through ``python -m anima_client.mcp_server`` (as Claude Desktop runs it):
    bootstrap, remember, recall, promote, correct, handshake, reflect, with Dana's two
    memories stored first. Starting the process is the expensive part, so the tests below share the one run;
    the rows it wrote are read here, then flushed as a transactional test's teardown would."""
    with django_db_blocker.unblock():
        try:
            key = api_key_create(name="test write", namespace="default", scope="write")[1]
            with AnimaClient(live_server.url, key, retry=FAST_RETRY) as anima:
                dana = add_dana(anima)
            init, tools, calls = asyncio.run(_stdio_session(live_server.url, key, dana))
            return StdioSession(
                init=init,
                tools={tool.name: tool for tool in tools},
                text={name: text_of(result) for name, result in calls.items()},
                dana=dana,
                association_contexts=list(MemoryAssociation.objects.values_list("conversation_contexts", flat=True)),
                reflections=list(MetaReflection.objects.all()),
                context_qualities=list(ConversationReflection.objects.values_list("context_quality", flat=True)),
                corrected=Memory.objects.get(pk=dana[1]),
            )
        finally:
            call_command("flush", interactive=False, verbosity=0)


def test_stdio_server_introduces_itself_and_says_to_bootstrap_first(stdio):
    assert stdio.init.server_info.name == "anima"
    assert "bootstrap" in stdio.init.instructions


def test_stdio_server_instructions_say_forget_only_when_asked(stdio):
    assert "forget" in stdio.init.instructions and "never on your own" in stdio.init.instructions


def test_stdio_server_lists_every_tool(stdio):
    assert set(stdio.tools) == TOOLS


def test_bootstrap_tool_is_described_for_the_start_of_every_conversation(stdio):
    assert "start of every conversation" in stdio.tools["bootstrap"].description


def test_forget_tool_is_destructive_asks_for_an_explicit_request_and_purges_only_when_told(stdio):
    forget = stdio.tools["forget"]

    assert "ONLY when the user explicitly asks you to forget" in forget.description
    assert forget.annotations.destructive_hint is True
    assert forget.input_schema["properties"]["purge"]["default"] is False


def test_recall_tool_takes_the_query_filters(stdio):
    arguments = stdio.tools["recall"].input_schema["properties"]

    assert {"category", "tags", "metadata", "since", "recency_half_life_days", "as_of", "include_superseded"} <= set(
        arguments
    )


def test_correct_tool_takes_new_content_or_an_existing_memory_and_keeps_the_old(stdio):
    correct = stdio.tools["correct"]

    assert {"memory_id", "content", "corrected_by"} <= set(correct.input_schema["properties"])
    assert correct.input_schema["required"] == ["memory_id"]
    assert correct.annotations.destructive_hint is False
    assert "`correct`" in stdio.init.instructions


def test_correct_over_stdio_supersedes_the_memory(stdio):
    successor = stdio.corrected.superseded_by_id

    assert successor is not None and stdio.corrected.valid_until is not None
    assert stdio.text["correct"].startswith(f"Corrected {stdio.dana[1]}: superseded by {successor}")
    assert "was: Dana cannot eat almonds either." in stdio.text["correct"]
    assert "now: Dana can eat almonds now." in stdio.text["correct"]


def test_bootstrap_over_stdio_loads_the_memories_under_the_configured_conversation_id(stdio):
    assert "Dana is allergic to peanuts." in stdio.text["bootstrap"]
    assert "Dana cannot eat almonds either." in stdio.text["bootstrap"]
    assert "Conversation id: conv-stdio" in stdio.text["bootstrap"]


def test_remember_over_stdio_stores_the_memory(stdio):
    assert stdio.text["remember"].startswith("Remembered as ")


def test_recall_over_stdio_finds_the_relevant_memories_only(stdio):
    assert "Dana is allergic to peanuts." in stdio.text["recall"]
    assert "Dana cannot eat almonds either." in stdio.text["recall"]
    assert "Debian" not in stdio.text["recall"]


def test_recall_over_stdio_records_co_occurrence_under_the_configured_conversation_id(stdio):
    assert stdio.association_contexts == [["conv-stdio"]]


def test_promote_over_stdio_moves_the_memory_to_the_tier_asked(stdio):
    assert stdio.text["promote"].startswith(f"Moved {stdio.dana[0]} from active to stable")


def test_handshake_over_stdio_quotes_the_stored_memories(stdio):
    assert "Dana is allergic to peanuts." in stdio.text["handshake"]


def test_reflect_over_stdio_records_the_session_and_the_quality_given(stdio):
    [reflection] = stdio.reflections

    assert "Reflection on conversation conv-stdio recorded." in stdio.text["reflect"]
    assert reflection.conversation_id == "conv-stdio"
    assert reflection.session_metrics["memories_loaded"] == 2
    assert reflection.session_metrics["queries_executed"] == 1
    assert stdio.context_qualities == [9]


# --- in process --------------------------------------------------------------------------------


def call(server, *steps):
    """Run ``(tool, arguments)`` steps in one in-process MCP session; their results."""

    async def session():
        async with Client(server) as client:
            return [await client.call_tool(name, arguments) for name, arguments in steps]

    return asyncio.run(session())


def test_reflect_sends_the_session_metrics_the_server_tracked(anima_url, write_key, dana):
    server = build_server(base_url=anima_url, api_key=write_key)

    _, recalled, _ = call(
        server,
        ("bootstrap", {}),
        ("recall", {"query": "Is Dana allergic to peanuts?", "limit": 1}),
        ("reflect", {}),
    )

    similarity = float(text_of(recalled).split("similarity ")[1].split("]")[0])
    reflection = MetaReflection.objects.get()
    metrics = reflection.session_metrics
    assert metrics["memories_loaded"] == 2
    assert metrics["memories_accessed"] == 1
    assert metrics["queries_executed"] == 1
    assert metrics["total_results_returned"] == 1
    assert metrics["relevant_results"] == (1 if similarity >= RELEVANT_SIMILARITY else 0)
    assert metrics["total_relevance_score"] == pytest.approx(similarity, abs=0.01)
    assert metrics["context_load_time_ms"] > 0
    assert reflection.metrics["friction"]["wasteRatio"] == 0.5
    assert not ConversationReflection.objects.exists()  # no subjective view given


def test_recall_records_co_occurrence_under_the_conversation_id_given_to_bootstrap(anima_url, write_key, dana):
    server = build_server(base_url=anima_url, api_key=write_key)

    call(
        server,
        ("bootstrap", {"conversation_id": "conv-given"}),
        ("recall", {"query": "What is Dana allergic to?", "threshold": 0.2}),
    )

    assert MemoryAssociation.objects.get().conversation_contexts == ["conv-given"]


def test_after_reflect_the_next_conversation_gets_a_new_id(anima_url, write_key, dana):
    server = build_server(base_url=anima_url, api_key=write_key, conversation_id="conv-first")

    call(
        server,
        ("recall", {"query": "Dana allergies", "threshold": 0.2}),
        ("reflect", {}),
        ("recall", {"query": "Dana allergies", "threshold": 0.2}),
    )

    contexts = MemoryAssociation.objects.get().conversation_contexts
    assert contexts[-1] == "conv-first"  # newest first
    assert len(contexts) == 2 and contexts[0].startswith("mcp-")


def test_remember_stores_with_the_mcp_source_and_reports_a_duplicate(anima_url, write_key, anima):
    server = build_server(base_url=anima_url, api_key=write_key)

    first, again = call(
        server,
        ("remember", {"content": "Sam prefers dark mode.", "tags": ["sam"], "category": "preference"}),
        ("remember", {"content": "Sam prefers dark mode."}),
    )

    memory = anima.query("Which theme does Sam like?", limit=1).memories[0]
    assert (memory.content, memory.source, memory.tags) == ("Sam prefers dark mode.", "anima-mcp", ["sam"])
    assert str(memory.id) in text_of(first)
    assert text_of(again).startswith("Already remembered")


def test_promote_to_an_unknown_id_is_a_tool_error_the_model_can_read(anima_url, write_key):
    server = build_server(base_url=anima_url, api_key=write_key)

    (result,) = call(server, ("promote", {"memory_id": "00000000-0000-4000-8000-000000000000"}))

    assert result.is_error
    assert "No memory has that id" in result.content[0].text


def test_a_missing_key_is_a_tool_error_naming_the_fix(anima_url, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ANIMA_DATA_DIR", raising=False)
    monkeypatch.setattr("anima_client.config._CHECKOUT", tmp_path)
    server = build_server(base_url=anima_url)

    (result,) = call(server, ("bootstrap", {}))

    assert result.is_error
    assert "ANIMA_API_KEY" in result.content[0].text


def test_bootstrap_of_an_empty_memory_says_so(anima_url, write_key):
    server = build_server(base_url=anima_url, api_key=write_key)

    (result,) = call(server, ("bootstrap", {}))

    assert "No memories yet" in text_of(result)


@pytest.fixture
def allergies(anima):
    """Three allergies: Dana's peanuts (new), Dana's almonds (stored 30 days ago), Sam's shellfish."""
    peanuts = anima.add(
        "Dana is allergic to peanuts.", category="health", tags=["dana"], metadata={"person": "dana"}
    ).memory.id
    almonds = anima.add(
        "Dana cannot eat almonds either.", category="health", tags=["dana"], metadata={"person": "dana"}
    ).memory.id
    shellfish = anima.add(
        "Sam is allergic to shellfish.", category="health", tags=["sam"], metadata={"person": "sam"}
    ).memory.id
    Memory.objects.filter(pk=almonds).update(created_at=timezone.now() - timedelta(days=30))
    return peanuts, almonds, shellfish


def test_recall_narrows_by_category_tags_metadata_and_since(anima_url, write_key, allergies):
    server = build_server(base_url=anima_url, api_key=write_key)
    base = {"query": "food allergies", "threshold": 0}

    by_metadata, by_since, by_tags, with_recency, bad_since = call(
        server,
        ("recall", {**base, "metadata": {"person": "dana"}}),
        ("recall", {**base, "since": "7d"}),
        ("recall", {**base, "category": "health", "tags": ["sam"]}),
        ("recall", {**base, "since": "2000-01-01", "recency_half_life_days": 7}),
        ("recall", {**base, "since": "last spring"}),
    )

    assert "peanuts" in text_of(by_metadata) and "almonds" in text_of(by_metadata)
    assert "shellfish" not in text_of(by_metadata)
    assert "peanuts" in text_of(by_since) and "shellfish" in text_of(by_since)
    assert "almonds" not in text_of(by_since)
    assert "shellfish" in text_of(by_tags) and "Dana" not in text_of(by_tags)
    assert text_of(with_recency).startswith("3 memories for 'food allergies'")
    assert bad_since.is_error
    assert "since" in bad_since.content[0].text


def test_forget_soft_deletes_by_default_and_purges_only_when_asked(anima_url, write_key, allergies):
    peanuts, almonds, _ = allergies
    server = build_server(base_url=anima_url, api_key=write_key)

    soft, hard, again, not_an_id, recalled = call(
        server,
        ("forget", {"memory_id": str(peanuts)}),
        ("forget", {"memory_id": f" {almonds} ", "purge": True}),
        ("forget", {"memory_id": str(peanuts)}),
        ("forget", {"memory_id": "peanuts"}),
        ("recall", {"query": "What is Dana allergic to?", "threshold": 0}),
    )

    assert text_of(soft).startswith(f"Deleted {peanuts}") and "restored" in text_of(soft)
    assert Memory.objects.get(pk=peanuts).deleted_at is not None
    assert text_of(hard).startswith(f"Purged {almonds} for good")
    assert not Memory.objects.filter(pk=almonds).exists()
    assert again.is_error and "No memory has that id" in again.content[0].text
    assert not_an_id.is_error and "not a memory id" in not_an_id.content[0].text
    assert "peanuts" not in text_of(recalled) and "almonds" not in text_of(recalled)


def test_bootstrap_shows_pinned_memories_first(anima_url, write_key, anima, allergies):
    _, _, shellfish = allergies
    anima.memories.patch(shellfish, pinned=True)
    server = build_server(base_url=anima_url, api_key=write_key)

    (result,) = call(server, ("bootstrap", {}))

    text = text_of(result)
    assert text.index("## Pinned") < text.index("Sam is allergic to shellfish.") < text.index("## Active")
    assert text.count("Sam is allergic to shellfish.") == 1



def test_remember_suggests_a_correction_that_correct_confirms_and_recall_notes(anima_url, write_key, anima):
    old = anima.add("Dana is allergic to peanuts.").memory
    server = build_server(base_url=anima_url, api_key=write_key)

    (remembered,) = call(server, ("remember", {"content": "Dana is not allergic to peanuts."}))
    new = Memory.objects.get(content="Dana is not allergic to peanuts.")
    confirmed, current, history = call(
        server,
        ("correct", {"memory_id": str(old.id), "corrected_by": str(new.id)}),
        ("recall", {"query": "Is Dana allergic to peanuts?", "threshold": 0}),
        ("recall", {"query": "Is Dana allergic to peanuts?", "threshold": 0, "include_superseded": True}),
    )

    assert (
        f'may correct {str(old.id)[:8]} — confirm with: correct(memory_id="{old.id}", corrected_by="{new.id}")'
        in text_of(remembered)
    )
    assert text_of(confirmed).startswith(f"Corrected {old.id}: superseded by {new.id}")
    assert Memory.objects.get(pk=old.id).superseded_by_id == new.id
    assert "Dana is allergic to peanuts." not in text_of(current)
    assert f"corrects 1 older memory: {str(old.id)[:8]}" in text_of(current)
    assert f"superseded by {str(new.id)[:8]}" in text_of(history)


def test_correct_with_content_stores_the_fact_and_refuses_a_second_correction(anima_url, write_key, anima):
    old = anima.add("The sprint ends on Friday.", category="work").memory
    server = build_server(base_url=anima_url, api_key=write_key)

    corrected, again, neither, not_an_id, as_of = call(
        server,
        ("correct", {"memory_id": f" {old.id} ", "content": "The sprint ends on Monday.", "tags": ["sprint"]}),
        ("correct", {"memory_id": str(old.id), "content": "The sprint ends on Tuesday."}),
        ("correct", {"memory_id": str(old.id)}),
        ("correct", {"memory_id": "sprint", "content": "The sprint ends on Tuesday."}),
        ("recall", {"query": "When does the sprint end?", "threshold": 0, "as_of": "2000-01-01"}),
    )

    new = Memory.objects.get(content="The sprint ends on Monday.")
    assert text_of(corrected).startswith(f"Corrected {old.id}: superseded by {new.id}")
    assert (new.source, new.tags, new.supersedes) == ("anima-mcp", ["sprint"], [old.id])
    assert again.is_error and f"already corrected by {new.id}" in again.content[0].text
    assert neither.is_error and "content" in neither.content[0].text and "corrected_by" in neither.content[0].text
    assert not_an_id.is_error and "not a memory id" in not_an_id.content[0].text
    assert text_of(as_of).startswith("No memories match")
    assert not Memory.objects.filter(content="The sprint ends on Tuesday.").exists()
