"""The default responder and custom responders: tools, JSON schema, stop sequences, max_tokens."""

from __future__ import annotations

import enum
import json
from typing import Literal

import anthropic
import msgspec
import pydantic
import pytest
from simtools import MODEL, request, strict_results

from batchkit.simulator import Processing, SimConfig, Simulator, default_responder


def ask(client: anthropic.Anthropic, content: str, **params):
    return client.messages.create(
        model=MODEL, max_tokens=params.pop("max_tokens", 200), messages=[{"role": "user", "content": content}], **params
    )


def test_sentiment_answer_is_an_option_from_the_prompt_and_follows_the_text(client: anthropic.Anthropic) -> None:
    good = ask(client, "Classify the sentiment of this review as positive, negative or neutral: I love it, great value")
    bad = ask(
        client, "Classify the sentiment of this review as positive, negative or neutral: terrible, it arrived broken"
    )
    assert good.content[0].text == "positive" and bad.content[0].text == "negative"
    labels = ask(client, "Answer with one of: billing, shipping, returns. Ticket: where is my parcel?")
    assert labels.content[0].text in {"billing", "shipping", "returns"}


def test_plain_prompt_gets_a_sentence_naming_its_words(client: anthropic.Anthropic) -> None:
    text = ask(client, "Summarize the history of Venetian glassmaking").content[0].text
    assert "venetian" in text and "glassmaking" in text and text.endswith(".")


