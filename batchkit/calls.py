"""From the arguments of a ``df.claude`` call to a planned job — or to its cost estimate.

:func:`prepare` does everything that needs neither network nor store: it checks the
arguments, lays out prompt caching, renders one request per row and keys them. Then
:func:`submit` checks the budget and opens the job, and :func:`estimate` prices it. Every
problem with a call surfaces here, before anything is paid.

Prompt caching (``cache=``):

* ``"auto"`` (default): if the part every request shares — the system prompt plus the
  prompt's text before its first ``{placeholder}`` — reaches the model's minimum cacheable
  length, that shared text becomes its own content block with a ``cache_control`` breakpoint
  (TTL ``cache_ttl``, 1 h by default since batches can run longer than 5 minutes). Below the
  minimum nothing is marked (the API would not cache it and the marker changes nothing).
* ``"prime"``: the same, and a one-request batch runs first so that the prefix is in the
  cache before the rest are created; without it, requests processed concurrently at the
  start of a batch all miss.
* ``False``: never mark.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anthropic
import pandas as pd

from . import _json, backend
from .errors import ConfigurationError, RequestTooLargeError, UnknownModelError
from .jobs import Job, open_job
from .pricing import (
    CostEstimate,
    estimate_cost,
    estimate_request_tokens,
    estimate_tokens,
    load_prices,
    shared_prefix_tokens,
)
from .requests import (
    MAX_BATCH_BYTES,
    MAX_BATCH_REQUESTS,
    Plan,
    Rendered,
    RequestTemplate,
    build_template,
    parse_prompt,
    plan_requests,
    render_prompts,
)
from .store import Store, default_store_path

__all__ = ["Call", "estimate", "prepare", "submit"]

CACHE_MODES = ("auto", "prime", False)
PRIME_HIT_RATE = (0.9, 1.0)
"""Hit rate a primed batch can expect: every request after the primer reads the prefix."""
AUTO_HIT_RATE = (0.3, 0.98)
"""Best-effort hit rate without priming (the docs quote roughly 30%–98%)."""
OFFLINE_SAMPLE = 5000
"""Requests whose tokens are counted offline; the total is scaled from them."""


@dataclass
class Call:
    """A call, rendered and keyed, not yet written down or sent."""

    frame: pd.DataFrame
    template: RequestTemplate
    plan: Plan
    kind: str
    output: str
    spec: dict[str, Any]
    cache: str | bool
    """The caching mode asked for."""
    cached: bool
    """Whether requests carry a cache breakpoint (the shared prefix is long enough)."""

    @property
    def model(self) -> str:
        return self.template.model


def prepare(
    frame: pd.DataFrame,
    prompt: str | Callable[[pd.Series], str | None],
    *,
    output: str,
    model: str,
    max_tokens: int,
    system: str | Sequence[Mapping[str, Any]] | None = None,
    stop_sequences: Sequence[str] | None = None,
    poll_interval: float | None = None,
    chunk_size: int | None = None,
    chunk_bytes: int | None = None,
    max_retries: int = 2,
    cache: str | bool = "auto",
    cache_ttl: str = "1h",
    prices: Any = None,
    positional: Hashable = None,
    kind: str = "text",
    extra_spec: Mapping[str, Any] | None = None,
    **params: Any,
) -> Call:
    """Check, render and key a call. Pure: no network, no store."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"expected a DataFrame, not {type(frame).__name__}")
    if not isinstance(output, str) or not output:
        raise ConfigurationError(f"output must be a non-empty column name, not {output!r}")
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ConfigurationError(f"max_retries must be a whole number ≥ 0, not {max_retries!r}")
    if cache not in CACHE_MODES:
        raise ConfigurationError(f"cache must be 'auto', 'prime' or False, not {cache!r}")
    if cache_ttl not in ("5m", "1h"):
        raise ConfigurationError(f"cache_ttl must be '5m' or '1h', not {cache_ttl!r}")
    if poll_interval is not None and not poll_interval > 0:
        raise ConfigurationError(f"poll_interval must be a number of seconds > 0, not {poll_interval!r}")
    max_requests = chunk_size or MAX_BATCH_REQUESTS
    max_bytes = chunk_bytes or MAX_BATCH_BYTES
    if not isinstance(max_requests, int) or not 1 <= max_requests <= MAX_BATCH_REQUESTS:
        raise ConfigurationError(f"chunk_size must be a whole number from 1 to 100,000, not {chunk_size!r}")
    if not isinstance(max_bytes, int) or not 1000 <= max_bytes <= MAX_BATCH_BYTES:
        raise ConfigurationError(f"chunk_bytes must be from 1,000 to 256,000,000, not {chunk_bytes!r}")

    # Checked once up front (model, max_tokens, params) so bad input fails before rendering.
    build_template(model=model, max_tokens=max_tokens, system=system, stop_sequences=stop_sequences, **params)
    rendered = render_prompts(frame, prompt, positional=positional)
    content, system, rendered, cached = _cache_layout(
        cache, cache_ttl, prompt, rendered, frame, positional, system, params.get("tools"), model, prices
    )
    template = build_template(
        model=model, max_tokens=max_tokens, system=system, stop_sequences=stop_sequences,
        content=content, **params,
    )
    plan = plan_requests(rendered, template)
    _check_sizes(plan, max_bytes)
    spec = {
        "prompt": prompt if isinstance(prompt, str) else getattr(prompt, "__name__", "<callable>"),
        "max_tokens": max_tokens,
        "max_retries": max_retries,
        "poll_interval": poll_interval,
        "chunk_size": max_requests,
        "chunk_bytes": max_bytes,
        "cache": cache if cached else False,
        "cache_ttl": cache_ttl,
        **(extra_spec or {}),
    }
    return Call(frame, template, plan, kind, output, spec, cache, cached)


