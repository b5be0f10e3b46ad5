"""What every request of a call sends: the Messages API params, declared and checked once. Pure.

:class:`RequestParams` is the call's params besides the row's prompt text: ``model``,
``max_tokens``, ``system`` and ``stop_sequences`` as fields (each an :func:`~batchkit.core._checks.option`
with its default and check), and every other Messages API param in ``extra``, checked against the
SDK's own request types (:func:`sdk_params`) — so a param the API takes passes with no code here,
a typo is refused naming the nearest, and the params the API version refuses
(:data:`SAMPLING_PARAMS`), beta-only ones, ``stream=True`` and ``messages=`` are refused before
anything is rendered or sent. Letting a new Messages param through, or refusing one, is one
definition here; the docs' options table and the accessors' docstrings are checked against these
declarations (``tests/test_options_drift.py``).

:func:`batchkit.core.plan.build_template` serializes checked params as they are.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from batchkit.errors import InvalidOptionError, OptionTypeError

from . import _json
from ._checks import Checked, describe, is_whole, option, whole

__all__ = [
    "BUILT_PARAMS",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_MODEL",
    "FIRST_CLASS",
    "SAMPLING_PARAMS",
    "RequestParams",
    "beta_only_params",
    "sdk_params",
]

DEFAULT_MODEL = "claude-haiku-4-5"
"""The model used when a call names none: the cheapest current model that classifies well."""

DEFAULT_MAX_TOKENS = 1024
"""The output cap used when a call names none (``classify`` uses :data:`~batchkit.core.options.CLASSIFY_MAX_TOKENS`)."""

SAMPLING_PARAMS = ("temperature", "top_p", "top_k")
"""Messages params the API version this SDK speaks (2026-10-21) refuses: every request would come back errored."""


@functools.cache
def sdk_params() -> dict[str, Any]:
    """Messages API param → its type, from the SDK's own type of a batch request's ``params``."""
    from anthropic.types.messages.batch_create_params import Request

    params_type = typing.get_type_hints(Request)["params"]
    return typing.get_type_hints(params_type)


@functools.cache
def beta_only_params() -> frozenset[str]:
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


FIRST_CLASS = ("model", "max_tokens", "system", "stop_sequences")
"""The Messages params batchkit names itself (fields of :class:`RequestParams`); the rest go in ``extra``."""
BUILT_PARAMS: dict[str, str] = {
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
            f"model must be a model id string such as 'claude-haiku-4-5', not {describe(value)}", option=name
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
            f"system must be a string or a list of text blocks ({example}), not {describe(value)}", option=name
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
                f"system[{i}] must be a text block {{'type': 'text', 'text': '…'}}, not {describe(block)}", option=name
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
            f"stop_sequences must be a list of strings such as ['\\n\\n', 'END'], not {describe(value)}", option=name
        )
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise OptionTypeError(
                f"stop_sequences[{i}] must be a non-blank string, not {describe(item)}; "
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
            f"tools must be a list of tool definitions ({example}), not {describe(value)}", option=name
        )
    seen: set[str] = set()
    for i, tool in enumerate(value):
        if not isinstance(tool, Mapping) or not isinstance(tool.get("name"), str) or not tool["name"]:
            raise OptionTypeError(
                f"tools[{i}] must be a dict with a 'name' (and, for your own tools, an 'input_schema'), "
                f"not {describe(tool)}. Example: {example}",
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
    if name in BUILT_PARAMS:
        raise InvalidOptionError(BUILT_PARAMS[name], option=name)
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


@dataclass(frozen=True)
class RequestParams(Checked):
    """What every request of a call sends, besides the row's prompt text."""

    model: str = option(DEFAULT_MODEL, _check_model_id, none_is_default=False)
    """The model id, checked against the model table (:class:`~batchkit.UnknownModelError` before
    anything is sent); ``model=None`` is refused (leave it out for the default)."""
    max_tokens: int = option(DEFAULT_MAX_TOKENS, whole(1, fix="It caps each answer's length in tokens."))
    """The cap on each answer (256 for ``classify``); at most the model's output cap (64,000 for
    Haiku 4.5, 128,000 for Opus 4.6+; up to 300,000 on batches for the models the 300K-output beta covers)."""
    system: str | tuple[dict[str, Any], ...] | None = option(None, _check_system)
    """A system prompt: a string, or a list of text blocks ``[{"type": "text", "text": …}]``."""
    stop_sequences: tuple[str, ...] = option((), _check_stop_sequences)
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
        if budget is not None and is_whole(budget) and budget >= self.max_tokens:
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
