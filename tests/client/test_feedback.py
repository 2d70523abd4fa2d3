"""Feedback from the client side: ``AnimaClient.feedback`` and its async twin, ``anima
feedback`` and the MCP ``feedback`` tool, each against a live Anima."""

import asyncio
import json
import uuid

import pytest
from mcp import Client

from anima_client import AnimaClient, AsyncAnimaClient, Forbidden
from anima_client.cli import main
from anima_client.mcp_server import build_server
from memories.models import Memory, MemoryAccess
from memories.ranking import FEEDBACK_PHI_STEP

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def peanuts(anima):
    """A stored memory (φ 1.0: a catalyst); its id."""
    return anima.add("Dana is allergic to peanuts.", is_catalyst=True).memory.id


def test_client_feedback_raises_phi_and_reports_unknown_ids(anima, peanuts):
    unknown = uuid.uuid4()

    result = anima.feedback([peanuts, unknown], conversation_id="conv-client")

    assert result.useful is True
    [updated] = result.updated
    assert (updated.memory_id, updated.resonance_phi, updated.access_count) == (peanuts, 1.0 + FEEDBACK_PHI_STEP, 1)
    assert result.not_found == [unknown]
    assert result.meta.request_id
    assert MemoryAccess.objects.get().conversation_id == "conv-client"


def test_async_client_feedback_lowers_phi(anima_url, write_key, peanuts):
    async def session():
        async with AsyncAnimaClient(anima_url, write_key) as client:
            return await client.feedback([str(peanuts)], useful=False)

    result = asyncio.run(session())

    assert result.updated[0].resonance_phi == 1.0 - FEEDBACK_PHI_STEP
    assert Memory.objects.get(pk=peanuts).resonance_phi == 1.0 - FEEDBACK_PHI_STEP


def test_client_feedback_with_a_read_key_is_forbidden(anima_url, api_key_for, peanuts):
    with AnimaClient(anima_url, api_key_for("read")) as reader, pytest.raises(Forbidden):
        reader.feedback([peanuts])

    assert Memory.objects.get(pk=peanuts).resonance_phi == 1.0


def test_cli_feedback_marks_not_useful_under_the_conversation(monkeypatch, capsys, anima_url, write_key, peanuts):
    monkeypatch.setenv("ANIMA_URL", anima_url)
    monkeypatch.setenv("ANIMA_API_KEY", write_key)
    unknown = uuid.uuid4()

    text_status = main(["feedback", str(peanuts), str(unknown), "--not-useful", "--conversation-id", "conv-cli"])
    text = capsys.readouterr().out
    json_status = main(["feedback", str(peanuts), "--json"])
    shown = json.loads(capsys.readouterr().out)

    assert (text_status, json_status) == (0, 0)
    assert text.startswith("Marked 1 memory not useful.")
    assert f"{peanuts}: φ {1.0 - FEEDBACK_PHI_STEP:.2f}, 1 access" in text
    assert str(unknown) in text
    assert shown["useful"] is True and shown["updated"][0]["resonancePhi"] == 1.0
    assert list(MemoryAccess.objects.order_by("accessed_at").values_list("conversation_id", flat=True)) == [
        "conv-cli",
        None,
    ]


def test_mcp_feedback_tool_sends_the_open_conversations_id(anima_url, write_key, peanuts):
    server = build_server(base_url=anima_url, api_key=write_key)

    async def session():
        async with Client(server) as client:
            await client.call_tool("bootstrap", {"conversation_id": "conv-mcp"})
            return (
                await client.call_tool("feedback", {"memory_ids": [f" {peanuts} "], "useful": True}),
                await client.call_tool("feedback", {"memory_ids": ["peanuts"], "useful": True}),
            )

    marked, not_an_id = asyncio.run(session())

    assert not marked.is_error, marked.content
    assert marked.content[0].text.startswith("Marked 1 memory useful.")
    assert Memory.objects.get(pk=peanuts).resonance_phi == 1.0 + FEEDBACK_PHI_STEP
    assert MemoryAccess.objects.get().conversation_id == "conv-mcp"
    assert not_an_id.is_error and "memory ids" in not_an_id.content[0].text
