"""A call's options as one typed, validated value. Pure: no network, no store.

Every ``df.claude`` / ``series.claude`` call turns its keyword arguments into one :class:`Options`
— built once, checked here, before anything is rendered or sent::

    Options
    ├── params    RequestParams    what to send: model, max_tokens, system, stop_sequences and the
    │                              other Messages API params (checked against the SDK's request types)
    ├── run       RunOptions       how to run: client, store, poll_interval, chunk_size, chunk_bytes,
    │                              queue_limit, max_retries, max_invalid_retries, cache, cache_ttl, max_cost,
    │                              calibrate, prices, check_model, progress, mode, deadline
    └── estimate  EstimateOptions  what only ``estimate`` takes: typical_output_tokens, hit_rate, sample,
                                   sample_answers

Each option is declared once, as a dataclass field made by :func:`_option`: its default, its
check (which also normalises, e.g. a numpy integer to ``int``) and whether the job store keeps it.
A job stores a :class:`JobSpec` (the run options it needs after a restart, the prompt, ``max_tokens``,
the structured-output spec and the estimate) under the same JSON keys as earlier versions, and
:class:`batchkit.Job` reads it back typed with :meth:`JobSpec.from_json`: a spec written by an
older version loads unchanged, its missing keys taking today's defaults.

Adding an option — say ``mode="batch" | "realtime" | "auto"`` or ``deadline=`` — is one
``_option(...)`` field on :class:`RunOptions` with its check (``stored=True`` if a re-attached job
needs it) and a docstring under it: the docs' options reference is generated from these fields
(``docs/reference/options.md``), and a test fails for an option without one.

>>> Options.build({"model": "claude-haiku-4-5", "max_tokens": 20}).params.max_tokens
20
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import functools
import math
import numbers
import os
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from batchkit.costs.prices import OUTPUT_300K_BETA, OUTPUT_300K_TOKENS, PriceTable, load_prices
from batchkit.errors import (
    InvalidOptionError,
    OptionTypeError,
    UnknownModelError,
    UnknownOptionError,
)

from . import _json
from .modes import check_mode
from .plan import MAX_BATCH_BYTES, MAX_BATCH_REQUESTS

if TYPE_CHECKING:
    from .structured import OutputSpec

__all__ = [
    "CLASSIFY_MAX_TOKENS",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_MODEL",
    "MAX_SAMPLE_ANSWERS",
    "EstimateOptions",
    "JobSpec",
    "Options",
    "RequestParams",
    "RunOptions",
]

DEFAULT_MODEL = "claude-haiku-4-5"
"""The model used when a call names none: the cheapest current model that classifies well."""

DEFAULT_MAX_TOKENS = 1024
"""The output cap used when a call names none (``classify`` uses :data:`CLASSIFY_MAX_TOKENS`)."""

CLASSIFY_MAX_TOKENS = 256
"""The output cap of ``classify`` when the call names none: a label, or a few with reasons, is short."""

MIN_CHUNK_BYTES = 1000
SAMPLING_PARAMS = ("temperature", "top_p", "top_k")

_VERB_OF_ARGUMENT = {
    "labels": "classify",
    "multi": "classify",
    "reasoning": "classify",
    "schema": "extract",
    "prefix": "extract",
}
"""The one verb each verb-specific argument belongs to, to point a misplaced one at it."""
ACCESSOR_ARGUMENTS = ("output", *_VERB_OF_ARGUMENT)
"""Arguments the accessor methods take themselves (offered as suggestions for a typo)."""


# --------------------------------------------------------------------------- checks


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return f"the string {value!r:.60}"
    return f"{type(value).__name__} {value!r:.60}"


def _is_whole(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


Check = Callable[[str, Any], Any]


def _whole(minimum: int, maximum: int | None = None, *, fix: str = "") -> Check:
    """A whole number in ``[minimum, maximum]`` (numpy integers accepted, bools refused)."""
    span = f"from {minimum:,} to {maximum:,}" if maximum is not None else f"of at least {minimum:,}"

    def check(name: str, value: Any) -> int:
        if not _is_whole(value):
            raise OptionTypeError(
                f"{name} must be a whole number {span}, not {_describe(value)}. {fix}".strip(), option=name
            )
        if value < minimum or (maximum is not None and value > maximum):
            raise InvalidOptionError(f"{name} must be a whole number {span}, not {value!r}. {fix}".strip(), option=name)
        return int(value)

    return check


def _optional(check: Check) -> Check:
    def optional(name: str, value: Any) -> Any:
        return None if value is None else check(name, value)

    return optional


def _positive_seconds(name: str, value: Any) -> float:
    if not _is_number(value):
        raise OptionTypeError(
            f"{name} must be a number of seconds such as 30, not {_describe(value)}. "
            f"Leave it out for the default backoff.",
            option=name,
        )
    if not math.isfinite(value) or value <= 0:
        raise InvalidOptionError(
            f"{name} must be a finite number of seconds > 0, not {value!r}. Leave it out for the default "
            f"backoff (30 s → 10 min for the API, 0.1 → 1 s for a local simulator).",
            option=name,
        )
    return float(value)


def _dollars(name: str, value: Any) -> float:
    if not _is_number(value):
        raise OptionTypeError(
            f"{name} must be a number of US dollars such as 10.0, not {_describe(value)}. "
            f"Write {name}=10.0, not {name}='10'.",
            option=name,
        )
    if not math.isfinite(value) or value < 0:
        raise InvalidOptionError(
            f"{name} must be a finite number of US dollars >= 0, not {value!r}. Leave it out for no budget limit.",
            option=name,
        )
    return float(value)


MAX_DEADLINE = dt.timedelta(days=36_500)
"""The farthest ``deadline=`` taken: a hundred years. Farther is no deadline, and past the times a
job can store (``datetime`` ends in the year 9999; ``1e300`` seconds overflows every clock)."""


def _deadline(name: str, value: Any) -> float | dt.timedelta | dt.datetime:
    """Seconds from now (> 0), a ``timedelta`` (> 0) or a ``datetime`` in the future (naive: local
    time, made aware), at most :data:`MAX_DEADLINE` ahead. Where the clock is the simulator's, a
    datetime is checked again against it."""
    try:
        if isinstance(value, dt.datetime):
            value = value if value.tzinfo is not None else value.astimezone()
            ahead = (value - dt.datetime.now(dt.UTC)).total_seconds()
        elif isinstance(value, dt.timedelta):
            ahead = value.total_seconds()
        elif _is_number(value) and math.isfinite(value):
            value = ahead = float(value)
        else:
            raise OptionTypeError(
                f"{name} must be seconds from now (e.g. 3600), a datetime.timedelta or a datetime, not "
                f"{_describe(value)}. Leave it out to wait for the batches however long they take.",
                option=name,
            )
    except (OverflowError, ValueError) as exc:  # datetime.max as local time, or an offset past year 9999
        if isinstance(exc, InvalidOptionError):
            raise
        ahead = math.inf if value.year > dt.date.today().year else -math.inf
    if ahead > MAX_DEADLINE.total_seconds():
        raise InvalidOptionError(
            f"{name}={value!r:.60} is more than {MAX_DEADLINE.days // 365} years from now, farther than "
            f"any deadline batchkit can keep (a batch ends within 24 hours). Leave {name} out to wait for the "
            f"batches however long they take, or give a time within that.",
            option=name,
        )
    if ahead <= 0:
        when = f"{ahead:,.0f} s from now" if math.isfinite(ahead) else "long ago"
        raise InvalidOptionError(
            f"{name} has passed ({when}); give a time in the future, or leave it out to wait "
            f"for the batches however long they take.",
            option=name,
        )
    return value


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise OptionTypeError(f"{name} must be True or False, not {_describe(value)}", option=name)
    return bool(value)


def _one_of(*choices: Any, fix: str = "") -> Check:
    def check(name: str, value: Any) -> Any:
        for choice in choices:  # `is` for False, so that 0 and True are not taken for it
            if value is choice or (isinstance(choice, str) and isinstance(value, str) and value == choice):
                return choice
        shown = ", ".join(map(repr, choices))
        raise InvalidOptionError(f"{name} must be one of {shown}, not {_describe(value)}. {fix}".strip(), option=name)

    return check


def _client(name: str, value: Any) -> Any:
    if value is None:
        return None
    import anthropic

    if isinstance(value, anthropic.AsyncAnthropic):
        raise OptionTypeError(
            "client= is an AsyncAnthropic; batchkit drives the SDK from a worker thread with the sync "
            "client. Pass anthropic.Anthropic(...) with the same arguments.",
            option=name,
        )
    if not hasattr(value, "messages") or not hasattr(value, "post"):
        raise OptionTypeError(
            f"client= must be an anthropic.Anthropic client, not {_describe(value)}. Build one with "
            f"anthropic.Anthropic(...), or leave it out to use the default client.",
            option=name,
        )
    return value


def _store(name: str, value: Any) -> Any:
    from batchkit.stores.store import Store

    if value is None or isinstance(value, Store):
        return value
    if isinstance(value, (str, os.PathLike)) and str(value):
        return value
    raise OptionTypeError(
        f"store= must be the path of a job store file or a batchkit.Store, not {_describe(value)}. "
        f"Leave it out for the default store.",
        option=name,
    )


def _prices(name: str, value: Any) -> PriceTable:
    if value is not None and not isinstance(value, (PriceTable, Mapping, str, os.PathLike)):
        raise OptionTypeError(
            f"prices= must be a dict such as {{'my-model': {{'input': 3.0, 'output': 15.0}}}}, the path of "
            f"a JSON or TOML file holding one, or a PriceTable; not {_describe(value)}",
            option=name,
        )
    return load_prices(value)


def _hit_rate(name: str, value: Any) -> tuple[float, float] | None:
    if value is None:
        return None
    pair = (value, value) if _is_number(value) else value
    if not isinstance(pair, (tuple, list, np.ndarray)) or len(pair) != 2 or not all(map(_is_number, pair)):
        raise OptionTypeError(
            f"{name} must be a fraction such as 0.9 or a (low, high) pair such as (0.3, 0.98), not {_describe(value)}",
            option=name,
        )
    lo, hi = float(pair[0]), float(pair[1])
    if not 0.0 <= lo <= hi <= 1.0:  # NaN fails too
        raise InvalidOptionError(
            f"{name} must be a fraction or a (low, high) pair within 0..1 with low <= high, not {value!r}", option=name
        )
    return lo, hi


def _calibration_source(name: str, value: Any) -> Any:
    """A finished run to calibrate on: a :class:`batchkit.Job` or a :class:`batchkit.Comparison`."""
    if (
        value is None
        or callable(getattr(value, "job_for", None))
        or (hasattr(value, "outcomes") and hasattr(value, "spec"))
    ):
        return value
    raise OptionTypeError(
        f"{name}= takes a batchkit.Job or a batchkit.Comparison (a run of the same prompt whose answers "
        f"were measured), not {_describe(value)}. Run the call on a sample first, e.g. "
        f"job = df.sample(100).claude.submit(...); df.claude.estimate(..., {name}=job.wait()).",
        option=name,
    )


def _option(
    default: Any, check: Check, *, stored: bool | Literal["if_set"] = False, none_is_default: bool = True
) -> Any:
    """A dataclass field that is an option: its default, its check, whether a job stores it
    (``"if_set"``: only when given, so a spec without it reads as it did before the option), and
    whether ``None`` given for it means the default (else the check sees the ``None``)."""
    return field(default=default, metadata={"check": check, "stored": stored, "none_is_default": none_is_default})


class _Checked:
    """Runs every field's check once, at construction (``None`` means "the default")."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            check = f.metadata.get("check")
            if check is None:
                continue
            value = getattr(self, f.name)
            if value is None and f.default is not None and f.metadata["none_is_default"]:
                value = f.default
            object.__setattr__(self, f.name, check(f.name, value))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- how to run


