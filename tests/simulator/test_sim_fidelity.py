"""Fidelity: ordinary client code, as a user writes it from the SDK's documentation, runs
unchanged on the simulator — through the real SDK, sync and async, with strict response
validation.

Each snippet in :data:`SNIPPETS` / :data:`ASYNC_SNIPPETS` is what a notebook would do: a plain
message, a conversation, an image, a PDF, structured output, tools forced and left to the
model (with the whole loop), the tool runner, thinking, streaming, token counting, batches.
The simulator's README ("What is simulated") lists the same.
"""

from __future__ import annotations

import asyncio
import base64
import io
import warnings
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anthropic
import pydantic
import pytest
from anthropic import beta_async_tool, beta_tool
from PIL import Image

from batchkit.core.media import text_pdf
from batchkit.simulator import Faults, Latency, SimConfig, Simulator, serve

MODEL = "claude-haiku-4-5"

WEATHER = {
    "name": "get_weather",
    "description": "Get the current weather in a given location",
    "input_schema": {
        "type": "object",
        "properties": {
            "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["location"],
    },
}
TIME = {
    "name": "get_time",
    "description": "Get the current time in a given time zone",
    "input_schema": {"type": "object", "properties": {"timezone": {"type": "string"}}, "required": ["timezone"]},
}


@pytest.fixture
def fclient(instant: Simulator) -> Iterator[anthropic.Anthropic]:
    client = instant.client(_strict_response_validation=True, max_retries=0)
    yield client
    client.close()


def png(colour: tuple[int, int, int] = (30, 60, 220)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def without_ids(message: Any) -> dict:
    """A message as data, without the ids that differ from call to call."""
    data = message.model_dump()
    data.pop("id")
    for block in data["content"]:
        block.pop("id", None)
    return data


# --------------------------------------------------------------------------- the snippets (sync)


def plain(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=MODEL, max_tokens=1024, messages=[{"role": "user", "content": "Hello, Claude"}]
    )
    assert message.stop_reason == "end_turn" and message.content[0].type == "text"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0


def multi_turn(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=MODEL,
        max_tokens=1024,
        system="You are a terse assistant.",
        messages=[
            {"role": "user", "content": "Hello there."},
            {"role": "assistant", "content": "Hi, I'm Claude. How can I help you?"},
            {"role": "user", "content": "Can you explain LLMs in plain English?"},
        ],
    )
    assert message.content[0].type == "text" and message.content[0].text


def image(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=MODEL,
        max_tokens=1024,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png()}},
                    {"type": "text", "text": "What colour is this image?"},
                ],
            }
        ],
    )
    assert "blue" in message.content[0].text.lower()


def pdf(client: anthropic.Anthropic) -> None:
    data = base64.b64encode(text_pdf(["invoice_number: INV-7\ntotal: 42"])).decode()
    message = client.messages.create(
        model=MODEL,
        max_tokens=1024,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": data}},
                    {"type": "text", "text": "Summarize this document."},
                ],
            }
        ],
    )
    assert message.content[0].type == "text" and message.usage.input_tokens > 2000  # a Letter page


class Invoice(pydantic.BaseModel):
    invoice_number: str
    total: int


def structured(client: anthropic.Anthropic) -> None:
    parsed = client.messages.parse(
        model=MODEL,
        max_tokens=1024,
        output_format=Invoice,
        messages=[{"role": "user", "content": "Extract: invoice INV-7, total 42"}],
    )
    assert isinstance(parsed.parsed_output, Invoice)


def tools_forced(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=MODEL,
        max_tokens=1024,
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "Paris?"}],
    )
    assert message.stop_reason == "tool_use" and message.content[0].name == "get_weather"


def tools_auto_loop(client: anthropic.Anthropic) -> None:
    messages: list[dict] = [{"role": "user", "content": "What's the weather like in San Francisco?"}]
    first = client.messages.create(model=MODEL, max_tokens=1024, tools=[WEATHER], messages=messages)
    assert first.stop_reason == "tool_use"
    call = next(block for block in first.content if block.type == "tool_use")
    assert call.name == "get_weather" and isinstance(call.input["location"], str)
    messages += [
        {"role": "assistant", "content": first.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "15 degrees, foggy"}]},
    ]
    final = client.messages.create(model=MODEL, max_tokens=1024, tools=[WEATHER], messages=messages)
    assert final.stop_reason == "end_turn" and "15 degrees, foggy" in final.content[0].text


