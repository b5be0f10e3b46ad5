"""Benchmark the simulator in a separate process: batch create and results streaming.

Starts the simulator with ``spawn`` and ``Processing.instant()``, then for each of N batches
of 100,000 requests: sends the pre-serialized create body through the SDK's generic
``client.post``, retrieves it (which waits for its processing: a served simulator starts on
a batch as soon as it is created), streams its results with
``client.messages.batches.with_streaming_response.results(id)`` line by line, and deletes it.
Prints requests/second for each phase (wall time seen by the client) and the simulator's own
CPU seconds per phase (from ``/_sim/stats``' ``cpu_seconds``, the child's process time).

    python bench/bench_simulator.py            # 10 batches × 100,000 = 1,000,000 requests
    python bench/bench_simulator.py --batches 2
    python bench/bench_simulator.py --batches 2 --unique   # every text new to the simulator

By default each request's text is one of four reviews tagged with its order number, which the
simulator's scorer does not read, so it scores each review once and remembers it (as it does a
data set's repeated texts). ``--unique`` tags each review with a word of its own instead: every
text is read afresh, the cost of a data set whose texts never repeat.
"""

from __future__ import annotations

import argparse
import time

import msgspec
from anthropic.types.messages import MessageBatch

from batchkit.simulator import Processing, spawn

REVIEWS = (
    "The blender works great and was delivered fast",
    "Terrible quality, it broke after two days",
    "It is fine, nothing special about it",
    "Love the colour, would recommend to friends",
)


def word(i: int) -> str:
    """A word of its own for ``i``: letters only, so the scorer reads it and no two texts match."""
    letters = ""
    while True:
        i, digit = divmod(i, 26)
        letters += chr(ord("a") + digit)
        if not i:
            return letters


def body(batch: int, n: int, unique: bool = False) -> bytes:
    return msgspec.json.encode(
        {
            "requests": [
                {
                    "custom_id": f"b{batch}-row-{i:07d}",
                    "params": {
                        "model": "claude-haiku-4-5",
                        "max_tokens": 20,
                        "messages": [
                            {
                                "role": "user",
                                "content": "Classify the sentiment of this review: "
                                + REVIEWS[i % 4]
                                + (f" (order {word(batch * n + i)})" if unique else f" (order {i})"),
                            }
                        ],
                    },
                }
                for i in range(n)
            ]
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--unique", action="store_true", help="every text new to the simulator")
    args = parser.parse_args()

    bodies = [body(b, args.size, args.unique) for b in range(args.batches)]
    total = args.batches * args.size
    texts = "every text new" if args.unique else "four reviews, each tagged with its order number"
    print(f"{args.batches} batches × {args.size:,} requests ({texts}), body {len(bodies[0]) / 1e6:.1f} MB each")
    phases = {"create": 0.0, "process": 0.0, "stream": 0.0}
    cpu = dict.fromkeys(phases, 0.0)
    with spawn(port=0, processing=Processing.instant()) as proc:
        client = proc.client(max_retries=0, timeout=600)
        cpu_at = proc.stats(catch_up=False)["cpu_seconds"]

        def lap(phase: str, started: float) -> None:
            nonlocal cpu_at
            phases[phase] += time.perf_counter() - started
            now = proc.stats(catch_up=False)["cpu_seconds"]
            cpu[phase] += now - cpu_at
            cpu_at = now

        lines = 0
        for data in bodies:
            started = time.perf_counter()
            batch = client.post("/v1/messages/batches", content=data, cast_to=MessageBatch)
            lap("create", started)
            started = time.perf_counter()
            assert client.messages.batches.retrieve(batch.id).processing_status == "ended"
            lap("process", started)
            started = time.perf_counter()
            with client.messages.batches.with_streaming_response.results(batch.id) as response:
                for _line in response.iter_lines():
                    lines += 1
            lap("stream", started)
            client.messages.batches.delete(batch.id)
        stats = proc.stats()
        client.close()
    assert lines == total and stats["requests_processed"] == total
    for phase, seconds in phases.items():
        print(
            f"{phase:8s} {total / seconds:>12,.0f} requests/s wall   "
            f"simulator CPU {cpu[phase]:6.2f} s ({cpu[phase] / total * 1e6:5.1f} µs/request)"
        )
    all_cpu = sum(cpu.values())
    print(f"total    simulator CPU {all_cpu:.2f} s for {total:,} requests ({all_cpu / total * 1e6:.1f} µs/request)")


if __name__ == "__main__":
    main()