@dataclass(frozen=True)
class RunOptions(_Checked):
    """How a call runs: where, how often, in what chunks, with what guards. Never sent to the API."""

    client: Any = _option(None, _client)  # noqa: RUF009 (_option is dataclasses.field with a check)
    """An ``anthropic.Anthropic`` (not ``AsyncAnthropic``); default: :func:`batchkit.set_default_client`
    (what :func:`batchkit.start_simulator` sets), else one built from ``ANTHROPIC_API_KEY`` and the environment."""
    store: Any = _option(None, _store)  # noqa: RUF009 (_option is dataclasses.field with a check)
    """The job store: a path or a :class:`batchkit.Store`; default: ``BATCHKIT_STORE``, else
    ``jobs.sqlite3`` (``simulator.sqlite3`` for the simulator) under ``$XDG_DATA_HOME/batchkit/``."""
    poll_interval: float | None = _option(None, _optional(_positive_seconds), stored=True)
    """Seconds (finite, > 0) between status checks; None: a backoff fit for the server, 30 → 60 → 120 →
    300 → 600 s for the real API, 0.1 → 1 s for the simulator."""
    chunk_size: int = _option(
        MAX_BATCH_REQUESTS,
        _whole(1, MAX_BATCH_REQUESTS, fix="Leave it out for the API's limit (100,000 requests per batch)."),
        stored=True,
    )
    """At most this many requests per batch (1–100,000; None: the API's limit; 0 is refused)."""
    chunk_bytes: int = _option(
        MAX_BATCH_BYTES,
        _whole(MIN_CHUNK_BYTES, MAX_BATCH_BYTES, fix="Leave it out for the API's limit (256 MB per batch)."),
        stored=True,
    )
    """At most this many bytes of serialized body per batch (1,000 B–256 MB; None: the API's limit)."""
    queue_limit: int | None = _option(
        None,
        _optional(
            _whole(
                1,
                fix="It is the number of batch requests your workspace's processing queue may hold "
                "(e.g. 200000); leave it out to learn it from the API.",
            )
        ),
        stored="if_set",
    )
    """Batch requests the workspace's processing queue may hold (a whole number ≥ 1): creates beyond
    it are held locally until batches end, and no batch is planned larger. None: learned from the
    first refusal."""
    media_errors: Literal["raise", "skip"] = _option(
        "raise", _one_of("raise", "skip", fix="Use 'raise' to stop before sending, 'skip' to leave such rows out.")
    )
    """An image or PDF cell the API would refuse (type, size, pixels, pages): ``"raise"`` a
    :class:`~batchkit.MediaError` before anything is sent, or ``"skip"`` its row with the reason."""
    max_retries: int = _option(2, _whole(0, fix="0 turns automatic retries off."), stored=True)
    """Automatic resubmissions of transiently failed (``api_error``, ``overloaded_error``,
    ``rate_limit_error``, ``timeout_error``) or expired rows."""
    max_invalid_retries: int = _option(1, _whole(0, fix="0 turns them off."), stored=True)
    """Resubmissions of structured answers that fail their schema (``classify``/``extract``)."""
    cache: Literal["auto", "prime", False] = _option(
        "auto",
        _one_of(
            "auto", "prime", False, fix="Use cache='auto' to cache a long shared prefix, cache=False to never mark one."
        ),
        stored=True,
    )
    """Prompt caching of the shared prefix: ``"auto"`` (mark it when it reaches the model's minimum
    cacheable length), ``"prime"`` (the same, and a one-request batch first writes the cache) or ``False``."""
    cache_ttl: Literal["5m", "1h"] = _option("1h", _one_of("5m", "1h"), stored=True)
    """The cache breakpoint's time to live: ``"5m"`` or ``"1h"`` (batches can outlast 5 minutes)."""
    max_cost: float | None = _option(None, _optional(_dollars))
    """Refuse (:class:`~batchkit.BudgetExceededError`), before any paid call, when the estimate's upper
    bound is over this many dollars (a number ≥ 0)."""
    calibrate: Any = _option(None, _calibration_source)  # noqa: RUF009 (_option is dataclasses.field with a check)
    """A finished run of the same prompt (a Job or a Comparison) whose answers' measured length
    replaces the offline output figures of the estimate and the budget guard; a run of another prompt
    is refused (:class:`~batchkit.CalibrationError`)."""
    prices: PriceTable = _option(None, _prices)  # noqa: RUF009 (_option is dataclasses.field with a check)
    """Model and price overrides: a dict ``{"model-id": {"input": …, "output": …, "max_output_tokens": …}}``
    or the path of a JSON/TOML file of one, applied over the built-in table."""
    check_model: bool = _option(True, _flag)
    """Refuse a model id the table does not know (:class:`~batchkit.UnknownModelError`); False: send it
    unchecked (cost unknown; ``max_cost`` then needs ``prices=``)."""
    progress: bool = _option(True, _flag)
    """``batch``/``classify``/``extract``: show live progress while waiting."""
    mode: str = _option(None, check_mode)
    """How requests go: ``"batch"`` (Message Batches, half price), ``"realtime"`` (answers in seconds,
    standard price) or ``"auto"`` (realtime for under 100 requests or a near deadline, else batch);
    None: the default mode (:func:`batchkit.set_default_mode`, ``BATCHKIT_MODE``, else batch)."""
    deadline: float | dt.timedelta | dt.datetime | None = _option(None, _optional(_deadline))  # noqa: RUF009
    """When every row must be answered: seconds from now, a ``timedelta`` or a ``datetime`` (naive: local
    time). ``auto`` weighs it; a batch job is split and hedged. The job stores it as an absolute time.
    Refused before any call when it has passed or is more than 100 years ahead."""

    def to_spec(self) -> dict[str, Any]:
        """The options a job stores, under their JSON keys."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.metadata.get("stored") and not (f.metadata["stored"] == "if_set" and getattr(self, f.name) is None)
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> RunOptions:
        """The stored options of a job, typed. Keys an older version did not write, and values that
        today's checks refuse, take the defaults: a stored job always loads."""
        values = {}
        for f in dataclasses.fields(cls):
            if not f.metadata.get("stored") or spec.get(f.name) is None:
                continue
            try:  # older versions checked less (poll_interval=inf, chunk_size=True were stored)
                values[f.name] = f.metadata["check"](f.name, spec[f.name])
            except InvalidOptionError:
                continue  # such a value takes today's default rather than make the job unreadable
        return cls(**values)