def _cache_layout(
    cache: str | bool,
    ttl: str,
    prompt: str | Callable[..., Any],
    rendered: Rendered,
    frame: pd.DataFrame,
    positional: Hashable,
    system: Any,
    tools: Any,
    model: str,
    prices: Any,
) -> tuple[Callable[[str], Any] | None, Any, Rendered, bool]:
    """Where the cache breakpoint goes: (user content builder, system, row texts, marked?).

    The shared lead text of the prompt becomes its own marked block and the rows keep only what
    follows it; with no lead, the last system block is marked. Nothing changes below the
    model's minimum cacheable length (or for a model with no known minimum).
    """
    if not cache:
        return None, system, rendered, False
    lead = _shared_lead(prompt, rendered, frame, positional)
    minimum = _min_cacheable(model, prices)
    if minimum is None or _shared_tokens(system, tools, lead) < minimum:
        return None, system, rendered, False
    marker = {"type": "ephemeral", "ttl": ttl}
    if not lead:
        if not system:  # only tools are shared: mark those yourself with cache_control
            return None, system, rendered, False
        return None, _mark_system(system, marker), rendered, True

    def content(text: str) -> list[dict[str, Any]]:
        return [{"type": "text", "text": lead, "cache_control": marker}, {"type": "text", "text": text}]

    cut = len(lead)
    return content, system, Rendered([t[cut:] if t is not None else None for t in rendered.texts], rendered.skipped), True


def _shared_lead(
    prompt: str | Callable[..., Any], rendered: Rendered, frame: pd.DataFrame, positional: Hashable
) -> str:
    """The text every rendered prompt starts with, ending at a word boundary."""
    if isinstance(prompt, str):
        parsed = parse_prompt(prompt, list(frame.columns), positional=positional)
        return parsed.literals[0] if parsed.fields else ""
    texts = [t for t in rendered.texts if t is not None]
    if len(texts) < 2:
        return ""
    common = os.path.commonprefix(texts)
    cut = max(common.rfind("\n"), common.rfind(" "))
    return common[: cut + 1] if cut >= 0 else ""


def _shared_tokens(system: Any, tools: Any, lead: str) -> int:
    """Offline tokens of the prefix every request shares (tools → system → lead text)."""
    tokens = sum(estimate_tokens(_json.dumps(t).decode()) for t in tools or ())
    if isinstance(system, str):
        tokens += estimate_tokens(system)
    elif system:
        tokens += sum(estimate_tokens(str(b.get("text", ""))) for b in system)
    if lead:
        tokens += 4 + estimate_tokens(lead)  # the user message's own overhead, as the API counts it
    return tokens


def _min_cacheable(model: str, prices: Any) -> int | None:
    try:
        return load_prices(prices).get(model).min_cacheable_tokens
    except UnknownModelError:
        return None  # a model we cannot price: leave its requests unmarked


def _mark_system(system: Any, marker: dict[str, str]) -> list[dict[str, Any]]:
    blocks = [{"type": "text", "text": system}] if isinstance(system, str) else [dict(b) for b in system]
    blocks[-1]["cache_control"] = marker
    return blocks


def _check_sizes(plan: Plan, max_bytes: int) -> None:
    """Refuse a row whose request alone cannot fit in a batch, naming the row."""
    limit = max_bytes - len(b'{"requests":[]}') - 1
    if not plan.lines or max(map(len, plan.lines.values())) <= limit:
        return
    for key, line in plan.lines.items():
        if len(line) > limit:
            row = plan.row_keys.index(key)
            raise RequestTooLargeError(
                f"row {row}'s request is {len(line):,} bytes, more than a whole batch may be "
                f"({max_bytes:,} bytes). Shorten that row's text or split it.",
                row=row,
                size=len(line),
            )


