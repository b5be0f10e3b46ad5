"""``python -m batchkit.simulator``: serve the simulator over HTTP until SIGINT/SIGTERM.

Prints exactly one line, ``batchkit simulator listening on http://127.0.0.1:PORT``, once it
accepts connections. ``batchkit sim`` calls :func:`main` with a parser of its own, which turns
every bad argument (a port outside 0–65535, a time scale that is not a finite number > 0, a
``--responder`` that does not import or is not a function, a port in use) into its one-line
``batchkit: …`` error; here they are argparse's usage errors (exit 2), never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import math
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Any

from ._config import Faults, Latency, Processing, RateLimits, SimConfig, SpendLimit
from ._server import READY_PREFIX, Server
from ._simulator import Simulator
from ._state import StateError

__all__ = ["build_parser", "config_from_args", "main"]


def _rates(text: str, key: Callable[[str], Any]) -> dict[Any, float]:
    out: dict[Any, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"expected NAME=RATE, got {part!r}")
        out[key(name.strip())] = float(value)
    return out


def _schedule(text: str) -> tuple:
    entries = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        try:
            target, nth, action = part.split(":", 2)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected TARGET:NTH:ACTION (e.g. batches.create:1:500), got {part!r}"
            ) from None
        nths = [int(n) for n in nth.split("/")]
        act: Any = int(action) if action.isdigit() else action
        entries.append((target.strip(), nths[0] if len(nths) == 1 else nths, act))
    return tuple(entries)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: pass 1–65535, or 0 for a free one")
    return port


def _time_scale(text: str) -> float:
    try:
        scale = float(text)
    except ValueError:
        scale = math.nan
    if not 0 < scale < math.inf:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time scale: pass a finite number > 0 of simulated seconds per wall second "
            "(1: real time, 60: a minute per second)"
        )
    return scale


def _retry_after(text: str) -> float | None:
    return None if text.lower() == "none" else float(text)


def _latency(text: str) -> Latency:
    if text.lower() in ("none", "instant", "0"):
        return Latency()
    if text.lower() == "typical":
        return Latency.typical()
    try:
        return Latency(*(float(x) for x in text.split(",")))
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(
            f"expected typical, none or FIRST_TOKEN,PER_TOKEN[,JITTER] (e.g. 0.5,0.01,0.2), got {text!r} ({exc})"
        ) from None


def _bursts(text: str) -> tuple[float, float]:
    period, sep, length = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected PERIOD:LENGTH in simulated seconds (e.g. 60:5), got {text!r}")
    return float(period), float(length)


def _limit(text: str) -> int | None:
    return None if text.lower() in ("none", "off") else int(text)


def build_parser(
    parser_class: type[argparse.ArgumentParser] = argparse.ArgumentParser,
    prog: str = "python -m batchkit.simulator",
) -> argparse.ArgumentParser:
    """The simulator's command line (``batchkit sim`` passes its own ``parser_class`` and ``prog``)."""
    parser = parser_class(
        prog=prog,
        description="Serve batchkit's simulator of the Anthropic API on loopback. Point any client "
        "at it with ANTHROPIC_BASE_URL=http://127.0.0.1:PORT and any ANTHROPIC_API_KEY.",
    )
    add = parser.add_argument
    add("--port", type=_port, default=8765, help="port to listen on; 0 picks a free one (default 8765)")
    add("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    add("--time-scale", type=_time_scale, default=1.0, help="simulated seconds per wall second (default 1)")
    add("--seed", type=int, default=0, help="seed for ids and fault draws (default 0)")
    add("--responder", help="module:function writing the answers (default: the built-in one)")
    add("--instant", action="store_true", help="batches end right after creation")
    add("--fixed-latency", type=float, help="simulated seconds before a batch's first requests start")
    add("--per-request", type=float, help="simulated seconds per request")
    add("--concurrency", type=int, help="requests of a batch processed at once")
    add("--cancel-latency", type=float, help="simulated seconds a cancel takes to settle")
    add(
        "--errored-rate",
        type=lambda t: _rates(t, str),
        default={},
        help="e.g. api_error=0.05,overloaded_error=0.02,invalid_request_error=0.01",
    )
    add("--expired-rate", type=float, default=0.0, help="share of batch requests that expire")
    add("--http-error-rate", type=lambda t: _rates(t, int), default={}, help="e.g. 429=0.05,500=0.01,529=0.01")
    add("--drop-results-rate", type=float, default=0.0, help="share of results downloads dropped mid-body")
    add("--slow", type=float, default=0.0, help="wall seconds added to every API response")
    add("--rpm", type=int, help="requests per minute allowed on /v1/messages (default 4000)")
    add(
        "--tpm",
        "--itpm",
        type=int,
        dest="tpm",
        help="input tokens per minute allowed on /v1/messages (default 2000000)",
    )
    add(
        "--otpm",
        type=_limit,
        default=400_000,
        help="output tokens per minute allowed on /v1/messages ('none' for no limit; default 400000)",
    )
    add("--no-rate-limits", action="store_true", help="no rate limits on /v1/messages (and no headers)")
    add(
        "--latency",
        type=_latency,
        default=Latency(),
        help="/v1/messages latency: typical, none (default) or FIRST_TOKEN,PER_TOKEN[,JITTER] in simulated seconds",
    )
    add(
        "--overloaded-bursts",
        type=_bursts,
        help="PERIOD:LENGTH: 529s on /v1/messages for LENGTH simulated seconds of every PERIOD",
    )
    add("--spend-limit-dollars", type=float, help="refuse /v1/messages once this many USD are spent")
    add("--spend-limit-requests", type=int, help="refuse /v1/messages after this many answers")
    add(
        "--spend-limit-kind",
        choices=("monthly", "workspace"),
        default="monthly",
        help="monthly: 429 enforced_spend_limit_reached; workspace: 400 usage limits (default monthly)",
    )
    add("--queue-limit", type=int, help="batch requests the workspace may have in the processing queue")
    add(
        "--retry-after",
        type=_retry_after,
        default=0.05,
        help="retry-after seconds on injected 429/5xx ('none' to omit; default 0.05)",
    )
    add(
        "--fault-schedule",
        type=_schedule,
        default=(),
        help="TARGET:NTH:ACTION;... e.g. 'batches.create:1:500;batches.results:2:drop;*:3/4:529;"
        "messages.create:5:midstream:529'",
    )
    add("--cache-miss-rate", type=float, default=0.0, help="extra share of cache lookups that miss")
    add(
        "--api-key",
        action="append",
        dest="api_keys",
        help="accept only this key (repeatable; default: any non-empty key)",
    )
    add("--allow-sampling-params", action="store_true", help="accept temperature/top_p/top_k on API version 2026-10-21")
    add("--max-batch-bytes", type=int, default=256_000_000, help="413 above this create body size")
    add(
        "--state",
        metavar="PATH",
        help="keep batches in this state file (SQLite, created if missing), "
        "so a simulator started again on it carries on with them (default: in memory only)",
    )
    return parser


def config_from_args(args: argparse.Namespace) -> SimConfig:
    base = Processing.instant() if args.instant else Processing()
    processing = Processing(
        fixed_latency=base.fixed_latency if args.fixed_latency is None else args.fixed_latency,
        per_request=base.per_request if args.per_request is None else args.per_request,
        concurrency=base.concurrency if args.concurrency is None else args.concurrency,
        cancel_latency=base.cancel_latency if args.cancel_latency is None else args.cancel_latency,
    )
    faults = Faults(
        errored_rate=args.errored_rate,
        expired_rate=args.expired_rate,
        http_error_rate=args.http_error_rate,
        drop_results_rate=args.drop_results_rate,
        slow=args.slow,
        rpm=args.rpm,
        tpm=args.tpm,
        retry_after=args.retry_after,
        schedule=args.fault_schedule,
        overloaded_bursts=args.overloaded_bursts,
    )
    limits = RateLimits.off() if args.no_rate_limits else RateLimits(output_tokens_per_minute=args.otpm)
    spend = None
    if args.spend_limit_dollars is not None or args.spend_limit_requests is not None:
        spend = SpendLimit(
            dollars=args.spend_limit_dollars, requests=args.spend_limit_requests, kind=args.spend_limit_kind
        )
    return SimConfig(
        time_scale=args.time_scale,
        seed=args.seed,
        processing=processing,
        faults=faults,
        api_keys=frozenset(args.api_keys) if args.api_keys else None,
        reject_sampling_params=not args.allow_sampling_params,
        cache_miss_rate=args.cache_miss_rate,
        max_batch_body_bytes=args.max_batch_bytes,
        latency=args.latency,
        rate_limits=limits,
        spend_limit=spend,
        max_queued_batch_requests=args.queue_limit,
    )


def load_responder(spec: str) -> Callable[..., Any]:
    """``"module:function"`` → the function.

    Raises:
        ValueError: ``spec`` is not ``module:function``, the module does not import, or it has
            no such function (the message names which, and the fix).
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"--responder must look like module:function (e.g. mymodule:answer), got {spec!r}")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(
            f"--responder {spec}: cannot import {module_name!r} ({exc}); check the name, and "
            "that its folder is on PYTHONPATH"
        ) from None
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ValueError(f"--responder {spec}: {module_name!r} has no {attr!r}; name a function it defines")
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"--responder {spec}: {attr!r} is not callable; name a function (params -> answer)")
    return target


def main(argv: Sequence[str] | None = None, *, parser: argparse.ArgumentParser | None = None) -> int:
    """Parse ``argv``, serve until SIGINT/SIGTERM, return the exit code.

    Every bad argument goes to ``parser.error`` (default: :func:`build_parser`'s), before the
    server starts.
    """
    parser = parser or build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
        responder = load_responder(args.responder) if args.responder else None
    except ValueError as exc:
        parser.error(str(exc))
    try:
        simulator = Simulator(config=config, responder=responder, state=args.state)
    except StateError as exc:
        parser.error(str(exc))
    try:
        server = Server(simulator, host=args.host, port=args.port)
    except ValueError as exc:
        simulator.close()
        parser.error(str(exc))
    except OSError as exc:
        simulator.close()
        parser.error(
            f"cannot listen on {args.host} port {args.port}: {exc.strerror or exc}; pass another "
            "--port (0 picks a free one)"
        )
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    print(f"{READY_PREFIX}{server.base_url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.close()
        simulator.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