# --------------------------------------------------------------------------- what to send


@functools.cache
def sdk_params() -> dict[str, Any]:
    """Messages API param → its type, from the SDK's own type of a batch request's ``params``."""
    from anthropic.types.messages.batch_create_params import Request

    params_type = typing.get_type_hints(Request)["params"]
    return typing.get_type_hints(params_type)


@functools.cache
def _beta_only_params() -> frozenset[str]:
    try:
        from anthropic.types.beta.message_create_params import MessageCreateParamsNonStreaming as Beta
    except ImportError:  # pragma: no cover - an SDK without the beta types
        return frozenset()
    return frozenset(typing.get_type_hints(Beta)) - frozenset(sdk_params())


@functools.cache
def _adapter(name: str, variant: str | None = None) -> Any:
    """A pydantic validator of param ``name``'s SDK type (of one variant of a tagged union)."""
    import pydantic

    return pydantic.TypeAdapter(_variants(name)[variant] if variant is not None else sdk_params()[name])


_FIRST_CLASS = ("model", "max_tokens", "system", "stop_sequences")
_BATCHKIT_BUILT = {
    "messages": "messages= is built from the prompt: pass the row template as prompt= and shared "
    "instructions as system=",
}


def _check_model_id(name: str, value: Any) -> str:
    if value is None:
        raise OptionTypeError(
            f"model=None is not a model. Pass a model id such as model={DEFAULT_MODEL!r} (the default), or "
            "leave model= out to use the default.",
            option=name,
        )
    if not isinstance(value, str) or not value.strip():
        raise OptionTypeError(
            f"model must be a model id string such as 'claude-haiku-4-5', not {_describe(value)}", option=name
        )
    return value