# --------------------------------------------------------------------------- submit / estimate


def submit(
    call: Call,
    *,
    client: anthropic.Anthropic | None = None,
    store: Store | str | os.PathLike[str] | None = None,
    max_cost: float | None = None,
    prices: Any = None,
) -> Job:
    """Check the budget, write the job down and start it."""
    # Nothing to send (empty frame, every row skipped) needs no client or key. The default store
    # depends on what the client talks to (asked once per client): the simulator's is its own.
    resolved_client = backend.resolve_client(client) if call.plan.lines else client
    resolved_store = Store.resolve(store if store is not None else default_store_path(resolved_client))
    if resolved_client is not None:
        resolved_store.claim_backend(backend.api_name(resolved_client))
    mode = run_mode(call)
    try:
        guess = estimate(
            call, client=resolved_client if max_cost is not None else None, store=resolved_store,
            prices=prices, count=max_cost is not None,
        )
    except UnknownModelError:
        if max_cost is not None:
            raise
    else:
        if max_cost is not None:
            guess.check_budget(max_cost, mode=mode)
        figures = guess[mode]
        call.spec["estimate"] = {
            "mode": mode, "low": figures.low, "typical": figures.typical, "high": figures.high,
            "upper_bound": figures.upper_bound, "token_source": guess.token_source,
        }
    return open_job(
        resolved_store, resolved_client, call.frame, call.plan, call.template,
        kind=call.kind, output=call.output, spec=call.spec,
    )


def run_mode(call: Call) -> str:
    """The pricing mode the call will actually run in."""
    return f"batch+{call.spec['cache_ttl']}" if call.cached else "batch"


def _countable(params: dict[str, Any]) -> dict[str, Any]:
    """A request's params as ``count_tokens`` takes them (it has no max_tokens and the like)."""
    allowed = ("messages", "model", "system", "tools", "tool_choice", "thinking", "output_config", "cache_control")
    return {k: v for k, v in params.items() if k in allowed}


def estimate(
    call: Call,
    *,
    client: anthropic.Anthropic | None = None,
    store: Store | str | os.PathLike[str] | None = None,
    typical_output_tokens: int | None = None,
    hit_rate: float | tuple[float, float] | None = None,
    sample: int = 20,
    prices: Any = None,
    count: bool = True,
) -> CostEstimate:
    """Price a call before it runs.

    Input tokens come from the ``count_tokens`` endpoint on a random sample of up to
    ``sample`` requests, scaled to all of them, when a client is available (counting is
    free) and ``count`` is true; otherwise from the offline estimate. The estimate says which.
    """
    resolved_store = Store.resolve(store)
    plan = call.plan
    answered = resolved_store.answered(plan.lines) if plan.lines else set()
    to_send = [k for k in plan.lines if k not in answered]
    if not count:
        client = None
    elif client is None:
        client = backend.get_default_client()
        if client is None and (os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("ANTHROPIC_AUTH_TOKEN")):
            client = backend.resolve_client(None)
    source = "offline"
    input_tokens = 0
    if to_send and client is not None:
        picked = random.Random(0).sample(to_send, min(sample, len(to_send)))
        counted = [
            client.messages.count_tokens(**_countable(_json.loads(plan.body(key)))).input_tokens
            for key in picked
        ]
        input_tokens = round(sum(counted) / len(counted) * len(to_send))
        source = "count_tokens"
    elif to_send:
        # Every request when there are few (exact), else a sample scaled up.
        picked = to_send if len(to_send) <= OFFLINE_SAMPLE else random.Random(0).sample(to_send, OFFLINE_SAMPLE // 5)
        counted = [estimate_request_tokens(_json.loads(plan.body(key))) for key in picked]
        input_tokens = round(sum(counted) / len(counted) * len(to_send))
    prefix = 0
    if call.cached and to_send:
        prefix = shared_prefix_tokens(_json.loads(plan.body(to_send[0])))
        prefix = min(prefix, input_tokens // len(to_send))
    if hit_rate is None:
        hit_rate = PRIME_HIT_RATE if call.spec.get("cache") == "prime" else AUTO_HIT_RATE
    return estimate_cost(
        model=call.model,
        rows=len(call.plan.row_keys),
        rows_skipped=len(call.plan.skipped),
        unique_requests=len(plan.lines),
        already_answered=len(answered),
        input_tokens=input_tokens,
        max_tokens=int(call.spec["max_tokens"]),
        shared_prefix_tokens=prefix,
        typical_output_tokens=typical_output_tokens,
        token_source=source,
        hit_rate=hit_rate,
        prices=prices,
    )