def tools_parallel(client: anthropic.Anthropic) -> None:
    ask = [{"role": "user", "content": "What are the weather and the time in Tokyo?"}]
    both = client.messages.create(model=MODEL, max_tokens=1024, tools=[WEATHER, TIME], messages=ask)
    assert [b.name for b in both.content] == ["get_time", "get_weather"]
    assert len({b.id for b in both.content}) == 2
    one = client.messages.create(
        model=MODEL,
        max_tokens=1024,
        tools=[WEATHER, TIME],
        messages=ask,
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
    )
    assert [b.type for b in one.content] == ["tool_use"]


def tools_none(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=MODEL,
        max_tokens=1024,
        tools=[WEATHER],
        tool_choice={"type": "none"},
        messages=[{"role": "user", "content": "What's the weather in Paris?"}],
    )
    assert message.stop_reason == "end_turn" and message.content[0].type == "text"


CALLS: list[str] = []


@beta_tool
def get_weather(location: str) -> str:
    """Get the current weather for a location.

    Args:
        location: The city and state, e.g. San Francisco, CA
    """
    CALLS.append(location)
    return f"Sunny, 20 degrees in {location}"


def tool_runner(client: anthropic.Anthropic) -> None:
    CALLS.clear()
    runner = client.beta.messages.tool_runner(
        model=MODEL,
        max_tokens=1024,
        tools=[get_weather],
        messages=[{"role": "user", "content": "What is the weather in SF?"}],
    )
    final = runner.until_done()
    assert len(CALLS) == 1 and final.stop_reason == "end_turn"
    assert f"Sunny, 20 degrees in {CALLS[0]}" in final.content[0].text


def tool_runner_streamed(client: anthropic.Anthropic) -> None:
    CALLS.clear()
    runner = client.beta.messages.tool_runner(
        model=MODEL,
        max_tokens=1024,
        tools=[get_weather],
        stream=True,
        messages=[{"role": "user", "content": "What is the weather in SF?"}],
    )
    stops = []
    for stream in runner:
        for _event in stream:
            pass
        stops.append(stream.get_final_message().stop_reason)
    assert stops == ["tool_use", "end_turn"] and len(CALLS) == 1


def thinking(client: anthropic.Anthropic) -> None:
    ask: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 16000,
        "messages": [{"role": "user", "content": "Are there infinitely many primes?"}],
    }
    message = client.messages.create(thinking={"type": "enabled", "budget_tokens": 10000}, **ask)
    kinds = [block.type for block in message.content]
    assert kinds == ["thinking", "text"]
    assert message.content[0].thinking and message.content[0].signature
    plain_answer = client.messages.create(**ask)
    assert message.content[1].text == plain_answer.content[0].text  # thinking first, same answer
    assert message.usage.output_tokens > plain_answer.usage.output_tokens  # thinking is billed


def streaming(client: anthropic.Anthropic) -> None:
    ask: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Write a haiku about the sea and the wind"}],
    }
    with client.messages.stream(**ask) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    plain_answer = client.messages.create(**ask)
    assert text == final.content[0].text == plain_answer.content[0].text
    assert final.usage == plain_answer.usage


def streaming_events(client: anthropic.Anthropic) -> None:
    events = client.messages.create(
        model=MODEL, max_tokens=1024, stream=True, messages=[{"role": "user", "content": "Hello, Claude"}]
    )
    kinds = [event.type for event in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[2:-3]) == {"content_block_delta"}


def streaming_tool_and_thinking(client: anthropic.Anthropic) -> None:
    ask: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 4000,
        "tools": [WEATHER],
        "thinking": {"type": "enabled", "budget_tokens": 2000},
        "messages": [{"role": "user", "content": "What's the weather in Paris?"}],
    }
    deltas = set()
    with client.messages.stream(**ask) as stream:
        for event in stream:
            if event.type == "content_block_delta":
                deltas.add(event.delta.type)
        final = stream.get_final_message()
    assert deltas == {"thinking_delta", "signature_delta", "input_json_delta"}
    assert without_ids(final) == without_ids(client.messages.create(**ask))


def count_tokens(client: anthropic.Anthropic) -> None:
    counted = client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "Hello, world"}])
    answered = client.messages.create(model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "Hello, world"}])
    assert counted.input_tokens == answered.usage.input_tokens