def _check_system(name: str, value: Any) -> str | tuple[dict[str, Any], ...] | None:
    example = "system=[{'type': 'text', 'text': 'You are …'}]"
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        raise OptionTypeError(
            f"system= is a single dict; pass a string, or a list of text blocks: {example}", option=name
        )
    if not isinstance(value, (list, tuple)):
        raise OptionTypeError(
            f"system must be a string or a list of text blocks ({example}), not {_describe(value)}", option=name
        )
    if not value:
        raise InvalidOptionError("system=[] holds no blocks; leave system out or pass a string", option=name)
    for i, block in enumerate(value):
        if isinstance(block, str):
            raise OptionTypeError(
                f"system[{i}] is a plain string; a list must hold text blocks ({example}). "
                f"For plain text pass one string: system='…'",
                option=name,
            )
        if not isinstance(block, Mapping) or block.get("type") != "text" or not isinstance(block.get("text"), str):
            raise OptionTypeError(
                f"system[{i}] must be a text block {{'type': 'text', 'text': '…'}}, not {_describe(block)}", option=name
            )
    try:
        _json.dumps(value)
    except RecursionError:
        raise InvalidOptionError(
            "system= is nested too deep to send as JSON; flatten its blocks", option=name
        ) from None
    return tuple(dict(block) for block in value)


