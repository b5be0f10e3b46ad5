"""The rule by which the simulated model calls tools under ``tool_choice: auto`` (``_tools``),
on plain request dicts: the rule the simulator's README states, case by case."""

from __future__ import annotations

import doctest

import pytest

from batchkit.simulator import _sse, _tools
from batchkit.simulator._tools import called_tools


def tool(name: str, **extra: object) -> dict:
    return {"name": name, "input_schema": {"type": "object", "properties": {}}, **extra}


def ask(text: object, tools: list[dict], **extra: object) -> dict:
    return {
        "model": "claude-haiku-4-5",
        "max_tokens": 100,
        "tools": tools,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


@pytest.mark.parametrize(
    ("text", "names", "called"),
    [
        ("What's the weather like in Paris?", ["get_weather"], ["get_weather"]),
        ("Hello there!", ["get_weather"], []),
        ("Weather and time in Tokyo?", ["get_weather", "get_time", "get_stock"], ["get_time", "get_weather"]),
        ("Please calculate 2 + 2", ["calculator"], ["calculator"]),  # same first five letters
        ("What do AAPL shares cost? the price please", ["lookupStockPrice"], ["lookupStockPrice"]),  # camelCase
        ("Can you search for it?", ["search"], ["search"]),  # only generic words: all count
        ("Can you fetch that for me?", ["fetch_weather"], []),  # generic verbs never match
        ("Tell me the time", ["get_timezone"], []),  # short words must be equal
    ],
)
def test_a_tool_is_called_when_the_users_latest_text_names_it(text: str, names: list[str], called: list[str]) -> None:
    assert [t["name"] for t in called_tools(ask(text, [tool(n) for n in names]))] == called


def test_what_never_calls_a_tool() -> None:
    weather = [tool("get_weather")]
    question = "What's the weather?"
    assert called_tools(ask(question, weather, tool_choice={"type": "none"})) == []
    assert called_tools(ask(question, weather, tool_choice={"type": "any"})) == []  # forced: another rule
    assert called_tools(ask(question, [{"type": "web_search_20250305", "name": "weather_search"}])) == []
    results = ask(
        [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
            {"type": "text", "text": "and the weather tomorrow?"},
        ],
        weather,
    )
    assert called_tools(results) == []  # tool results in: the final answer comes next
    last_is_assistant = ask(question, weather)
    last_is_assistant["messages"].append({"role": "assistant", "content": "Let me see"})
    assert called_tools(last_is_assistant) == []


def test_parallel_calls_can_be_turned_off() -> None:
    both = ask(
        "weather and time?",
        [tool("get_weather"), tool("get_time")],
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
    )
    assert [t["name"] for t in called_tools(both)] == ["get_time"]


def test_text_blocks_count_like_a_string() -> None:
    blocks = ask([{"type": "text", "text": "the weather"}, {"type": "text", "text": "in Rome"}], [tool("get_weather")])
    assert [t["name"] for t in called_tools(blocks)] == ["get_weather"]


def test_the_documented_examples_hold() -> None:
    for module in (_tools, _sse):
        assert doctest.testmod(module).failed == 0