def batches(client: anthropic.Anthropic) -> None:
    batch = client.messages.batches.create(
        requests=[
            {
                "custom_id": f"r{i}",
                "params": {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": f"Hello {i}"}]},
            }
            for i in range(3)
        ]
    )
    assert batch.id in [b.id for b in client.messages.batches.list(limit=10)]
    assert client.messages.batches.retrieve(batch.id).processing_status == "ended"
    results = {r.custom_id: r.result.type for r in client.messages.batches.results(batch.id)}
    assert results == {"r0": "succeeded", "r1": "succeeded", "r2": "succeeded"}
    canceled = client.messages.batches.cancel(batch.id)
    assert canceled.processing_status == "ended"  # ended already: cancel changes nothing


def models(client: anthropic.Anthropic) -> None:
    ids = [m.id for m in client.models.list(limit=100)]
    assert "claude-haiku-4-5-20251001" in ids and "claude-opus-4-5-20251101" in ids
    assert client.models.retrieve("claude-opus-4-5-20251101").max_tokens == 64000


SNIPPETS: dict[str, Callable[[anthropic.Anthropic], None]] = {
    f.__name__: f
    for f in (
        plain,
        multi_turn,
        image,
        pdf,
        structured,
        tools_forced,
        tools_auto_loop,
        tools_parallel,
        tools_none,
        tool_runner,
        tool_runner_streamed,
        thinking,
        streaming,
        streaming_events,
        streaming_tool_and_thinking,
        count_tokens,
        batches,
        models,
    )
}


@pytest.mark.parametrize("name", SNIPPETS)
def test_snippet_runs_unchanged(name: str, fclient: anthropic.Anthropic) -> None:
    SNIPPETS[name](fclient)


# --------------------------------------------------------------------------- the snippets (async)


async def aplain(client: anthropic.AsyncAnthropic) -> None:
    message = await client.messages.create(
        model=MODEL, max_tokens=1024, messages=[{"role": "user", "content": "Hello, Claude"}]
    )
    assert message.content[0].type == "text"


async def atools_auto_loop(client: anthropic.AsyncAnthropic) -> None:
    messages: list[dict] = [{"role": "user", "content": "What's the weather like in Paris?"}]
    first = await client.messages.create(model=MODEL, max_tokens=1024, tools=[WEATHER], messages=messages)
    assert first.stop_reason == "tool_use"
    messages += [
        {"role": "assistant", "content": first.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": first.content[0].id, "content": "rainy"}]},
    ]
    final = await client.messages.create(model=MODEL, max_tokens=1024, tools=[WEATHER], messages=messages)
    assert final.stop_reason == "end_turn" and "rainy" in final.content[0].text


@beta_async_tool
async def aget_weather(location: str) -> str:
    """Get the current weather for a location.

    Args:
        location: The city, e.g. Paris
    """
    CALLS.append(location)
    return "rainy"


async def atool_runner(client: anthropic.AsyncAnthropic) -> None:
    CALLS.clear()
    runner = client.beta.messages.tool_runner(
        model=MODEL,
        max_tokens=1024,
        tools=[aget_weather],
        messages=[{"role": "user", "content": "Weather in Paris, please"}],
    )
    final = await runner.until_done()
    assert len(CALLS) == 1 and "rainy" in final.content[0].text


async def athinking(client: anthropic.AsyncAnthropic) -> None:
    message = await client.messages.create(
        model=MODEL,
        max_tokens=3000,
        thinking={"type": "adaptive"},
        messages=[{"role": "user", "content": "Why is the sky blue?"}],
    )
    assert [b.type for b in message.content] == ["thinking", "text"]


async def astreaming(client: anthropic.AsyncAnthropic) -> None:
    ask: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Write a haiku about autumn leaves"}],
    }
    async with client.messages.stream(**ask) as stream:
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    plain_answer = await client.messages.create(**ask)
    assert text == plain_answer.content[0].text and final.usage == plain_answer.usage
    kinds = [event.type async for event in await client.messages.create(stream=True, **ask)]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"


async def acount_tokens(client: anthropic.AsyncAnthropic) -> None:
    counted = await client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
    assert counted.input_tokens > 0


async def abatches(client: anthropic.AsyncAnthropic) -> None:
    batch = await client.messages.batches.create(
        requests=[
            {
                "custom_id": "a",
                "params": {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]},
            }
        ]
    )
    results = [r async for r in await client.messages.batches.results(batch.id)]
    assert [r.result.type for r in results] == ["succeeded"]