def _check_stop_sequences(name: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):  # one stop sequence
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise OptionTypeError(
            f"stop_sequences must be a list of strings such as ['\\n\\n', 'END'], not {_describe(value)}", option=name
        )
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise OptionTypeError(
                f"stop_sequences[{i}] must be a non-blank string, not {_describe(item)}; "
                f"write stop_sequences=['END'], each item a string",
                option=name,
            )
    return tuple(value)


def _check_tools(name: str, value: Any) -> None:
    example = "tools=[{'name': 'get_weather', 'input_schema': {'type': 'object', 'properties': {…}}}]"
    if isinstance(value, Mapping):
        raise OptionTypeError(f"tools= is a single tool; wrap it in a list: {example}", option=name)
    if not isinstance(value, (list, tuple)):
        raise OptionTypeError(
            f"tools must be a list of tool definitions ({example}), not {_describe(value)}", option=name
        )
    seen: set[str] = set()
    for i, tool in enumerate(value):
        if not isinstance(tool, Mapping) or not isinstance(tool.get("name"), str) or not tool["name"]:
            raise OptionTypeError(
                f"tools[{i}] must be a dict with a 'name' (and, for your own tools, an 'input_schema'), "
                f"not {_describe(tool)}. Example: {example}",
                option=name,
            )
        if tool.get("type") in (None, "custom"):
            schema = tool.get("input_schema")
            if not isinstance(schema, Mapping) or schema.get("type") != "object":
                raise InvalidOptionError(
                    f"tools[{i}] ({tool['name']!r}) needs an 'input_schema' that is a JSON schema of type "
                    f"'object', e.g. {{'type': 'object', 'properties': {{'city': {{'type': 'string'}}}}}}",
                    option=name,
                )
        if tool["name"] in seen:
            raise InvalidOptionError(f"two tools are named {tool['name']!r}; tool names must be distinct", option=name)
        seen.add(tool["name"])


@functools.cache
def _variants(name: str) -> dict[str, Any]:
    """``type`` value → TypedDict, for a param whose type is a union of TypedDicts told apart by
    their ``type`` (``tool_choice``, ``thinking``); empty for any other param."""
    from typing_extensions import is_typeddict

    out: dict[str, Any] = {}
    for member in typing.get_args(sdk_params()[name]):
        if not is_typeddict(member):
            continue
        kind = typing.get_type_hints(member).get("type")
        for literal in typing.get_args(kind):  # Required[Literal["auto"]] → Literal["auto"] → "auto"
            out.update({v: member for v in (typing.get_args(literal) or (literal,)) if isinstance(v, str)})
    return out


def _pydantic_problem(name: str, value: Any) -> str | None:
    """Why ``value`` is not of the SDK's type for param ``name`` (None when it is)."""
    import pydantic

    variants = _variants(name)
    if variants and isinstance(value, Mapping):
        if value.get("type") not in variants:
            return f"{name}['type'] must be one of {', '.join(map(repr, variants))}, not {value.get('type')!r}"
        adapter = _adapter(name, value["type"])
    else:
        adapter = _adapter(name)
    try:
        adapter.validate_python(value, strict=True)
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"] if not str(p).endswith("Param"))
        return f"{name}{'.' + where if where else ''}: {err['msg']}"
    except Exception:
        return None
    return None


