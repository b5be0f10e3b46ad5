"""A fingerprint of everything the simulator answers to a mixed set of requests.

Optimising the simulator must not change a byte of what it returns. This script sends the same
~2,000 requests — English and Korean sentiment, free text cut by ``max_tokens``, structured
output, tools (``tool`` and ``auto``), images, prompt caching (5m and 1h, with a cache miss
rate), thinking, stop sequences, system prompts, three models, invalid params — as three batches
(one with an ``anthropic-beta`` header), under two processing models, with and without request
faults, plus a share of them to ``/v1/messages`` plain and streamed, and prints a SHA-256 of
every result body, answer, event stream and the stats (wall-clock fields aside).

Ids are random per simulator (a nonce beside the seed, so that a restarted simulator never
hands out an id twice); this script alone pins the nonce so that two runs compare. Run it on
two checkouts and compare the last line::

    PYTHONPATH=/path/to/old python bench/sim_fingerprint.py /tmp/old.txt
    PYTHONPATH=.            python bench/sim_fingerprint.py /tmp/new.txt
    diff /tmp/old.txt /tmp/new.txt     # one line per body: shows which part changed
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import sys
import types
from pathlib import Path
from typing import Any

import msgspec
from PIL import Image

import batchkit.simulator._clock as sim_clock
from batchkit.simulator import Faults, Processing, SimConfig, Simulator

sim_clock.os = types.SimpleNamespace(urandom=lambda n: b"\0" * n)  # type: ignore[attr-defined]  # ids repeat, here only

ROOT = Path(__file__).resolve().parent.parent
MODEL = "claude-haiku-4-5"
SCHEMA = {
    "type": "object",
    "required": ["sentiment"],
    "properties": {
        "sentiment": {"enum": ["positive", "negative", "neutral"]},
        "topic": {"type": "string"},
        "score": {"type": "integer", "minimum": 1, "maximum": 5},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
}
RECORD = {"name": "record", "description": "record a sentiment", "input_schema": SCHEMA}
WEATHER = {
    "name": "get_weather",
    "description": "weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
LONG_SYSTEM = "You are a careful annotator. " * 400


def png(colour: tuple[int, int, int]) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (12, 9), colour).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def requests() -> list[dict]:
    with open(ROOT / "data" / "nsmc_sample.tsv", encoding="utf-8") as f:
        reviews = [row[1] for row in list(csv.reader(f, delimiter="\t"))[1:400]]
    with open(ROOT / "data" / "tweeteval_sentiment_val.csv", encoding="utf-8") as f:
        tweets = [next(iter(row.values())) for row in list(csv.DictReader(f))[:300]]
    out: list[dict] = []

    def add(params: dict[str, Any]) -> None:
        out.append({"custom_id": f"r{len(out)}", "params": {"model": MODEL, "max_tokens": 64, **params}})

    def user(content: Any) -> list[dict]:
        return [{"role": "user", "content": content}]

    for i, text in enumerate(reviews):
        add(
            {
                "messages": user(
                    f"Classify the sentiment of this movie review as positive or negative.\n\nReview: {text}"
                ),
                "max_tokens": 5,
            }
        )
        add({"messages": user(f"이 리뷰가 긍정인지 부정인지 답하세요: {text}")})
        if i % 4 == 0:
            add({"messages": user(f"Summarise this review in one sentence: {text}"), "max_tokens": 3 + i % 40})
    for i, text in enumerate(tweets):
        add(
            {
                "messages": user(f"Sentiment (positive, negative or neutral): {text}"),
                "model": ("claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-1")[i % 3],
            }
        )
        add({"messages": user(text), "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}})
        add({"messages": user("Tell me about " + text), "stop_sequences": ["e", "."], "system": "Be brief."})
        if i % 5 == 0:
            add({"messages": user(text), "tools": [RECORD], "tool_choice": {"type": "tool", "name": "record"}})
            add(
                {
                    "messages": user("What is the weather in Paris? " + text),
                    "tools": [WEATHER, RECORD],
                    "tool_choice": {"type": "auto"},
                }
            )
            add(
                {
                    "messages": user(
                        [
                            {"type": "text", "text": "Describe this image. " + text},
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/png",
                                    "data": png((i * 7 % 255, 40, 200)),
                                },
                            },
                        ]
                    )
                }
            )
            add(
                {
                    "system": [{"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral"}}],
                    "messages": user(text),
                }
            )
            add({"messages": user(text), "thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 2000})
            marked = {"type": "text", "text": text, "cache_control": {"type": "ephemeral", "ttl": "1h"}}
            add({"messages": user([marked]), "cache_control": {"type": "ephemeral"}, "system": LONG_SYSTEM})
    add({"messages": user("hi"), "max_tokens": 0})
    add({"messages": user("hi"), "max_tokens": 999_999})
    add({"messages": user("")})
    add({"messages": [{"role": "system", "content": "x"}]})
    add({"model": "claude-nope", "messages": user("x")})
    return out


def main() -> None:
    total = hashlib.sha256()
    parts: list[str] = []

    def update(tag: str, data: bytes) -> None:
        total.update(data)
        parts.append(f"{tag} {hashlib.sha256(data).hexdigest()[:16]}\n")

    body = requests()
    faulty = Faults(errored_rate={"api_error": 0.05, "overloaded_error": 0.03}, expired_rate=0.02)
    for faults in (Faults(), faulty):
        for processing in (Processing.instant(), Processing(fixed_latency=5, per_request=0.5, concurrency=50)):
            sim = Simulator(config=SimConfig(processing=processing, faults=faults, seed=7, cache_miss_rate=0.1))
            client = sim.client(max_retries=0)
            ids = []
            for k in range(3):
                headers = {"anthropic-beta": "output-300k-2026-03-24"} if k == 2 else {}
                batch = client.post(
                    "/v1/messages/batches", body={"requests": body}, cast_to=object, options={"headers": headers}
                )
                ids.append(batch["id"])  # type: ignore[index]
            sim.clock.advance(10**5)
            for batch_id in ids:
                with client.messages.batches.with_streaming_response.results(batch_id) as response:
                    update("batch", response.read())
            for item in body[::11]:
                try:
                    update(
                        "message", msgspec.json.encode(client.post("/v1/messages", body=item["params"], cast_to=object))
                    )
                except Exception as exc:
                    update("error", repr(exc).encode())
                try:
                    with client.messages.with_streaming_response.create(**item["params"], stream=True) as response:
                        update("stream", response.read())
                except Exception as exc:
                    update("error", repr(exc).encode())
            stats = sim.stats()
            for wall_clock in ("cpu_seconds", "uptime_seconds", "clock"):
                stats.pop(wall_clock)
            update("stats", msgspec.json.encode(stats))
            client.close()
            sim.close()
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text("".join(parts), encoding="utf-8")
    print(f"{len(body)} requests × 3 batches × 4 simulators: {total.hexdigest()}")


if __name__ == "__main__":
    main()