ASYNC_SNIPPETS: dict[str, Callable[[anthropic.AsyncAnthropic], Awaitable[None]]] = {
    f.__name__: f
    for f in (
        aplain,
        atools_auto_loop,
        atool_runner,
        athinking,
        astreaming,
        acount_tokens,
        abatches,
    )
}


@pytest.mark.parametrize("name", ASYNC_SNIPPETS)
def test_async_snippet_runs_unchanged(name: str, instant: Simulator) -> None:
    async def main() -> None:
        client = instant.async_client(_strict_response_validation=True, max_retries=0)
        try:
            await ASYNC_SNIPPETS[name](client)
        finally:
            await client.close()

    asyncio.run(main())


# --------------------------------------------------------------------------- streamed = not streamed

SAME_ANSWER: dict[str, dict[str, Any]] = {
    "text": {"messages": [{"role": "user", "content": "Summarize the history of Venetian glassmaking"}]},
    "cut by max_tokens": {"max_tokens": 3, "messages": [{"role": "user", "content": "Describe a long river"}]},
    "stop sequence": {
        "stop_sequences": ["glass"],
        "messages": [{"role": "user", "content": "Summarize the history of Venetian glassmaking"}],
    },
    "sentiment": {"messages": [{"role": "user", "content": "Sentiment (positive or negative): I love it!"}]},
    "json schema": {
        "output_config": {"format": {"type": "json_schema", "schema": Invoice.model_json_schema()}},
        "messages": [{"role": "user", "content": "Invoice INV-9 for 12 dollars"}],
    },
    "forced tool": {
        "tools": [WEATHER],
        "tool_choice": {"type": "any"},
        "messages": [{"role": "user", "content": "Lyon?"}],
    },
    "parallel tools": {
        "tools": [WEATHER, TIME],
        "messages": [{"role": "user", "content": "Weather and time in Oslo?"}],
    },
    "thinking": {
        "max_tokens": 3000,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [{"role": "user", "content": "Explain tides to a child, in detail please"}],
    },
    "korean": {"messages": [{"role": "user", "content": "이 제품은 정말 훌륭하고 배송도 빨랐어요. 요약해 주세요"}]},
    "image": {
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": png((200, 30, 30))},
                    },
                    {"type": "text", "text": "Which colour?"},
                ],
            }
        ]
    },
}


@pytest.mark.parametrize("case", SAME_ANSWER)
def test_streamed_and_plain_answers_are_identical(case: str, fclient: anthropic.Anthropic) -> None:
    ask = {"model": MODEL, "max_tokens": 512, **SAME_ANSWER[case]}
    with fclient.messages.stream(**ask) as stream:
        streamed = stream.get_final_message()
    assert without_ids(streamed) == without_ids(fclient.messages.create(**ask))


def test_streams_over_http_one_after_another_on_one_connection(instant: Simulator) -> None:
    with serve(instant) as server:
        client = server.client(_strict_response_validation=True, max_retries=0)
        texts = []
        for topic in ("rivers", "mountains"):
            with client.messages.stream(
                model=MODEL, max_tokens=256, messages=[{"role": "user", "content": f"Tell me about {topic}"}]
            ) as stream:
                texts.append("".join(stream.text_stream))
        assert "rivers" in texts[0] and "mountains" in texts[1]
        client.close()


def test_a_stream_that_fails_after_its_200_raises_the_error_event() -> None:
    sim = Simulator(config=SimConfig(seed=3, faults=Faults(schedule=[("messages.create", 1, "midstream:529")])))
    client = sim.client(_strict_response_validation=True, max_retries=0)
    got = []
    story = [{"role": "user", "content": "Tell me a long story about a lighthouse keeper and the storm"}]
    with (
        pytest.raises(anthropic.APIStatusError) as info,
        client.messages.stream(model=MODEL, max_tokens=512, messages=story) as stream,
    ):
        got.extend(stream.text_stream)
    assert got  # the 200 and part of the answer came first
    assert info.value.body["error"]["type"] == "overloaded_error"
    assert sim.stats()["faults"] == {"midstream_529": 1}


def test_the_latency_model_is_spread_over_the_streamed_pieces() -> None:
    from batchkit.simulator._sse import MessageStream

    sim = Simulator(config=SimConfig(seed=3, latency=Latency(first_token=0.5, per_output_token=0.01)))
    message = sim.engine.message(
        {
            "model": MODEL,
            "max_tokens": 400,
            "messages": [{"role": "user", "content": "Describe the water cycle, the clouds, the rain and the rivers"}],
        },
        "2023-06-01",
    )
    waits: list[float] = []
    events: list[bytes] = []
    for data in MessageStream.of(
        message, first_wait=0.5, token_wait=0.3, sleep=lambda s: (waits.append(s), events.append(b"<wait>"))[0]
    ):
        events.append(data)
    first_block = next(i for i, e in enumerate(events) if e.startswith(b"event: content_block_start"))
    assert events[first_block - 1] == b"<wait>" and waits[0] == 0.5  # time to the first token, first
    assert sum(waits) == pytest.approx(0.8) and len(waits) > 2  # then a share per piece