def _unknown_keys(name: str, value: Any, hint: Any) -> None:
    """Keys of a dict param that its TypedDict does not have (a typo inside, e.g. ``metadata``)."""
    from typing_extensions import is_typeddict

    if not (isinstance(value, Mapping) and is_typeddict(hint)):
        return
    known = list(typing.get_type_hints(hint))
    for key in value:
        if key not in known:
            near = difflib.get_close_matches(str(key), known, n=1)
            hint_text = f"did you mean {near[0]!r}? " if near else ""
            raise InvalidOptionError(
                f"{name}= has no key {key!r}: {hint_text}it takes {', '.join(map(repr, known))}", option=name
            )


def _check_passthrough(name: str, value: Any) -> None:
    """A Messages API param other than the four batchkit names itself, against the SDK's types."""
    if name in SAMPLING_PARAMS:
        raise InvalidOptionError(
            f"{name}= is rejected by the Anthropic API version this SDK speaks (2026-10-21): every "
            f"request would come back errored. Remove {name}=; use output_config={{'effort': ...}} "
            "or a clearer prompt instead.",
            option=name,
        )
    if name in _BATCHKIT_BUILT:
        raise InvalidOptionError(_BATCHKIT_BUILT[name], option=name)
    if name == "stream":
        if value:
            raise InvalidOptionError("stream=True is not allowed inside Message Batches; remove it", option=name)
        return
    try:
        _json.dumps(value)
    except RecursionError:
        raise InvalidOptionError(f"{name}= is nested too deep to send as JSON; flatten it", option=name) from None
    if name == "tools":
        _check_tools(name, value)
        return
    problem = _pydantic_problem(name, value)
    if problem:
        raise InvalidOptionError(
            f"{problem} — {name}={value!r:.80} is not what the Messages API takes. "
            f"See the SDK's MessageCreateParams for its form.",
            option=name,
        )
    _unknown_keys(name, value, sdk_params()[name])


def _suggest(name: str, candidates: Sequence[str]) -> str | None:
    near = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return near[0] if near else None


@dataclass(frozen=True)
class RequestParams(_Checked):
    """What every request of a call sends, besides the row's prompt text."""

    model: str = _option(DEFAULT_MODEL, _check_model_id, none_is_default=False)
    """The model id, checked against the model table (:class:`~batchkit.UnknownModelError` before
    anything is sent); ``model=None`` is refused (leave it out for the default)."""
    max_tokens: int = _option(DEFAULT_MAX_TOKENS, _whole(1, fix="It caps each answer's length in tokens."))
    """The cap on each answer (256 for ``classify``); at most the model's output cap (64,000 for
    Haiku 4.5, 128,000 for Opus 4.6+; up to 300,000 on batches for the models the 300K-output beta covers)."""
    system: str | tuple[dict[str, Any], ...] | None = _option(None, _check_system)
    """A system prompt: a string, or a list of text blocks ``[{"type": "text", "text": …}]``."""
    stop_sequences: tuple[str, ...] = _option((), _check_stop_sequences)
    """A list of strings that end an answer (one string is one stop sequence)."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Other Messages API params (``tools``, ``tool_choice``, ``metadata``, ``output_config``,
    ``thinking``, ``service_tier``, …), passed through and checked against the SDK's own request types;
    beta-only params, ``temperature``/``top_p``/``top_k``, ``stream=True`` and ``messages=`` are refused."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name, value in self.extra.items():
            _check_passthrough(name, value)
        extra = {k: v for k, v in self.extra.items() if v is not None and k != "stream"}
        choice, tools = extra.get("tool_choice"), extra.get("tools") or ()
        if isinstance(choice, Mapping) and choice.get("type") == "tool":
            names = [t["name"] for t in tools]
            if choice.get("name") not in names:
                raise InvalidOptionError(
                    f"tool_choice names the tool {choice.get('name')!r}, which tools= does not define "
                    f"(tools: {names or 'none'}); name one of them",
                    option="tool_choice",
                )
        elif isinstance(choice, Mapping) and choice.get("type") == "any" and not tools:
            raise InvalidOptionError(
                "tool_choice={'type': 'any'} needs tools=; pass the tools or drop tool_choice", option="tool_choice"
            )
        thinking = extra.get("thinking")
        budget = thinking.get("budget_tokens") if isinstance(thinking, Mapping) else None
        if budget is not None and _is_whole(budget) and budget >= self.max_tokens:
            raise InvalidOptionError(
                f"thinking budget_tokens ({budget:,}) must be less than max_tokens "
                f"({self.max_tokens:,}); raise max_tokens or lower the budget",
                option="thinking",
            )
        object.__setattr__(self, "extra", types.MappingProxyType(extra))  # frozen all the way down

    def template_kwargs(self, system: Any = ...) -> dict[str, Any]:
        """Keyword arguments of :func:`batchkit.core.plan.build_template` (``system`` as laid out)."""
        return {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "system": self.system if system is ... else system,
            "stop_sequences": list(self.stop_sequences) or None,
            **self.extra,
        }

    def with_output_format(self, fmt: Mapping[str, Any], *, verb: str) -> RequestParams:
        """These params with ``output_config.format`` set by ``classify``/``extract``."""
        config = dict(self.extra.get("output_config") or {})
        if "format" in config:
            raise InvalidOptionError(
                f"{verb} sets output_config['format'] itself (from the labels or schema); remove 'format' "
                f"from output_config=, or use df.claude.batch for your own format",
                option="output_config",
            )
        config.update(fmt)
        return dataclasses.replace(self, extra={**self.extra, "output_config": config})


# --------------------------------------------------------------------------- estimate, all together


MAX_SAMPLE_ANSWERS = 1000
"""The most rows ``estimate(..., sample_answers=N)`` answers: a sample is small by design (paid at
the standard price); a larger one is a run of its own (``calibrate=job``)."""


@dataclass(frozen=True)
class EstimateOptions(_Checked):
    """What ``estimate`` takes besides the call's own options."""

    typical_output_tokens: int | None = _option(
        None, _optional(_whole(1, fix="It is the answer length you expect, in tokens; max_tokens is the upper bound."))
    )
    """The answer length you expect, in tokens (≥ 1); None: from the labels or schema, else a marked guess."""
    hit_rate: tuple[float, float] | None = _option(None, _hit_rate)
    """The prompt cache's hit rate: a fraction or a ``(low, high)`` pair in 0..1; None: from priming and size."""
    sample: int = _option(20, _whole(1, fix="It is how many requests count_tokens counts (free)."))
    """How many requests the free ``count_tokens`` endpoint counts (≥ 1)."""
    sample_answers: int | None = _option(
        None,
        _optional(
            _whole(
                1,
                MAX_SAMPLE_ANSWERS,
                fix=(
                    "It is how many rows a paid realtime sample answers to measure the answers' length; 20 calibrates "
                    "within about ±10%. For a larger sample run the call on df.sample(n) and pass calibrate=job."
                ),
            )
        ),
    )
    """Rows answered in realtime before pricing (paid, stored, reused by the run) to measure the output
    length: the estimate's typical is then measured, not a prior (≤ 1,000; None: no sample)."""