def test_tool_choice_any_and_tool_give_schema_valid_tool_use(client: anthropic.Anthropic) -> None:
    weather = {
        "name": "get_weather",
        "input_schema": {
            "type": "object",
            "required": ["city", "unit", "days"],
            "properties": {
                "city": {"type": "string"},
                "unit": {"enum": ["c", "f"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
        },
    }
    other = {"name": "noop", "input_schema": {"type": "object", "properties": {}}}
    forced = ask(
        client, "Weather in Paris?", tools=[weather, other], tool_choice={"type": "tool", "name": "get_weather"}
    )
    assert forced.stop_reason == "tool_use"
    block = forced.content[0]
    assert block.type == "tool_use" and block.name == "get_weather" and block.id.startswith("toolu_")
    assert isinstance(block.input["city"], str) and block.input["unit"] in ("c", "f")
    assert 1 <= block.input["days"] <= 7
    anyone = ask(client, "Weather in Paris?", tools=[weather, other], tool_choice={"type": "any"})
    assert anyone.stop_reason == "tool_use" and anyone.content[0].name in ("get_weather", "noop")
    auto = ask(client, "Weather in Paris?", tools=[weather])  # names the tool: called (see _tools)
    assert auto.stop_reason == "tool_use" and auto.content[0].name == "get_weather"
    chat = ask(client, "Tell me a joke", tools=[weather])
    assert chat.stop_reason == "end_turn" and chat.content[0].type == "text"
    none = ask(client, "Weather in Paris?", tools=[weather], tool_choice={"type": "none"})
    assert none.stop_reason == "end_turn" and none.content[0].type == "text"


class Address(pydantic.BaseModel):
    street: str
    zip_code: str | None = None


class Person(pydantic.BaseModel):
    name: str
    age: int = pydantic.Field(ge=0, le=120)
    score: float
    active: bool
    role: Literal["admin", "user", "guest"]
    tags: list[str] = pydantic.Field(min_length=2)
    home: Address
    nothing: None = None


def test_json_schema_output_validates_against_the_pydantic_model(client: anthropic.Anthropic) -> None:
    schema = Person.model_json_schema()
    assert "$defs" in schema  # the nested model arrives as a $ref, as pydantic emits it
    for i in range(10):
        message = ask(
            client,
            f"Extract the person from record {i}: Ada Lovelace, mathematician",
            output_config={"format": {"type": "json_schema", "schema": schema}},
        )
        person = Person.model_validate_json(message.content[0].text)
        assert len(person.tags) >= 2 and 0 <= person.age <= 120


def test_json_schema_enum_and_arrays() -> None:
    schema = {
        "type": "object",
        "properties": {
            "label": {"type": "string", "enum": ["positive", "negative"]},
            "items": {"type": "array", "items": {"anyOf": [{"type": "integer"}, {"type": "null"}]}, "minItems": 3},
            "when": {"type": "string", "format": "date"},
        },
        "required": ["label", "items", "when"],
    }
    params = {
        "model": MODEL,
        "max_tokens": 100,
        "output_config": {"format": {"type": "json_schema", "schema": schema}},
        "messages": [{"role": "user", "content": "Review: awful, broken, refund please"}],
    }
    value = default_responder(params)
    assert value["label"] == "negative" and len(value["items"]) >= 3
    assert all(isinstance(v, int) for v in value["items"]) and len(value["when"]) == 10
    assert default_responder(params) == value  # deterministic


def test_stop_sequence_cuts_the_answer(client: anthropic.Anthropic) -> None:
    full = ask(client, "Summarize the history of Venetian glassmaking").content[0].text
    cut = ask(client, "Summarize the history of Venetian glassmaking", stop_sequences=["zzz", "glassmaking"])
    assert cut.stop_reason == "stop_sequence" and cut.stop_sequence == "glassmaking"
    assert cut.content[0].text == full[: full.index("glassmaking")]
    untouched = ask(client, "Summarize the history of Venetian glassmaking", stop_sequences=["zzz"])
    assert untouched.stop_reason == "end_turn" and untouched.stop_sequence is None


def test_max_tokens_truncates(client: anthropic.Anthropic) -> None:
    message = ask(client, "Summarize the history of Venetian glassmaking", max_tokens=2)
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 2
    assert len(message.content[0].text) == 8


def test_custom_responder_with_extras_in_a_batch() -> None:
    seen = []

    def responder(params: dict, custom_id: str, attempt: int) -> str | dict:
        seen.append((custom_id, attempt))
        if "tools" in params:
            return {"city": "Oslo"}
        if "output_config" in params:
            return {"answer": 42}
        return f"echo {custom_id}"

    sim = Simulator(SimConfig(processing=Processing.instant()), responder=responder)
    client = sim.client(_strict_response_validation=True)
    tool = {"name": "weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}}
    batch = client.messages.batches.create(
        requests=[
            request("plain"),
            request("tool", tools=[tool], tool_choice={"type": "any"}),
            request("json", output_config={"format": {"type": "json_schema", "schema": schema}}),
        ]
    )
    results = strict_results(client, batch.id)
    assert results["plain"].result.message.content[0].text == "echo plain"
    assert results["tool"].result.message.content[0].input == {"city": "Oslo"}
    assert msgspec.json.decode(results["json"].result.message.content[0].text) == {"answer": 42}
    again = client.messages.batches.create(requests=[request("plain")])
    strict_results(client, again.id)
    assert ("plain", 2) in seen and ("plain", 1) in seen


def test_a_failing_responder_errors_the_request() -> None:
    def boom(params: dict) -> str:
        raise RuntimeError("no answer")

    sim = Simulator(SimConfig(processing=Processing.instant()), responder=boom)
    client = sim.client(max_retries=0)
    batch = client.messages.batches.create(requests=[request("a")])
    error = strict_results(client, batch.id)["a"].result.error.error
    assert error.type == "api_error" and "no answer" in error.message
    with pytest.raises(anthropic.InternalServerError):
        ask(client, "hi")


def test_answers_may_use_subclasses_of_builtin_types() -> None:
    class Label(str, enum.Enum):  # noqa: UP042 (a user's str-mixin enum, as the test means)
        POS = "pos"

    class Text(str):
        pass

    class Count(int):
        pass

    def responder(params: dict) -> str | dict:
        if "output_config" in params:
            return {"label": Label.POS, "count": Count(3), "tags": (Text("a"), 1.5)}
        return Text("plain text")

    sim = Simulator(SimConfig(processing=Processing.instant()), responder=responder)
    client = sim.client(_strict_response_validation=True)
    schema = {"type": "object", "properties": {"label": {"type": "string"}}}
    batch = client.messages.batches.create(
        requests=[
            request("plain"),
            request("json", output_config={"format": {"type": "json_schema", "schema": schema}}),
        ]
    )
    results = strict_results(client, batch.id)
    assert results["plain"].result.message.content[0].text == "plain text"
    assert msgspec.json.decode(results["json"].result.message.content[0].text) == {
        "label": "pos",
        "count": 3,
        "tags": ["a", 1.5],
    }


# --------------------------------------------------------------------------- answers follow meaning, not bytes

_SCHEMA = {
    "type": "object",
    "required": ["title", "year", "rating", "genres"],
    "additionalProperties": False,
    "properties": {
        "title": {"type": "string"},
        "year": {"type": "integer", "minimum": 1900, "maximum": 2030},
        "rating": {"type": "number", "minimum": 0, "maximum": 10},
        "genres": {"type": "array", "items": {"type": "string"}},
    },
}
_TOOLS = [
    {
        "name": "lookup_film",
        "description": "find a film",
        "input_schema": {"type": "object", "properties": {"title": {"type": "string"}, "year": {"type": "integer"}}},
    },
    {
        "name": "lookup_person",
        "description": "find a person",
        "input_schema": {"type": "object", "properties": {"name": {"type": "string"}}},
    },
]
_PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def _variety() -> list[dict]:
    """Requests whose answers depend on the hash (openers, JSON values, the tool picked) or on
    the sentiment heuristic, each with a system prompt, some with an image block."""
    out = []
    for i in range(8):
        out.append(
            {
                "model": MODEL,
                "max_tokens": 200,
                "system": f"You are terse. Case {i}.",
                "messages": [{"role": "user", "content": f"Summarize the history of glassmaking in town {i}"}],
            }
        )
    for review in (
        "재밌군",
        "정말 비디오마저 돈주고 보고 아깝다..최악...",
        "평소 시간이 정 가지 않거든 보길",
        "그냥 그랬다",
        "난 프랑스 영화가 이래서 좋다..",
    ):
        out.append(
            {
                "model": MODEL,
                "max_tokens": 5,
                "messages": [
                    {
                        "role": "user",
                        "content": "Classify the sentiment of this movie review as positive or negative.\n\nReview: "
                        + review,
                    }
                ],
            }
        )
    for i in range(4):
        out.append(
            {
                "model": MODEL,
                "max_tokens": 300,
                "output_config": {"format": {"type": "json_schema", "schema": _SCHEMA}},
                "messages": [{"role": "user", "content": f"Extract the film from synopsis {i}: a quiet drama"}],
            }
        )
        out.append(
            {
                "model": MODEL,
                "max_tokens": 300,
                "tools": _TOOLS,
                "tool_choice": {"type": "any"},
                "messages": [{"role": "user", "content": f"Who made film number {i}?"}],
            }
        )
    out.append(
        {
            "model": MODEL,
            "max_tokens": 100,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": _PIXEL}},
                        {"type": "text", "text": "Describe this picture of a lighthouse"},
                    ],
                }
            ],
        }
    )
    return out


def _reordered(value):
    """Every object's keys in reverse order; a plain-string content or system becomes the
    equivalent list of one text block (with a cache_control mark, which changes nothing)."""
    if isinstance(value, dict):
        out = {}
        for key, item in reversed(list(value.items())):
            if key in ("content", "system") and isinstance(item, str):
                item = [{"text": item, "cache_control": {"type": "ephemeral"}, "type": "text"}]
            out[key] = _reordered(item)
        return out
    if isinstance(value, list):
        return [_reordered(item) for item in value]
    return value


def _answer(message) -> list:
    """What was answered, without the per-request ids: text (as JSON when it is JSON), or the tool's name and input."""
    out = []
    for block in message.content:
        if block.type == "tool_use":
            out.append(("tool_use", block.name, block.input))
        else:
            try:
                out.append(("json", msgspec.json.decode(block.text)))
            except msgspec.DecodeError:
                out.append(("text", block.text))
    return [out, message.stop_reason]


def test_the_same_request_written_differently_gets_the_same_answer(iclient: anthropic.Anthropic) -> None:
    from anthropic.types import Message
    from anthropic.types.messages import MessageBatch

    plain = _variety()
    # The same requests: keys in reverse order, strings as one-block lists, pretty-printed.
    spellings = {
        "compact": lambda p: msgspec.json.encode(p),
        "reordered": lambda p: json.dumps(_reordered(p), indent=2, ensure_ascii=False).encode(),
        "spaced": lambda p: json.dumps(p, separators=(" , ", " :  "), ensure_ascii=True).encode(),
    }
    realtime = {
        name: [
            _answer(
                iclient.post(
                    "/v1/messages",
                    cast_to=Message,
                    body=None,
                    options={"headers": {"content-type": "application/json"}},
                    content=spell(p),
                )
            )
            for p in plain
        ]
        for name, spell in spellings.items()
    }
    assert realtime["reordered"] == realtime["compact"] == realtime["spaced"]
    texts = [a[0][0] for a in realtime["compact"]]
    assert len({t[1] for t in texts[:8]}) > 1  # the hash-chosen answers do vary between prompts
    assert {t[1] for t in texts if t[0] == "tool_use"} <= {"lookup_film", "lookup_person"}

    batched = {}
    for name, spell in spellings.items():
        items = b",\n".join(b'{"params": ' + spell(p) + b', "custom_id": "r%d"}' % i for i, p in enumerate(plain))
        batch = iclient.post(
            "/v1/messages/batches",
            cast_to=MessageBatch,
            body=None,
            options={"headers": {"content-type": "application/json"}},
            content=b'{ "requests" : [\n' + items + b"\n] }",
        )
        results = strict_results(iclient, batch.id)
        batched[name] = [_answer(results[f"r{i}"].result.message) for i in range(len(plain))]
    assert batched["reordered"] == batched["compact"] == batched["spaced"] == realtime["compact"]


def test_a_one_block_content_list_is_the_same_as_its_string() -> None:
    as_string = {
        "model": MODEL,
        "max_tokens": 50,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Summarize the history of Venetian glassmaking"}],
    }
    as_blocks = {
        "messages": [
            {"content": [{"type": "text", "text": "Summarize the history of Venetian glassmaking"}], "role": "user"}
        ],
        "system": [{"type": "text", "text": "Be brief."}],
        "max_tokens": 50,
        "model": MODEL,
    }
    assert default_responder(as_string) == default_responder(as_blocks)
    other_model = {**as_string, "model": "claude-sonnet-4-6"}
    other_system = {**as_string, "system": "Be thorough."}
    answers = {default_responder(p) for p in _variations(as_string, 12)}
    assert len(answers) > 1, "the answer must still depend on the prompt"
    assert isinstance(default_responder(other_model), str) and isinstance(default_responder(other_system), str)


def _variations(params: dict, n: int) -> list[dict]:
    return [
        {**params, "messages": [{"role": "user", "content": f"Summarize the history of glass in town {i}"}]}
        for i in range(n)
    ]


# --------------------------------------------------------------------------- the sentiment heuristic


@pytest.mark.parametrize(
    ("review", "expected"),
    [
        ("정말 재미있어요 최고!", "positive"),
        ("배우들 연기가 일품이었고 감동적인 영화", "positive"),
        ("지루하지 않고 끝까지 몰입해서 봤다", "positive"),
        ("재미없다. 시간 아깝다", "negative"),
        ("재미가 하나도 없네요", "negative"),
        ("기대했는데 안 좋았어요", "negative"),
        ("재밌는 줄 알았는데 별로", "negative"),
        ("I loved it, a wonderful film", "positive"),
        ("This was not good at all", "negative"),
        ("Never disappointed by this director", "positive"),
        ("Not bad at all, honestly", "positive"),
        ("I can't wait to see it again", "positive"),
        ("Terrible plot and a boring cast", "negative"),
    ],
)
def test_sentiment_follows_the_text_with_negation(review: str, expected: str) -> None:
    params = {
        "model": MODEL,
        "max_tokens": 5,
        "messages": [
            {
                "role": "user",
                "content": f"Classify the sentiment of this movie review as positive or negative.\n\nReview: {review}",
            }
        ],
    }
    assert default_responder(params) == expected
    for labels, want in (
        (["positive", "negative"], expected),
        (["긍정", "부정"], {"positive": "긍정", "negative": "부정"}[expected]),
        (["good", "neutral", "bad"], {"positive": "good", "negative": "bad"}[expected]),
    ):
        schema = {"type": "object", "properties": {"label": {"type": "string", "enum": labels}}, "required": ["label"]}
        labelled = {
            **params,
            "messages": [{"role": "user", "content": f"Review: {review}"}],
            "output_config": {"format": {"type": "json_schema", "schema": schema}},
        }
        assert default_responder(labelled) == {"label": want}


def test_no_evidence_is_neutral_when_neutral_is_a_label() -> None:
    params = {
        "model": MODEL,
        "max_tokens": 5,
        "messages": [
            {
                "role": "user",
                "content": "Classify the sentiment as positive, negative or neutral: The meeting is on Tuesday at noon",
            }
        ],
    }
    assert default_responder(params) == "neutral"


def test_korean_prompt_naming_its_labels_gets_one_of_them() -> None:
    params = {
        "model": MODEL,
        "max_tokens": 5,
        "messages": [
            {"role": "user", "content": "다음 리뷰가 긍정인지 부정인지 한 단어로 답하세요.\n\n리뷰: 최고의 음악영화"}
        ],
    }
    assert default_responder(params) == "긍정"


def _result_lines(sim: Simulator, requests: list[dict], beta: bool, body: bytes | None = None) -> list[bytes]:
    client = sim.client(max_retries=0)
    headers = {"anthropic-beta": "output-300k-2026-03-24"} if beta else {}
    if body is None:
        batch = client.post(
            "/v1/messages/batches", body={"requests": requests}, cast_to=object, options={"headers": headers}
        )
    else:  # the body as written
        headers["content-type"] = "application/json"
        batch = client.post("/v1/messages/batches", content=body, cast_to=object, options={"headers": headers})
    with client.messages.batches.with_streaming_response.results(batch["id"]) as response:
        return response.read().split(b"\n")[:-1]


def _fast_lines_as_general(requests: list, beta: bool, seed: int, body: bytes | None = None) -> list[bytes]:
    """The result lines of the simulator's own roads, asserted byte for byte those of the general
    road (the default responder called as a custom one), ids aside; ``body``: the requests
    as written by a client, if not by the SDK."""
    config = SimConfig(seed=seed, processing=Processing.instant())
    fast = _result_lines(Simulator(config=config), requests, beta, body)
    general = _result_lines(
        Simulator(config=config, responder=lambda params: default_responder(params)), requests, beta, body
    )
    assert len(fast) == len(general) == len(requests)
    for one, other in zip(fast, general, strict=True):
        one_id = msgspec.json.decode(one)["result"]["message"]["id"].encode()
        other_id = msgspec.json.decode(other)["result"]["message"]["id"].encode()
        assert one.replace(one_id, other_id) == other
    return fast


@pytest.mark.parametrize("beta", [False, True])
def test_default_answers_are_the_same_bytes_as_any_responder_giving_them(beta: bool) -> None:
    """The default responder's plain answers take a shorter road to their result line; a custom
    responder giving the same answers takes the general one: the lines are the same bytes
    (message ids aside, which are random per simulator)."""
    texts = [
        "Classify the sentiment of this review as positive or negative: I love it, great value",
        "이 리뷰가 긍정인지 부정인지 답하세요: 재미없다. 시간 아깝다",
        'Summarise "quoted\\ text" with\nnew lines, tabs\tand emoji 🎬 in one sentence, please',
        "Summarize the history of Venetian glassmaking and its furnaces on Murano island",
    ]
    requests = [
        request(f"r{i}-{cap}", text, max_tokens=cap, system="Be brief.")
        if i % 2
        else request(f"r{i}-{cap}", text, max_tokens=cap)
        for i, text in enumerate(texts)
        for cap in (1, 3, 200)
    ]
    fast = _fast_lines_as_general(requests, beta, seed=7)
    assert b'"stop_reason":"max_tokens"' in fast[0] and (b"context_management" in fast[0]) == beta


@pytest.mark.parametrize(
    "template",
    [
        "Classify the sentiment of this movie review as positive or negative.\n\nReview: ",
        "Classify the sentiment of this review: ",
        "Label this message as spam or ham. Message: ",
        "Classify the sentiment; do not be fooled by words like great: ",
        "이 리뷰가 긍정인지 부정인지 답하세요: ",
    ],
)
def test_a_batch_of_one_template_gets_the_answers_each_request_gets_alone(template: str) -> None:
    """A batch's plain requests are answered a slice at a time, reading the template they share
    once: the answers are those of the general road, request by request — also for rows whose
    own text names other options or does not follow the template."""
    rows = [
        "I love it, great value",
        "not good, it arrived broken",
        "재미없다. 시간 아깝다",
        "정말 재미있어요 최고!",
        "meh",
        "is it one of: a, b or c?",
        "Label: x, y",
        "",
    ]
    texts = [template + rows[i % len(rows)] + f" (#{i})" for i in range(100)]
    texts[10:10] = ["Tell me about Venice", "hi"]  # two that do not follow it
    requests = [request(f"r{i}", text, max_tokens=20) for i, text in enumerate(texts)]
    fast = _fast_lines_as_general(requests, False, seed=3)
    answers = {msgspec.json.decode(line)["result"]["message"]["content"][0]["text"] for line in fast}
    assert len(answers) >= 2  # the rows are answered, not the template


@pytest.mark.parametrize(
    "template",
    [
        "Classify the sentiment of this review: ",
        "Classify the sentiment of this movie review as positive or negative.\n\nReview: ",
        "Classify as positive, negative or neutral: ",
    ],
)
def test_rows_that_differ_only_in_digits_get_the_answers_each_gets_alone(template: str) -> None:
    """A slice's answers are found together and each text's score is remembered under what the
    scorer reads of it: a row number or an order id does not count, but ``<3``, a number of
    points (``10점`` is praise, ``0점`` a pan) and ``1도`` do — rows differing only there are
    answered as each is alone, in one batch and in the next (the memory outlives a batch)."""
    rows = [
        "bad <3 (order 1)",
        "bad <4 (order 2)",
        "10점 (#3)",
        "70점 (#4)",
        "1도 좋다 (#5)",
        "7도 좋다 (#6)",
        "ΟΔΟΣ ΣΊΣΥΦΟΣ fine (#7)",
        "great " * 900 + "(#8)",  # past the 4,000 characters the answer reads
        "it was bad, not great, 2/10 (order 9)",
        "meh (order 10)",
    ]
    for batch in range(2):
        texts = [template + rows[i % len(rows)].replace("(#", f"(#{batch}{i}") for i in range(120)]
        requests = [request(f"r{i}", text, max_tokens=20) for i, text in enumerate(texts)]
        fast = _fast_lines_as_general(requests, False, seed=batch)
        answers = [msgspec.json.decode(line)["result"]["message"]["content"][0]["text"] for line in fast]
        assert all(answers[k] != answers[k + 1] for k in (0, 2, 4))  # the digits it reads count


@pytest.mark.parametrize("spelling", ["compact", "spaced", "ascii escapes", "keys reordered", "one differs", "nul"])
def test_a_batch_gets_the_same_answers_however_its_json_is_written(spelling: str) -> None:
    """A batch of one template takes a short road (the params are the same bytes around each
    row's text, decoded once): a body written otherwise — spaced, with escapes, its keys in
    another order, one request unlike the others, a text holding a NUL — gets the answers the
    general road gives it, request by request."""
    rows = ["I love it, great value", "not good, it arrived broken", "최고의 영화 (#1)", "meh", "Σ ΟΔΟΣ", "  "]
    texts = [f"Classify the sentiment of this review: {rows[i % len(rows)]} ({i})" for i in range(150)]
    if spelling == "nul":
        texts[70] += "\x00"
    requests = [request(f"r{i}", text, max_tokens=20, system="Be brief.") for i, text in enumerate(texts)]
    if spelling == "keys reordered":
        requests[40]["params"] = dict(reversed(requests[40]["params"].items()))
    if spelling == "one differs":
        requests[90]["params"]["max_tokens"] = 1
    if spelling == "compact" or spelling == "keys reordered":
        body = json.dumps({"requests": requests}, ensure_ascii=False, separators=(",", ":")).encode()
    else:
        body = json.dumps({"requests": requests}, ensure_ascii=spelling == "ascii escapes").encode()
    fast = _fast_lines_as_general(requests, False, seed=5, body=body)
    assert fast[0].count(b'"text":"positive"') == 1 and fast[1].count(b'"text":"negative"') == 1
