"""batchkit's realtime sender vs the common asyncio pattern, on the same rate limits.

The simulator runs in its own process (``python -m batchkit.simulator``) at ``--time-scale 1``
with a latency model and per-minute limits on requests, input tokens and output tokens, set so
that a few thousand requests take about half a minute. Each client gets a fresh simulator (the
buckets start full for both). Measured in one run and printed side by side:

1. **batchkit** — :class:`batchkit.backends.sender.RealtimeSender` (buckets reserved and
   reconciled, re-synced from the ``anthropic-ratelimit-*`` headers, global pause on 429,
   gentle start, its own bounded retries);
2. **asyncio pattern** — ``AsyncAnthropic`` + ``asyncio.Semaphore(50)`` + ``asyncio.gather``,
   SDK default retries (2, honouring ``retry-after``), the way most tutorials show it.

For each: wall time, answers per second, 429s (counted by the simulator), failed rows, CPU per
request — the client's (its whole process: every thread, from the first request to the decoded
answers) and the simulator's (its process, from ``/_sim/stats``), in µs — and the
use of each limit — what was used over what the limit allowed in that time (a bucket holds one
minute's worth at the start and refills continuously: ``limit + limit/60 × seconds``). The
binding limit is the one used most; the target for batchkit is ≥ 90 % of it with zero failed
rows and 429s on ≤ 1 % of requests.

Usage (from the repository root, with it on ``PYTHONPATH``): ``python bench/bench_realtime.py
[--requests 3000] [--rpm 4000] [--itpm 300000] [--otpm 23000] [--latency 0.25,0.005,0.3]
[--skip-asyncio]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

import msgspec

from batchkit.backends.sender import RealtimeSender
from batchkit.core.results import parse_result_stream
from batchkit.simulator import spawn

MODEL = "claude-haiku-4-5"
MAX_TOKENS = 64


def params(i: int) -> dict:
    return {
        "model": MODEL,
        "max_tokens": MAX_TOKENS,
        "messages": [
            {
                "role": "user",
                "content": (
                    f"Summarise customer review number {i}: the blender arrived late but works great and is "
                    "quiet, although the lid cracked after a week."
                ),
            }
        ],
    }


def simulator(args: argparse.Namespace):
    return spawn(
        time_scale=1.0,
        seed=11,
        extra_args=[
            "--rpm",
            str(args.rpm),
            "--itpm",
            str(args.itpm),
            "--otpm",
            str(args.otpm),
            "--latency",
            args.latency,
        ],
    )


def run_batchkit(base_url: str, n: int) -> dict:
    import anthropic

    client = anthropic.Anthropic(base_url=base_url, api_key="sk-sim-bench", max_retries=0)
    requests = [(f"r{i}", msgspec.json.encode(params(i))) for i in range(n)]
    chunks: list[bytes] = []
    sender = RealtimeSender(client)
    cpu, start = time.process_time(), time.perf_counter()
    progress = sender.send(requests, chunks.append)
    wall = time.perf_counter() - start
    cols = parse_result_stream(chunks)
    cpu = time.process_time() - cpu
    ok = [i for i in range(len(cols)) if cols.status(i) in ("succeeded", "truncated")]
    usage = cols.usage[ok]
    return {
        "wall": wall,
        "cpu": cpu,
        "answered": len(ok),
        "failed": n - len(ok),
        "client_429": progress.rate_limited,
        "input": int(usage[:, 0].sum() + usage[:, 2].sum() + usage[:, 3].sum()),
        "output": int(usage[:, 1].sum()),
        "requests": progress.succeeded + progress.retries,
    }


def run_asyncio_pattern(base_url: str, n: int) -> dict:
    import anthropic

    async def main() -> tuple[list, float, float]:
        client = anthropic.AsyncAnthropic(base_url=base_url, api_key="sk-sim-bench")  # default retries
        semaphore = asyncio.Semaphore(50)

        async def one(i: int):
            async with semaphore:
                return await client.messages.create(**params(i))

        cpu, start = time.process_time(), time.perf_counter()
        results = await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu
        await client.close()
        return results, wall, cpu

    results, wall, cpu = asyncio.run(main())
    ok = [r for r in results if not isinstance(r, BaseException)]
    return {
        "wall": wall,
        "cpu": cpu,
        "answered": len(ok),
        "failed": n - len(ok),
        "client_429": None,
        "input": sum(r.usage.input_tokens + (r.usage.cache_creation_input_tokens or 0) for r in ok),
        "output": sum(r.usage.output_tokens for r in ok),
        "requests": None,
    }


def use(used: float, limit: float, seconds: float) -> float:
    """Share of what a per-minute ``limit`` allowed in ``seconds`` (a full bucket at the start)."""
    return used / (limit + limit / 60.0 * seconds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rpm", type=int, default=4000)
    parser.add_argument("--itpm", type=int, default=300_000)
    parser.add_argument("--otpm", type=int, default=23_000)
    parser.add_argument("--latency", default="0.25,0.005,0.3", help="FIRST_TOKEN,PER_TOKEN,JITTER (s)")
    parser.add_argument("--skip-asyncio", action="store_true", help="measure batchkit only")
    args = parser.parse_args()
    n = args.requests
    print(
        f"requests: {n:,}  limits per minute: {args.rpm:,} requests, {args.itpm:,} input tokens, "
        f"{args.otpm:,} output tokens  latency: {args.latency}  cpus: {os.cpu_count()}  "
        f"python {sys.version.split()[0]}"
    )
    rows = []
    runs = [("batchkit RealtimeSender", run_batchkit)]
    if not args.skip_asyncio:
        runs.append(("asyncio Semaphore(50)+gather", run_asyncio_pattern))
    for name, run in runs:
        with simulator(args) as proc:
            sim_cpu = proc.stats(catch_up=False)["cpu_seconds"]
            result = run(proc.base_url, n)
            stats = proc.stats()
        result["sim_cpu"] = stats["cpu_seconds"] - sim_cpu
        result["server_429"] = stats["faults"].get("rate_limit", 0)
        result["calls"] = stats["messages.create"]
        wall = result["wall"]
        shares = {
            "requests": use(result["answered"], args.rpm, wall),
            "input tokens": use(result["input"], args.itpm, wall),
            "output tokens": use(result["output"], args.otpm, wall),
        }
        binding = max(shares, key=lambda k: shares[k])
        rows.append((name, result, shares, binding))

    print()
    print(
        f"{'':30}{'wall':>8}{'answers/s':>11}{'calls':>8}{'429s':>7}{'429 %':>7}{'failed':>8}"
        f"{'client µs/req':>15}{'sim µs/req':>12}{'  use of each limit (requests / input / output)':>48}"
    )
    for name, r, shares, binding in rows:
        share = " / ".join(f"{v:5.1%}" for v in shares.values())
        print(
            f"{name:30}{r['wall']:7.1f}s{r['answered'] / r['wall']:11.1f}{r['calls']:8,}{r['server_429']:7,}"
            f"{r['server_429'] / n:7.1%}{r['failed']:8,}{r['cpu'] / n * 1e6:15,.0f}{r['sim_cpu'] / n * 1e6:12,.0f}"
            f"   {share}  (binding: {binding})"
        )
    if len(rows) == 2:
        (_, bk, *_), (_, aio, *_) = rows
        print(
            f"\nclient CPU per request: batchkit {bk['cpu'] / n * 1e6:,.0f} µs, asyncio pattern "
            f"{aio['cpu'] / n * 1e6:,.0f} µs ({aio['cpu'] / bk['cpu']:.1f}x batchkit's; per answered "
            f"request {bk['cpu'] / max(bk['answered'], 1) * 1e6:,.0f} µs and "
            f"{aio['cpu'] / max(aio['answered'], 1) * 1e6:,.0f} µs)"
        )
    name, r, shares, binding = rows[0]
    ok = shares[binding] >= 0.9 and r["failed"] == 0 and r["server_429"] <= 0.01 * n
    print()
    print(
        f"batchkit: {shares[binding]:.1%} of the binding limit ({binding}), {r['failed']} failed rows, "
        f"429s on {r['server_429'] / n:.2%} of requests   (targets: >= 90 %, 0, <= 1 %)  "
        f"{'PASS' if ok else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
