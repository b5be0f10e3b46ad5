"""A call's options as one typed, validated value. Pure: no network, no store.

Every ``df.claude`` / ``series.claude`` call turns its keyword arguments into one :class:`Options`
— built once, checked here, before anything is rendered or sent::

    Options
    ├── params    RequestParams    what to send: model, max_tokens, system, stop_sequences and the
    │                              other Messages API params (checked against the SDK's request types)
    ├── run       RunOptions       how to run: client, store, poll_interval, chunk_size, chunk_bytes,
    │                              queue_limit, max_retries, max_invalid_retries, cache, cache_ttl, max_cost,
    │                              calibrate, prices, check_model, progress, mode, deadline, cascade,
    │                              threshold
    └── estimate  EstimateOptions  what only ``estimate`` takes: typical_output_tokens, hit_rate, sample,
                                   sample_answers

Each option is declared once, as a dataclass field made by :func:`option`: its default, its
check (which also normalises, e.g. a numpy integer to ``int``) and whether the job store keeps it.
A job stores a :class:`JobSpec` (the run options it needs after a restart, the prompt, ``max_tokens``,
the structured-output spec and the estimate) under the same JSON keys as earlier versions, and
:class:`batchkit.Job` reads it back typed with :meth:`JobSpec.from_json`: a spec written by an
older version loads unchanged, its missing keys taking today's defaults.

Adding an option — say ``mode="batch" | "realtime" | "auto"`` or ``deadline=`` — is one
``option(...)`` field on :class:`RunOptions` with its check (``stored=True`` if a re-attached job
needs it) and a docstring under it: the docs' options reference is generated from these fields
(``docs/reference/options.md``), and a test fails for an option without one.

>>> Options.build({"model": "claude-haiku-4-5", "max_tokens": 20}).params.max_tokens
20
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from batchkit.errors import InvalidOptionError, OptionTypeError, UnknownModelError, UnknownOptionError

from ._checks import (
    MAX_DEADLINE,
    Checked,
    check_calibration_source,
    check_client,
    check_deadline,
    check_dollars,
    check_flag,
    check_hit_rate,
    check_prices,
    check_seconds,
    check_store,
    describe,
    is_number,
    one_of,
    option,
    optional,
    whole,
)
from .models import OUTPUT_300K_BETA, OUTPUT_300K_TOKENS, ModelTable
from .modes import check_mode
from .params import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_MODEL,
    FIRST_CLASS,
    SAMPLING_PARAMS,
    RequestParams,
    beta_only_params,
    sdk_params,
)
from .plan import MAX_BATCH_BYTES, MAX_BATCH_REQUESTS
from .states import Mode

if TYPE_CHECKING:
    from .structured import OutputSpec

__all__ = [
    "CLASSIFY_MAX_TOKENS",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_MODEL",
    "DEFAULT_THRESHOLD",
    "MAX_DEADLINE",
    "MAX_SAMPLE_ANSWERS",
    "SAMPLING_PARAMS",
    "EstimateOptions",
    "JobSpec",
    "Options",
    "RequestParams",
    "RunOptions",
    "sdk_params",
]

CLASSIFY_MAX_TOKENS = 256
"""The output cap of ``classify`` when the call names none: a label, or a few with reasons, is short."""

MIN_CHUNK_BYTES = 1000

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


# --------------------------------------------------------------------------- how to run


DEFAULT_THRESHOLD = 0.8
"""The confidence a cascade keeps an answer at when the call names no ``threshold=``."""


def _check_cascade(name: str, value: Any) -> tuple[str, ...]:
    """Two or more distinct model ids (each is checked against the model table when its stage is built)."""
    example = "['claude-haiku-4-5', 'claude-sonnet-4-6']"
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise OptionTypeError(
            f"{name} must be a list of two or more model ids, cheapest first, such as {example}; not "
            f"{describe(value)}. For one model pass model= instead.",
            option=name,
        )
    models = tuple(value)
    for m in models:
        if not isinstance(m, str) or not m.strip():
            raise OptionTypeError(f"{name} must hold model id strings, not {describe(m)}", option=name)
    if len(models) < 2:
        raise InvalidOptionError(
            f"{name}={list(models)!r} has one model: a cascade escalates from one model to the next, so it needs "
            f"two or more, cheapest first, e.g. {example}. For one model pass model={models[0]!r} instead."
            if models
            else f"{name} is empty; pass two or more models, cheapest first, e.g. {example}",
            option=name,
        )
    if len(set(models)) != len(models):
        raise InvalidOptionError(f"{name} lists a model twice ({list(models)}); name each once", option=name)
    return models


def _check_threshold(name: str, value: Any) -> float | tuple[float, ...]:
    """A confidence in [0, 1], or a list of them (one per escalation)."""
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values:
        raise InvalidOptionError(
            f"{name} is empty; pass one confidence such as 0.8, or one per escalation", option=name
        )
    for v in values:
        if not is_number(v):
            raise OptionTypeError(
                f"{name} must be a confidence from 0 to 1 such as 0.8 (or a list, one per escalation), not "
                f"{describe(v)}",
                option=name,
            )
        if not 0 <= v <= 1:
            raise InvalidOptionError(
                f"{name}={v!r} is outside [0, 1]: a model's confidence is a number from 0 (a guess) to 1 (sure). "
                f"Pass e.g. {name}=0.8 (answers under 0.8 go to the next model).",
                option=name,
            )
    checked = tuple(float(v) for v in values)
    return checked if isinstance(value, (list, tuple)) else checked[0]


@dataclass(frozen=True)
class RunOptions(Checked):
    """How a call runs: where, how often, in what chunks, with what guards. Never sent to the API."""

    client: Any = option(None, check_client)  # noqa: RUF009 (option is dataclasses.field with a check)
    """An ``anthropic.Anthropic`` (not ``AsyncAnthropic``); default: :func:`batchkit.set_default_client`
    (what :func:`batchkit.start_simulator` sets), else one built from ``ANTHROPIC_API_KEY`` and the environment."""
    store: Any = option(None, check_store)  # noqa: RUF009 (option is dataclasses.field with a check)
    """The job store: a path or a :class:`batchkit.Store`; default: ``BATCHKIT_STORE``, else
    ``jobs.sqlite3`` (``simulator.sqlite3`` for the simulator) under ``$XDG_DATA_HOME/batchkit/``."""
    poll_interval: float | None = option(None, optional(check_seconds), stored=True)
    """Seconds (finite, > 0) between status checks; None: a backoff fit for the server, 30 → 60 → 120 →
    300 → 600 s for the real API, 0.1 → 1 s for the simulator."""
    chunk_size: int = option(
        MAX_BATCH_REQUESTS,
        whole(1, MAX_BATCH_REQUESTS, fix="Leave it out for the API's limit (100,000 requests per batch)."),
        stored=True,
    )
    """At most this many requests per batch (1–100,000; None: the API's limit; 0 is refused)."""
    chunk_bytes: int = option(
        MAX_BATCH_BYTES,
        whole(MIN_CHUNK_BYTES, MAX_BATCH_BYTES, fix="Leave it out for the API's limit (256 MB per batch)."),
        stored=True,
    )
    """At most this many bytes of serialized body per batch (1,000 B–256 MB; None: the API's limit)."""
    queue_limit: int | None = option(
        None,
        optional(
            whole(
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
    media_errors: Literal["raise", "skip"] = option(
        "raise", one_of("raise", "skip", fix="Use 'raise' to stop before sending, 'skip' to leave such rows out.")
    )
    """An image or PDF cell the API would refuse (type, size, pixels, pages): ``"raise"`` a
    :class:`~batchkit.MediaError` before anything is sent, or ``"skip"`` its row with the reason."""
    max_retries: int = option(2, whole(0, fix="0 turns automatic retries off."), stored=True)
    """Automatic resubmissions of transiently failed (``api_error``, ``overloaded_error``,
    ``rate_limit_error``, ``timeout_error``) or expired rows."""
    max_invalid_retries: int = option(1, whole(0, fix="0 turns them off."), stored=True)
    """Resubmissions of structured answers that fail their schema (``classify``/``extract``)."""
    cache: Literal["auto", "prime", False] = option(
        "auto",
        one_of(
            "auto", "prime", False, fix="Use cache='auto' to cache a long shared prefix, cache=False to never mark one."
        ),
        stored=True,
    )
    """Prompt caching of the shared prefix: ``"auto"`` (mark it when it reaches the model's minimum
    cacheable length), ``"prime"`` (the same, and a one-request batch first writes the cache) or ``False``."""
    cache_ttl: Literal["5m", "1h"] = option("1h", one_of("5m", "1h"), stored=True)
    """The cache breakpoint's time to live: ``"5m"`` or ``"1h"`` (batches can outlast 5 minutes)."""
    max_cost: float | None = option(None, optional(check_dollars))
    """Refuse (:class:`~batchkit.BudgetExceededError`), before any paid call, when the estimate's upper
    bound is over this many dollars (a number ≥ 0)."""
    calibrate: Any = option(None, check_calibration_source)  # noqa: RUF009 (option is dataclasses.field with a check)
    """A finished run of the same prompt (a Job or a Comparison) whose answers' measured length
    replaces the offline output figures of the estimate and the budget guard; a run of another prompt
    is refused (:class:`~batchkit.CalibrationError`)."""
    prices: Any = option(None, check_prices)  # noqa: RUF009 (option is dataclasses.field with a check)
    """Model and price overrides: a dict ``{"model-id": {"input": …, "output": …, "max_output_tokens": …}}``
    or the path of a JSON/TOML file of one, applied over the built-in table."""
    check_model: bool = option(True, check_flag)
    """Refuse a model id the table does not know (:class:`~batchkit.UnknownModelError`); False: send it
    unchecked (cost unknown; ``max_cost`` then needs ``prices=``)."""
    progress: bool = option(True, check_flag)
    """``batch``/``classify``/``extract``: show live progress while waiting."""
    mode: str = option(None, check_mode)
    """How requests go: ``"batch"`` (Message Batches, half price), ``"realtime"`` (answers in seconds,
    standard price) or ``"auto"`` (realtime for under 100 requests or a near deadline, else batch);
    None: the default mode (:func:`batchkit.set_default_mode`, ``BATCHKIT_MODE``, else batch)."""
    deadline: float | dt.timedelta | dt.datetime | None = option(None, optional(check_deadline))  # noqa: RUF009
    """When every row must be answered: seconds from now, a ``timedelta`` or a ``datetime`` (naive: local
    time). ``auto`` weighs it; a batch job is split and hedged. The job stores it as an absolute time.
    Refused before any call when it has passed or is more than 100 years ahead."""
    cascade: tuple[str, ...] | None = option(None, optional(_check_cascade))
    """``classify``/``extract`` (with a label field): models tried in turn, cheapest first, e.g.
    ``["claude-haiku-4-5", "claude-sonnet-4-6"]`` (two or more, each once; not with ``model=``). The
    first answers every row with a confidence; rows under ``threshold`` go to the next model."""
    threshold: float | tuple[float, ...] | None = option(None, optional(_check_threshold))
    """With ``cascade=``: the confidence (0 to 1) a model's answer needs to be kept — one number, or
    one per escalation; None: 0.8. ``compare(..., cascade=True)`` measures which one to use."""

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


# --------------------------------------------------------------------------- estimate, all together


MAX_SAMPLE_ANSWERS = 1000
"""The most rows ``estimate(..., sample_answers=N)`` answers: a sample is small by design (paid at
the standard price); a larger one is a run of its own (``calibrate=job``)."""


@dataclass(frozen=True)
class EstimateOptions(Checked):
    """What ``estimate`` takes besides the call's own options."""

    typical_output_tokens: int | None = option(
        None, optional(whole(1, fix="It is the answer length you expect, in tokens; max_tokens is the upper bound."))
    )
    """The answer length you expect, in tokens (≥ 1); None: from the labels or schema, else a marked guess."""
    hit_rate: tuple[float, float] | None = option(None, check_hit_rate)
    """The prompt cache's hit rate: a fraction or a ``(low, high)`` pair in 0..1; None: from priming and size."""
    sample: int = option(20, whole(1, fix="It is how many requests count_tokens counts (free)."))
    """How many requests the free ``count_tokens`` endpoint counts (≥ 1)."""
    sample_answers: int | None = option(
        None,
        optional(
            whole(
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

    def _check_long_output(self, covered: bool, cap: int, table: ModelTable) -> None:
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
        mode = self.run.mode
        if mode != Mode.BATCH:
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
            elif name in FIRST_CLASS:
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
        built = cls(params, RunOptions(**run), EstimateOptions(**est))
        if built.run.cascade is not None or built.run.threshold is not None:
            built._check_cascade_call(verb, "model" in first)
        return built

    def _check_cascade_call(self, verb: str, model_given: bool) -> None:
        """``cascade=`` fits the call: a verb with labels, no ``model=`` beside it, and as many thresholds
        as escalations."""
        cascade, threshold = self.run.cascade, self.run.threshold
        if cascade is None:
            fix = (
                "pass cascade=True (compare picks the thresholds), or remove threshold="
                if verb == "compare"
                else "it needs cascade=[...] (two or more models, cheapest first). Pass cascade=, or remove threshold="
            )
            raise InvalidOptionError(
                f"threshold= is the confidence a cascade keeps an answer at; {fix}.",
                option="threshold",
            )
        if verb not in ("classify", "extract", "estimate"):
            raise InvalidOptionError(
                f"cascade= escalates by the model's confidence in a label, so it is for df.claude.classify (and "
                f"extract with a label field), not {verb}() of free text: use df.claude.classify(prompt, "
                f"labels=[...], cascade={list(cascade)!r}), or one model=",
                option="cascade",
            )
        if model_given:
            raise InvalidOptionError(
                f"pass model= or cascade=, not both: the cascade's models are {list(cascade)!r}, the first answering "
                f"every row. Remove model=.",
                option="model",
            )
        if isinstance(threshold, tuple) and len(threshold) != len(cascade) - 1:
            raise InvalidOptionError(
                f"threshold= gives {len(threshold)} confidences but cascade= has {len(cascade) - 1} escalations "
                f"({' → '.join(cascade)}); give one number for all, or one per escalation",
                option="threshold",
            )

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
        if name in beta_only_params() or name == "betas":
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
        candidates = [c for c in (*RunOptions.names(), *FIRST_CLASS, *sdk_params(), *ACCESSOR_ARGUMENTS) if c != name]
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


def _suggest(name: str, candidates: Sequence[str]) -> str | None:
    near = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return near[0] if near else None


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
