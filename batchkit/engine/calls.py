"""From the arguments of a ``df.claude`` call to a planned job — or to its cost estimate.

:func:`prepare` does everything that needs neither network nor store: it checks the
arguments, lays out prompt caching, renders one request per row and keys them. Then
:func:`submit` checks the budget and opens the job (:mod:`.start`), and :func:`estimate` prices
it (:mod:`.estimates`; with ``sample_answers=``, :mod:`.sampling`). Every problem with a call
surfaces here, before anything is paid.

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

import dataclasses
import os
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import anthropic
import pandas as pd

from batchkit.core import _json
from batchkit.core.columns import Table, as_table
from batchkit.core.options import JobSpec, Options
from batchkit.core.plan import Plan, build_template, plan_requests
from batchkit.core.render import Rendered, parse_prompt, render_prompts
from batchkit.core.structured import OutputSpec
from batchkit.costs.pricing import CostEstimate, estimate_tokens, load_prices
from batchkit.errors import (
    ColumnCollisionError,
    NotAFrameError,
    OptionTypeError,
    RequestTooLargeError,
    UnknownModelError,
    UnknownOptionError,
)
from batchkit.stores.store import Store

from .estimates import estimate_call
from .prepared import Call
from .sampling import estimate_on_sample

# The front ends' way in (tests/test_layout.py: every front end goes through this module):
# prepare and estimate are defined here, the rest where they live.
from .sendmode import pricing_mode
from .start import resolve, submit

__all__ = ["Call", "estimate", "prepare", "pricing_mode", "resolve", "submit"]


def prepare(
    table: pd.DataFrame | Mapping[Any, Any] | Table,
    prompt: str | Callable[[Any], Any],
    *,
    output: str,
    options: Options | None = None,
    positional: Hashable = None,
    kind: str = "text",
    output_spec: OutputSpec | None = None,
    **kwargs: Any,
) -> Call:
    """Check, render and key a call. Pure: no network, no store.

    ``table`` is a pandas DataFrame or a mapping of column name → values, all of one length
    (list, numpy array, pandas Series, pyarrow Array/ChunkedArray, polars Series; see
    :mod:`batchkit.core.columns`): the same rows give the same request keys whichever it is. A
    callable ``prompt`` gets each row as a mapping of column name → value (a ``pd.Series`` for
    a pandas frame).

    ``options`` are the call's checked options; without them the keyword arguments are turned
    into options here (``prepare(df, "{t}", output="o", model=..., max_tokens=5)``).
    ``positional`` is the column a bare ``{}`` reads (the Series accessor's own values);
    ``output_spec`` is the structured output of ``classify``/``extract``.

    Raises:
        NotAFrameError: ``table`` is no table (neither a DataFrame nor a mapping of columns).
        ColumnLengthError: the columns of a mapping are not all of one length.
        ColumnCollisionError: an output column is named like an input column.
        BatchkitError: any other problem with the call, before anything is sent.
    """
    if isinstance(table, pd.Series):
        raise NotAFrameError(
            "expected a table, not a pandas Series: use series.claude, or pass a DataFrame or {name: series}."
        )
    table = as_table(table)
    if options is None:
        options = Options.build(kwargs, verb="prepare")
    elif kwargs:
        raise UnknownOptionError(
            f"pass options= or keyword options, not both (got {sorted(kwargs)})", option=next(iter(kwargs))
        )
    if not isinstance(output, str) or not output:
        raise OptionTypeError(f"output must be a non-empty column name, not {output!r}", option="output")
    outputs = [column for column, _ in output_spec.columns] if output_spec is not None else [output]
    if positional is None:
        _check_collisions(table, outputs, kind)
    params, run = options.params, options.run
    rendered = render_prompts(table, prompt, positional=positional, media_errors=run.media_errors)
    content, system, rendered, cached = _cache_layout(
        run.cache,
        run.cache_ttl,
        prompt,
        rendered,
        table,
        positional,
        params.system,
        params.extra.get("tools"),
        params.model,
        run.prices,
    )
    template = build_template(**params.template_kwargs(system=system), content=content)
    plan = plan_requests(rendered, template)
    _check_sizes(plan, run.chunk_bytes)
    stored_run = run if cached or run.cache is False else dataclasses.replace(run, cache=False)
    spec = JobSpec(
        run=stored_run,
        prompt=prompt if isinstance(prompt, str) else getattr(prompt, "__name__", "<callable>"),
        max_tokens=params.max_tokens,
        output_spec=output_spec.to_json() if output_spec is not None else None,
    )
    return Call(table, template, plan, kind, output, spec, options, cached)


def _check_collisions(table: Table, outputs: Sequence[str], kind: str) -> None:
    """Refuse an output column that would silently replace an input column."""
    inputs = {str(c) for c in table.names}
    for column in outputs:
        if column in inputs:
            fix = {"extract": "choose another prefix= (e.g. prefix='llm_')"}.get(kind, "choose another output=")
            raise ColumnCollisionError(
                f"the output column {column!r} has the name of an input column, which it would replace. "
                f"{fix[0].upper() + fix[1:]}, or drop the column first: "
                f"df.drop(columns=[{column!r}]).claude.…",
                column=column,
            )


def _cache_layout(
    cache: str | bool,
    ttl: str,
    prompt: str | Callable[..., Any],
    rendered: Rendered,
    table: Table,
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
    # With images or PDFs the user content is the row's own blocks: only a system prompt is marked.
    lead = _shared_lead(prompt, rendered, table, positional) if rendered.contents is None else ""
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
    rows = Rendered([t[cut:] if t is not None else None for t in rendered.texts], rendered.skipped)
    return content, system, rows, True


def _shared_lead(prompt: str | Callable[..., Any], rendered: Rendered, table: Table, positional: Hashable) -> str:
    """The text every rendered prompt starts with, ending at a word boundary."""
    if isinstance(prompt, str):
        parsed = parse_prompt(prompt, table.names, positional=positional)
        return parsed.literals[0] if parsed.fields else ""
    texts = [t for t in rendered.texts if t is not None]
    if len(texts) < 2:
        return ""
    common = os.path.commonprefix(texts)  # noqa: RUF071 (texts, not paths: the common characters)
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
    blocks: list[dict[str, Any]] = (
        [{"type": "text", "text": system}] if isinstance(system, str) else [dict(b) for b in system]
    )
    blocks[-1]["cache_control"] = marker
    return blocks


def _check_sizes(plan: Plan, max_bytes: int) -> None:
    """Refuse a row whose request alone cannot fit in a batch, naming the row."""
    limit = max_bytes - len(b'{"requests":[]}') - 1
    if not plan.lines or max(plan.line_sizes()) <= limit:
        return
    for key, size in zip(plan.lines, plan.line_sizes(), strict=True):
        if size > limit:
            row = plan.row_keys.index(key)
            raise RequestTooLargeError(
                f"row {row}'s request is {size:,} bytes, more than a whole batch may be "
                f"({max_bytes:,} bytes). Shorten that row's text, send fewer or smaller images, or split it.",
                row=row,
                size=size,
            )


def estimate(
    call: Call,
    *,
    client: anthropic.Anthropic | None = None,
    store: Store | str | os.PathLike[str] | None = None,
    count: bool = True,
) -> CostEstimate:
    """Price a call before it runs (``typical_output_tokens``, ``hit_rate`` and ``sample`` come
    from ``call.options.estimate``; ``client`` and ``store`` default to the call's own).

    Input tokens come from the ``count_tokens`` endpoint on a sample of up to ``sample``
    requests, scaled to all of them, when a client is available (counting is free) and
    ``count`` is true; otherwise from the offline estimate
    (:func:`~batchkit.engine.estimates.estimate_call`).

    With ``sample_answers=N`` (in ``call.options.estimate``) N rows are answered first, in realtime
    and paid (:func:`~batchkit.engine.sampling.estimate_on_sample`), and the estimate is calibrated
    on them.
    """
    wanted = call.options.estimate.sample_answers
    if wanted is not None:
        return estimate_on_sample(call, wanted, client=client, store=store, count=count)
    return estimate_call(call, client=client, store=store, count=count)
