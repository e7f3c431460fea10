"""``POST /v1/responses`` judged by openai-node and the Vercel AI SDK's default ``openai(model)`` provider (which
speaks the Responses API), across a failover: the Anthropic primary is withdrawn, an OpenAI-kind model answers.

The clients are pinned in tests/node/package.json (+ package-lock.json); the first run installs them with
``npm ci`` into tests/node/node_modules (about 50 MB, a few seconds). Needs ``node`` >= 18 and ``npm``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import GATEWAY_KEY
from tests.integration.dialect_config import aws_credentials, dialect_config

NODE_DIR = Path(__file__).resolve().parent.parent / "node"


@pytest.fixture(scope="module")
def node_clients() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("node and npm are needed for the openai-node / AI SDK tests: apt-get install nodejs npm")
    stamp = NODE_DIR / "node_modules" / ".package-lock.json"
    lock = NODE_DIR / "package-lock.json"
    if not stamp.exists() or stamp.stat().st_mtime < lock.stat().st_mtime:
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=NODE_DIR, check=True, timeout=300)
    return Path(node)


@pytest.fixture(scope="module", autouse=True)
def aws_env():
    with aws_credentials():
        yield


def test_openai_node_and_the_ai_sdk_across_a_failover(emu, make_gateway, node_clients):
    gw = make_gateway(dialect_config(emu.url))
    emu.set("claude-sonnet-emu", "withdrawn")
    run = subprocess.run([str(node_clients), str(NODE_DIR / "clients.mjs"), gw.url, GATEWAY_KEY, "anthropic-first"],
                         check=False, capture_output=True, text=True, timeout=90)
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout)
    hello = "Hello from gpt-5. You said: Hello there"
    # openai-node
    assert out["create"] == {"text": hello, "model": "gpt-5", "status": "completed", "usage": {
        "input_tokens": 4, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 7,
        "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 11}}
    types = out["stream_raw"]["types"]
    assert types[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"] and types[-1] == "response.completed"
    assert out["stream_helper"] == {"text": hello, "deltas": hello}
    assert out["function_call"] == {"name": "get_weather", "arguments": {"location": "example"},
                                    "text": "Tool result received: 18C, sunny"}
    assert out["json_schema"] == {"parsed": {"model": "example", "answer": "example"}}
    # the AI SDK's default provider (Responses API), including a follow-up that replays the first answer
    gen = out["ai_generate"]
    assert gen["text"] == hello and gen["finishReason"] == "stop" and gen["modelId"] == "gpt-5"
    assert gen["again"] == "Hello from gpt-5. You said: And again"
    assert gen["usage"]["inputTokens"] == 2 and gen["usage"]["outputTokens"] == 7
    assert out["ai_stream"] == {"text": hello, "finishReason": "stop"}
    assert out["ai_tools"] == {"steps": 2, "calls": [["get_weather", {"location": "example"}]],
                               "text": "Tool result received: 18C in example"}
    # The AI SDK sends the earlier answer as {"type": "item_reference", "id": ...}: its text comes from the store.
    followups = [a["request"]["messages"] for a in emu.attempts("gpt-5") if "And again" in json.dumps(a["request"])]
    assert followups and followups[0][1] == {"role": "assistant", "content": hello}, followups


def test_a_stream_that_cannot_complete_is_a_failure_to_every_node_client(emu, make_gateway, node_clients):
    gw = make_gateway(dialect_config(emu.url))
    emu.set("gpt-5", "stream_cut:after=2")  # the route's only model: no continuation possible
    run = subprocess.run([str(node_clients), str(NODE_DIR / "clients.mjs"), gw.url, GATEWAY_KEY, "openai-first",
                          "cut"], check=False, capture_output=True, text=True, timeout=90)
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout)
    assert "failed after it started" in out["cut_raw"]["error"]  # iterating the raw events throws APIError
    assert "failed after it started" in out["cut_helper"]["error"]  # finalResponse() rejects
    assert out["cut_ai_stream"]["finishReason"] == "error"  # the AI SDK: not a clean finish
