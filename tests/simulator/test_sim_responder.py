"""The default responder and custom responders: tools, JSON schema, stop sequences, max_tokens."""

from __future__ import annotations

import enum
from typing import Literal

import anthropic
import msgspec
import pydantic
import pytest
from simtools import MODEL, request, strict_results

from batchkit.simulator import Processing, SimConfig, Simulator, default_responder


def ask(client: anthropic.Anthropic, content: str, **params):
    return client.messages.create(model=MODEL, max_tokens=params.pop("max_tokens", 200),
                                  messages=[{"role": "user", "content": content}], **params)


def test_sentiment_answer_is_an_option_from_the_prompt_and_follows_the_text(client: anthropic.Anthropic) -> None:
    good = ask(client, "Classify the sentiment of this review as positive, negative or neutral: I love it, great value")
    bad = ask(client, "Classify the sentiment of this review as positive, negative or neutral: terrible, it arrived broken")
    assert good.content[0].text == "positive" and bad.content[0].text == "negative"
    labels = ask(client, "Answer with one of: billing, shipping, returns. Ticket: where is my parcel?")
    assert labels.content[0].text in {"billing", "shipping", "returns"}


def test_plain_prompt_gets_a_sentence_naming_its_words(client: anthropic.Anthropic) -> None:
    text = ask(client, "Summarize the history of Venetian glassmaking").content[0].text
    assert "venetian" in text and "glassmaking" in text and text.endswith(".")


def test_tool_choice_any_and_tool_give_schema_valid_tool_use(client: anthropic.Anthropic) -> None:
    weather = {"name": "get_weather", "input_schema": {
        "type": "object", "required": ["city", "unit", "days"],
        "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]},
                       "days": {"type": "integer", "minimum": 1, "maximum": 7}}}}
    other = {"name": "noop", "input_schema": {"type": "object", "properties": {}}}
    forced = ask(client, "Weather in Paris?", tools=[weather, other],
                 tool_choice={"type": "tool", "name": "get_weather"})
    assert forced.stop_reason == "tool_use"
    block = forced.content[0]
    assert block.type == "tool_use" and block.name == "get_weather" and block.id.startswith("toolu_")
    assert isinstance(block.input["city"], str) and block.input["unit"] in ("c", "f")
    assert 1 <= block.input["days"] <= 7
    anyone = ask(client, "Weather in Paris?", tools=[weather, other], tool_choice={"type": "any"})
    assert anyone.stop_reason == "tool_use" and anyone.content[0].name in ("get_weather", "noop")
    auto = ask(client, "Weather in Paris?", tools=[weather])
    assert auto.stop_reason == "end_turn" and auto.content[0].type == "text"


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
        message = ask(client, f"Extract the person from record {i}: Ada Lovelace, mathematician",
                      output_config={"format": {"type": "json_schema", "schema": schema}})
        person = Person.model_validate_json(message.content[0].text)
        assert len(person.tags) >= 2 and 0 <= person.age <= 120


def test_json_schema_enum_and_arrays() -> None:
    schema = {"type": "object", "properties": {
        "label": {"type": "string", "enum": ["positive", "negative"]},
        "items": {"type": "array", "items": {"anyOf": [{"type": "integer"}, {"type": "null"}]}, "minItems": 3},
        "when": {"type": "string", "format": "date"}}, "required": ["label", "items", "when"]}
    params = {"model": MODEL, "max_tokens": 100, "output_config": {"format": {"type": "json_schema", "schema": schema}},
              "messages": [{"role": "user", "content": "Review: awful, broken, refund please"}]}
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
    batch = client.messages.batches.create(requests=[
        request("plain"),
        request("tool", tools=[tool], tool_choice={"type": "any"}),
        request("json", output_config={"format": {"type": "json_schema", "schema": schema}}),
    ])
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
    class Label(str, enum.Enum):
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
    batch = client.messages.batches.create(requests=[
        request("plain"), request("json", output_config={"format": {"type": "json_schema", "schema": schema}})])
    results = strict_results(client, batch.id)
    assert results["plain"].result.message.content[0].text == "plain text"
    assert msgspec.json.decode(results["json"].result.message.content[0].text) == {
        "label": "pos", "count": 3, "tags": ["a", 1.5]}