# --------------------------------------------------------------------------- checks like the API's


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"thinking": {"type": "enabled", "budget_tokens": 500}}, "greater than or equal to 1024"),
        ({"thinking": {"type": "enabled", "budget_tokens": 4000}}, "must be greater than thinking.budget_tokens"),
        ({"thinking": {"type": "enabled"}}, "budget_tokens: Field required"),
        ({"thinking": {"type": "sometimes"}}, "thinking.type"),
        (
            {"thinking": {"type": "adaptive"}, "tools": [WEATHER], "tool_choice": {"type": "any"}},
            "tool_choice forces tool use",
        ),
    ],
)
def test_thinking_params_are_checked_like_the_api(fclient: anthropic.Anthropic, extra: dict, fragment: str) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        fclient.messages.create(model=MODEL, max_tokens=2000, messages=[{"role": "user", "content": "hi"}], **extra)
    assert fragment in info.value.message


def test_a_thread_continues_with_its_history_and_an_unknown_one_is_404(fclient: anthropic.Anthropic) -> None:
    first = fclient.beta.messages.create(
        model=MODEL,
        max_tokens=256,
        system="Be brief.",
        thread={"type": "create"},
        messages=[{"role": "user", "content": "Remember the word marmalade"}],
    )
    later = fclient.beta.messages.create(
        model=MODEL,
        max_tokens=256,
        thread={"type": "continue", "previous_message_id": first.id},
        messages=[{"role": "user", "content": "Which word?"}],
    )
    whole = fclient.beta.messages.create(
        model=MODEL,
        max_tokens=256,
        system="Be brief.",
        messages=[
            {"role": "user", "content": "Remember the word marmalade"},
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": "Which word?"},
        ],
    )
    assert later.usage.input_tokens == whole.usage.input_tokens  # answered with the whole history
    assert later.content[0].text == whole.content[0].text
    with pytest.raises(anthropic.BadRequestError, match="keeps the system"):
        fclient.beta.messages.create(
            model=MODEL,
            max_tokens=256,
            system="Other.",
            thread={"type": "continue", "previous_message_id": later.id},
            messages=[{"role": "user", "content": "And?"}],
        )
    with pytest.raises(anthropic.NotFoundError) as info:
        fclient.beta.messages.create(
            model=MODEL,
            max_tokens=256,
            thread={"type": "continue", "previous_message_id": "msg_01nope"},
            messages=[{"role": "user", "content": "And?"}],
        )
    assert info.value.body["error"]["details"]["error_code"] == "thread_not_found"


# --------------------------------------------------------------------------- models


def test_every_model_the_sdk_lists_is_served_priced_and_capped(fclient: anthropic.Anthropic) -> None:
    """The SDK's own ``Model`` literal (dated and alias ids): a new SDK release that adds an id
    the simulator does not know fails here, not in a user's notebook."""
    from typing import get_args

    from batchkit.simulator._config import DEFAULT_PRICES

    literal = next(arg for arg in get_args(anthropic.types.Model) if get_args(arg))
    sdk_ids = get_args(literal)
    assert "claude-haiku-4-5-20251001" in sdk_ids and "claude-opus-4-5-20251101" in sdk_ids
    listed = {m.id: m for m in fclient.models.list(limit=1000, extra_query={"lifecycle": "active,deprecated,retired"})}
    for model_id in sdk_ids:
        info = listed.get(model_id)
        assert info is not None, f"{model_id} is not in the simulator's catalogue"
        assert info.max_tokens >= 4096 and info.display_name != model_id, model_id
        assert any(model_id.startswith(prefix) for prefix in DEFAULT_PRICES), f"{model_id} has no price"
        with warnings.catch_warnings():  # the SDK warns of its deprecated models; answered all the same
            warnings.simplefilter("ignore", DeprecationWarning)
            answer = fclient.messages.create(model=model_id, max_tokens=8, messages=[{"role": "user", "content": "hi"}])
        assert answer.model == model_id
