"""The default responder's confidence signal: a schema property named ``confidence``."""

from __future__ import annotations

import csv
from pathlib import Path

import anthropic
import pytest
from simtools import MODEL

from batchkit.simulator import default_responder

TWEETS = Path(__file__).resolve().parents[2] / "data" / "tweeteval_sentiment_val.csv"
PROMPT = "Classify the sentiment of this tweet as positive, negative or neutral.\n\nTweet: {}"
LABELS = ["negative", "neutral", "positive"]


def _schema(confidence: dict, labels: list[str] = LABELS) -> dict:
    return {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": labels}, "confidence": confidence},
        "required": ["label", "confidence"],
        "additionalProperties": False,
    }


def _ask(text: str, schema: dict, model: str = MODEL) -> dict:
    params = {
        "model": model,
        "max_tokens": 50,
        "messages": [{"role": "user", "content": text}],
        "output_config": {"format": {"type": "json_schema", "schema": schema}},
    }
    answer = default_responder(params)
    assert isinstance(answer, dict)
    return answer


@pytest.fixture(scope="module")
def tweets() -> list[tuple[str, str]]:
    with open(TWEETS, encoding="utf-8") as f:
        return [(row["text"], row["label_name"]) for row in csv.DictReader(f)]


def _judged(tweets: list[tuple[str, str]], model: str) -> list[tuple[float, bool]]:
    schema = _schema({"type": "number", "minimum": 0, "maximum": 1})
    out = []
    for text, gold in tweets:
        answer = _ask(PROMPT.format(text), schema, model)
        out.append((answer["confidence"], answer["label"] == gold))
    return out


def _accuracy(rows: list[tuple[float, bool]]) -> float:
    return sum(right for _, right in rows) / len(rows)


def test_confidence_is_a_number_in_0_1_the_same_for_the_same_request(client: anthropic.Anthropic) -> None:
    schema = _schema({"type": "number", "minimum": 0, "maximum": 1})
    message = client.messages.create(
        model=MODEL,
        max_tokens=50,
        messages=[{"role": "user", "content": PROMPT.format("I love it, best day ever!")}],
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )
    answer = _ask(PROMPT.format("I love it, best day ever!"), schema)
    assert message.content[0].text == f'{{"label":"positive","confidence":{answer["confidence"]}}}'
    assert 0 <= answer["confidence"] <= 1 and round(answer["confidence"], 2) == answer["confidence"]


def test_a_percentage_is_the_same_confidence_times_100() -> None:
    for text in ("I love it, best day ever!", "The meeting is on Tuesday", "worst service, broken again"):
        number = _ask(text, _schema({"type": "number"}))["confidence"]
        percent = _ask(text, _schema({"type": "integer", "minimum": 0, "maximum": 100}))["confidence"]
        assert isinstance(percent, int) and percent == round(number * 100)


def test_a_confidence_that_is_not_a_number_is_answered_as_before() -> None:
    answer = _ask("I love it", _schema({"type": "string", "maxLength": 12}))
    assert isinstance(answer["confidence"], str) and len(answer["confidence"]) <= 12


def test_confidence_is_informative_but_imperfect_on_the_shipped_tweets(tweets: list[tuple[str, str]]) -> None:
    for model in ("claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-7"):
        rows = _judged(tweets, model)
        sure = [r for r in rows if r[0] >= 0.8]
        unsure = [r for r in rows if r[0] < 0.8]
        assert len(sure) > 200 and len(unsure) > 200
        assert _accuracy(sure) > _accuracy(unsure) + 0.1  # more often right when sure …
        assert not all(right for _, right in sure)  # … but some sure answers are wrong
        assert any(right for c, right in unsure if c < 0.4)  # and some unsure ones right


def test_bigger_models_are_right_more_often(tweets: list[tuple[str, str]]) -> None:
    accuracy = [_accuracy(_judged(tweets, m)) for m in ("claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-7")]
    assert accuracy == sorted(accuracy) and accuracy[0] < accuracy[2]


def test_a_haiku_to_sonnet_cascade_matches_sonnet_for_a_share_of_its_calls(tweets: list[tuple[str, str]]) -> None:
    haiku, sonnet = _judged(tweets, "claude-haiku-4-5"), _judged(tweets, "claude-sonnet-4-6")
    found = []
    for t in (0.3, 0.4, 0.5):
        kept = [(c >= t, h_right, s_right) for (c, h_right), (_, s_right) in zip(haiku, sonnet, strict=True)]
        escalated = sum(not keep for keep, _, _ in kept) / len(kept)
        accuracy = sum(h if keep else s for keep, h, s in kept) / len(kept)
        found.append((accuracy, escalated))
    # Haiku's price is a third of sonnet's: escalating under 40% costs clearly less than sonnet.
    assert any(acc >= _accuracy(sonnet) and escalated < 0.4 for acc, escalated in found)


def test_a_guess_is_less_sure_than_an_answer_from_evidence() -> None:
    clear = ["I love it, amazing!", "Terrible, awful service", "Best concert ever, thank you!", "I hate this, worst"]
    vague = ["The meeting is on Tuesday", "Flight 22 lands at 5", "He said it will be in May", "Page two of four"]
    schema = _schema({"type": "number"}, ["positive", "negative"])  # no neutral: no evidence is a guess

    def mean(texts: list[str]) -> float:
        return sum(_ask(t, schema, "claude-opus-4-7")["confidence"] for t in texts) / len(texts)

    assert mean(clear) > 0.75 > 0.6 > mean(vague)


def test_labels_that_do_not_follow_from_the_text_are_guesses() -> None:
    schema = _schema({"type": "number"}, ["billing", "shipping", "returns", "other"])
    values = [_ask(f"Ticket {i}: where is my parcel?", schema, "claude-opus-4-7")["confidence"] for i in range(50)]
    assert sum(values) / len(values) < 0.4