@dataclass(frozen=True)
class Options:
    """Everything a call was asked to do, checked. Build it with :meth:`build`."""

    params: RequestParams = field(default_factory=RequestParams)
    run: RunOptions = field(default_factory=RunOptions)
    estimate: EstimateOptions = field(default_factory=EstimateOptions)

    def __post_init__(self) -> None:
        if not self.run.check_model:
            return
        table = self.run.prices
        try:
            price = table.get(self.params.model)
        except UnknownModelError as exc:
            raise UnknownModelError(
                f"{exc}\n(batchkit checks the model id before sending, so a typo costs no batch.)",
                model=self.params.model,
            ) from None
        cap = price.max_output_tokens
        if cap is not None and self.params.max_tokens > cap:
            self._check_long_output(price.batch_output_300k, cap, table)

    def _check_long_output(self, covered: bool, cap: int, table: PriceTable) -> None:
        """``max_tokens`` over the model's standard cap: fine on a batch within the 300K-output
        beta (the batch is then sent with its header); refused otherwise, naming the fix."""
        asked, model = self.params.max_tokens, self.params.model
        changed = f" (A cap that changed can be given with prices={{{model!r}: {{'max_output_tokens': N}}}}.)"
        over = f"max_tokens={asked:,} is over {model}'s output cap of {cap:,} tokens"
        if not covered:
            others = ", ".join(m for m in table if table.get(m).batch_output_300k)
            raise InvalidOptionError(
                f"{over}, and the {OUTPUT_300K_BETA} beta that raises it to {OUTPUT_300K_TOKENS:,} on batches "
                f"does not cover {model}; every request would come back errored. Pass max_tokens={cap:,} or "
                f"less, or use a model the beta covers ({others}).{changed} (A model the beta has come to "
                f"cover can be marked with prices={{{model!r}: {{'batch_output_300k': True}}}}.)",
                option="max_tokens",
            )
        if asked > OUTPUT_300K_TOKENS:
            raise InvalidOptionError(
                f"{over}, and the {OUTPUT_300K_BETA} beta raises it to {OUTPUT_300K_TOKENS:,} at most; every "
                f"request would come back errored. Pass max_tokens={OUTPUT_300K_TOKENS:,} or less.",
                option="max_tokens",
            )
        mode = getattr(self.run, "mode", "batch")  # the mode option; batch where none exists
        if mode != "batch":
            raise InvalidOptionError(
                f"{over}; the {OUTPUT_300K_BETA} beta raises it to {OUTPUT_300K_TOKENS:,} on the Message "
                f"Batches API only, not on realtime calls, which mode={mode!r} may make. Pass mode='batch', "
                f"or max_tokens={cap:,} or less.",
                option="max_tokens",
            )

    def with_output_spec(self, spec: OutputSpec) -> Options:
        """These options with ``output_config.format`` set from ``spec``: the label set of
        ``classify`` or the schema of ``extract``, enforced by the API.

        Raises:
            InvalidOptionError: the call's own ``output_config=`` already sets a ``format``.
        """
        return dataclasses.replace(self, params=self.params.with_output_format(spec.output_config, verb=spec.kind))

    @classmethod
    def build(cls, kwargs: Mapping[str, Any], *, verb: str = "batch") -> Options:
        """Sort a call's keyword arguments into typed, checked options.

        Raises:
            UnknownOptionError: a keyword neither batchkit nor the Messages API knows (names the
                nearest valid one).
            InvalidOptionError: a value the call cannot use (``OptionTypeError`` when of the wrong type).
            UnknownModelError: a model id the price table does not know (unless ``check_model=False``).
        """
        run_names, est_names = RunOptions.names(), EstimateOptions.names()
        run, est, first, extra = {}, {}, {}, {}
        for name, value in kwargs.items():
            if name in run_names:
                run[name] = value
            elif name in est_names:
                est[name] = value
            elif name in _FIRST_CLASS:
                first[name] = value
            else:
                extra[name] = value
        if est and verb != "estimate":
            name = next(iter(est))
            raise UnknownOptionError(
                f"{name}= is an option of estimate() only; remove it from {verb}(), or call "
                f"df.claude.estimate(..., {name}=...) first",
                option=name,
            )
        for name in extra:
            cls._check_name(name, verb)
        params = RequestParams(**first, extra=extra)
        return cls(params, RunOptions(**run), EstimateOptions(**est))

    @staticmethod
    def _check_name(name: str, verb: str) -> None:
        if name in sdk_params() or name in SAMPLING_PARAMS:
            return
        if name == "output" and verb == "extract":
            raise UnknownOptionError(
                "extract names its columns by prefix=, not output= (e.g. prefix='llm_')",
                option=name,
                suggestion="prefix",
            )
        if name in _beta_only_params() or name == "betas":
            raise UnknownOptionError(
                f"{name}= is a beta Messages param; batchkit sends GA Message Batches requests, which do not "
                f"take it. Remove {name}=.",
                option=name,
            )
        owner = _VERB_OF_ARGUMENT.get(name)
        if owner is not None and verb not in (owner, "estimate"):  # e.g. labels= given to batch()
            raise UnknownOptionError(
                f"{name}= is an argument of {owner}(), not of {verb}(): call df.claude.{owner}(prompt, "
                f"{name}=...) instead, or remove {name}=",
                option=name,
                suggestion=None,
            )
        candidates = [c for c in (*RunOptions.names(), *_FIRST_CLASS, *sdk_params(), *ACCESSOR_ARGUMENTS) if c != name]
        if verb == "estimate":
            candidates += EstimateOptions.names()
        near = _suggest(name, candidates)
        hint = f"Did you mean {near}=? " if near else ""
        raise UnknownOptionError(
            f"{name}= is neither a batchkit option nor a Messages API param, so every request would be "
            f"refused. {hint}batchkit options: {', '.join(RunOptions.names())}; Messages params: "
            f"{', '.join(sorted(set(sdk_params()) - {'messages', 'stream'}))}.",
            option=name,
            suggestion=near,
        )


# --------------------------------------------------------------------------- what a job stores


@dataclass(frozen=True)
class JobSpec:
    """What a job keeps about its call, typed: written at submission, read back by :class:`batchkit.Job`.

    Stored as JSON under the keys of earlier versions: ``prompt``, ``max_tokens``, the
    :class:`RunOptions` marked stored, ``output_spec`` and ``estimate``.
    """

    run: RunOptions
    """The run options; ``cache`` is what the requests carry (False when the prefix was too short to mark)."""
    prompt: str = ""
    max_tokens: int = DEFAULT_MAX_TOKENS
    output_spec: Mapping[str, Any] | None = None
    estimate: Mapping[str, Any] | None = None
    hedge: Mapping[str, Any] | None = None
    """A job with a ``deadline=`` sent as batches: ``deadline_at`` (seconds since the epoch, UTC, on the
    server's clock), ``deadline`` (the same as ISO-8601), ``realtime_rate`` (requests per second planned
    for the rows sent realtime), ``settle_seconds`` and ``clock_rate``
    (see :class:`batchkit.engine.hedge.HedgePlan`)."""

    def to_json(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"prompt": self.prompt, "max_tokens": self.max_tokens, **self.run.to_spec()}
        if self.output_spec is not None:
            spec["output_spec"] = dict(self.output_spec)
        if self.estimate is not None:
            spec["estimate"] = dict(self.estimate)
        if self.hedge is not None:
            spec["hedge"] = dict(self.hedge)
        return spec

    @classmethod
    def from_json(cls, spec: Mapping[str, Any]) -> JobSpec:
        max_tokens = spec.get("max_tokens")
        return cls(
            run=RunOptions.from_spec(spec),
            prompt=str(spec.get("prompt", "")),
            max_tokens=int(max_tokens) if max_tokens is not None else DEFAULT_MAX_TOKENS,
            output_spec=spec.get("output_spec") or None,
            estimate=spec.get("estimate") or None,
            hedge=spec.get("hedge") or None,
        )
