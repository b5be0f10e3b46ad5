"""Answers that are data: a label from a closed set, or typed fields. Pure.

Both kinds ride the one pipeline of :mod:`batchkit.engine.jobs`: they only add an
``output_config.format`` JSON schema to every request (so the API itself constrains the answer),
a check of each answer on the way back (an answer that does not parse or fails the schema
becomes ``invalid_output`` with the reason), and a rule for turning answers into typed columns.

An :class:`OutputSpec` is plain JSON, so it is stored with the job and a job re-attached in a
fresh process validates and types its answers exactly as the process that submitted it.
"""

from __future__ import annotations

import copy
import datetime as dt
import enum
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from batchkit.errors import ConfigurationError, InvalidOptionError, OptionTypeError

from . import _json

__all__ = ["ColumnType", "OutputSpec", "classify_spec", "extract_spec"]


@dataclass(frozen=True)
class ColumnType:
    """The type of one output column (or of a value nested in it), for any DataFrame library.

    Each front end maps it to its own dtypes (pandas: ``Int64``, ``Categorical``…; Polars:
    ``Int64``, ``Enum``…), so the schema is read in one place.

    Attributes:
        kind: ``string``, ``integer``, ``number``, ``boolean``, ``date``, ``datetime`` (UTC),
            ``enum`` (a closed set, see ``values``), ``list`` (of ``item``), ``struct`` (of
            ``fields``) or ``object`` (anything else, e.g. a union of several types).
        values: the allowed values of an ``enum``, in order (strings, or numbers for a
            numeric ``Literal``).
        item: the type of a ``list``'s items.
        fields: ``(name, type)`` of a ``struct``'s fields, in order.
    """

    kind: str
    values: tuple[Any, ...] = ()
    item: ColumnType | None = None
    fields: tuple[tuple[str, ColumnType], ...] = ()


def column_type(prop: Mapping[str, Any], defs: Mapping[str, Any]) -> ColumnType:
    """The :class:`ColumnType` of a JSON-schema node (``X | None`` is ``X``: every column is nullable)."""
    options = [_resolve(o, defs) for o in _resolve(prop, defs).get("anyOf", [prop])]
    options = [o for o in options if o.get("type") != "null"] or options
    if len(options) != 1:
        return ColumnType("object")
    node = _resolve(options[0], defs)
    kind = node.get("type")
    if "enum" in node:
        return ColumnType("enum", values=tuple(node["enum"]))
    if "const" in node:
        return ColumnType("enum", values=(node["const"],))
    if kind == "string" and node.get("format") in ("date", "date-time"):
        return ColumnType("date" if node["format"] == "date" else "datetime")
    if kind in ("string", "integer", "number", "boolean"):
        return ColumnType(kind)
    if kind == "array" and "items" in node:
        return ColumnType("list", item=column_type(node["items"], defs))
    if kind == "object" and node.get("properties"):
        return ColumnType(
            "struct", fields=tuple((name, column_type(sub, defs)) for name, sub in node["properties"].items())
        )
    return ColumnType("object")


@dataclass(frozen=True)
class OutputSpec:
    """What a structured call asks for and how its answers become columns.

    Attributes:
        kind: ``classify`` or ``extract``.
        schema: the JSON schema sent as ``output_config.format.schema``.
        columns: ``(column name, answer field)`` pairs, in output order.
        labels: the closed label set (classify only).
        multi: whether a row may carry several labels (classify only).
    """

    kind: str
    schema: dict[str, Any]
    columns: tuple[tuple[str, str], ...]
    labels: tuple[str, ...] = ()
    multi: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "schema": self.schema,
            "columns": [list(c) for c in self.columns],
            "labels": list(self.labels),
            "multi": self.multi,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OutputSpec:
        return cls(
            data["kind"],
            data["schema"],
            tuple((a, b) for a, b in data["columns"]),
            tuple(data.get("labels", ())),
            bool(data.get("multi", False)),
        )

    @property
    def output_config(self) -> dict[str, Any]:
        return {"format": {"type": "json_schema", "schema": self.schema}}

    def check(self, answer: str | None) -> str | None:
        """Why ``answer`` is not a valid answer, or None when it is."""
        if answer is None:
            return "no answer"
        try:
            value = _json.loads(answer)
        except _json.DecodeError as exc:
            return f"the answer is not JSON ({exc})"
        return schema_error(value, self.schema, self.schema.get("$defs", {}), "answer")

    def types(self) -> dict[str, ColumnType]:
        """Each output column's :class:`ColumnType`, in output order.

        ``classify`` gives an ``enum`` of the labels (``multi``: a ``list`` of it) and a
        ``string`` reasoning column; ``extract`` one type per schema field.
        """
        defs = self.schema.get("$defs", {})
        out = {}
        for column, fieldname in self.columns:
            if self.kind == "classify" and fieldname in ("label", "labels"):
                labels = ColumnType("enum", values=self.labels)
                out[column] = ColumnType("list", item=labels) if self.multi else labels
            else:
                out[column] = column_type(self.schema["properties"][fieldname], defs)
        return out

    def values(self, answers: Sequence[str | None]) -> dict[str, list[Any]]:
        """Each output column's field value per row, as parsed from valid answers (None where a
        row has none): what every front end types in its own library's dtypes.

        >>> classify_spec(["no", "yes"], output="ok").values(['{"label":"yes"}', None])
        {'ok': ['yes', None]}
        """
        parsed = [_json.loads(a) if a is not None else None for a in answers]
        return {
            column: [v.get(fieldname) if isinstance(v, dict) else None for v in parsed]
            for column, fieldname in self.columns
        }

    def frame(self, answers: Sequence[str | None], index: pd.Index) -> pd.DataFrame:
        """Typed pandas columns from valid answers (None where a row has none)."""
        values = self.values(answers)
        out = {}
        defs = self.schema.get("$defs", {})
        for column, fieldname in self.columns:
            cells = values[column]
            prop = _resolve(self.schema["properties"][fieldname], defs)
            if self.kind == "classify" and fieldname in ("label", "labels"):
                if self.multi:
                    out[column] = pd.Series(cells, index=index, dtype=object)
                else:
                    out[column] = pd.Series(pd.Categorical(cells, categories=list(self.labels)), index=index)
                continue
            out[column] = _typed(cells, prop, defs, index)
        return pd.DataFrame(out, index=index)


# --------------------------------------------------------------------------- building specs


def classify_spec(
    labels: Sequence[str], *, output: str = "label", multi: bool = False, reasoning: bool = False
) -> OutputSpec:
    """The spec of ``df.claude.classify``.

    Raises:
        InvalidOptionError: ``labels`` is not a list of at least two distinct, non-blank strings
            (``OptionTypeError`` when a label is not a string: nothing is converted silently).
    """
    for name, flag in (("multi", multi), ("reasoning", reasoning)):
        if not isinstance(flag, (bool, np.bool_)):
            raise OptionTypeError(f"{name} must be True or False, not {flag!r}", option=name)
    if isinstance(labels, (str, bytes, Mapping)) or not isinstance(labels, Iterable):
        raise OptionTypeError(
            f"labels must be a list of strings such as ['negative', 'neutral', 'positive'], not {labels!r:.80}",
            option="labels",
        )
    labels = list(labels)
    odd = [label for label in labels if not isinstance(label, str)]
    if odd:
        raise OptionTypeError(
            f"labels must be strings, but {odd[0]!r} is {type(odd[0]).__name__}; the column can only hold "
            f"the labels as given, so write them as strings: labels={[str(label) for label in labels]!r:.120}",
            option="labels",
        )
    if len(labels) < 2:
        raise InvalidOptionError(
            f"classify needs at least two labels to choose from, not {labels!r}; for a yes/no question use "
            "labels=['yes', 'no'], for free text use df.claude.batch",
            option="labels",
        )
    if any(not label.strip() for label in labels):
        raise InvalidOptionError(f"labels must not be blank; got {labels!r}", option="labels")
    if len(set(labels)) != len(labels):
        raise InvalidOptionError(f"labels must be distinct; got {labels}", option="labels")
    properties: dict[str, Any] = {}
    columns: list[tuple[str, str]] = []
    if reasoning:  # before the label, so the model reasons first
        properties["reasoning"] = {"type": "string", "description": "one or two sentences"}
    if multi:
        properties["labels"] = {"type": "array", "items": {"type": "string", "enum": labels}}
        columns.append((output, "labels"))
    else:
        properties["label"] = {"type": "string", "enum": labels}
        columns.append((output, "label"))
    if reasoning:
        columns.append((f"{output}_reasoning", "reasoning"))
    schema = {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
    return OutputSpec("classify", schema, tuple(columns), tuple(labels), multi)


def extract_spec(schema: Any, *, prefix: str = "") -> OutputSpec:
    """The spec of ``df.claude.extract`` from a pydantic model or a ``{name: type}`` dict.

    Types: ``str``, ``int``, ``float``, ``bool``, ``datetime.date``/``datetime``, ``Literal[...]``,
    ``Enum`` subclasses, ``list[...]``, nested models, and ``X | None`` of any of them.
    """
    import pydantic

    if not isinstance(prefix, str):
        raise OptionTypeError(f"prefix must be a string such as 'llm_', not {prefix!r}", option="prefix")
    if isinstance(schema, Mapping):
        if not schema:
            raise ConfigurationError("schema must name at least one field")
        fields = {}
        for i, (name, annotation) in enumerate(schema.items()):
            if not isinstance(name, str) or not name.isidentifier():
                raise ConfigurationError(f"schema field names must be identifiers, not {name!r}")
            _check_field_type(annotation, name)
            # The name is the field's alias: as an attribute, ``_x`` would be private (left out of
            # the schema), ``json`` would shadow a BaseModel method and ``model_config`` would break.
            fields[f"field_{i}"] = (annotation, pydantic.Field(..., alias=name))
        try:
            model = pydantic.create_model("Extraction", **fields)  # type: ignore[call-overload]
        except (TypeError, pydantic.PydanticSchemaGenerationError) as exc:
            raise ConfigurationError(f"cannot build a schema from {schema!r}: {exc}") from None
    elif isinstance(schema, type) and issubclass(schema, pydantic.BaseModel):
        _check_field_type(schema, schema.__name__)
        model = schema
    else:
        raise ConfigurationError(
            "schema must be a pydantic model class or a dict of field name → type, "
            f"e.g. {{'sector': str, 'founded': int}}; got {schema!r}"
        )
    try:
        json_schema = _strict(model.model_json_schema())
    except pydantic.PydanticSchemaGenerationError as exc:
        raise ConfigurationError(f"cannot build a JSON schema for {model.__name__}: {exc}") from None
    columns = tuple((f"{prefix}{name}", name) for name in json_schema["properties"])
    return OutputSpec("extract", json_schema, columns)


SUPPORTED_TYPES = (
    "str, int, float, bool, datetime.date, datetime.datetime, Literal[...] of strings or numbers, an Enum, "
    "list[...] of these, a nested pydantic model, and X | None of any of them"
)


def _check_field_type(annotation: Any, path: str) -> None:
    """Refuse a type that cannot become a typed column (or that structured outputs cannot ask for)."""
    import pydantic

    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation in (str, int, float, bool, dt.date, dt.datetime):
        return
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        for name, info in annotation.model_fields.items():
            _check_field_type(info.annotation, f"{path}.{name}")
        return
    if origin is typing.Literal and args and all(isinstance(a, (str, int, float, bool)) for a in args):
        return
    if origin is typing.Annotated:
        return _check_field_type(args[0], path)
    if origin in (typing.Union, types.UnionType) and any(a is not type(None) for a in args):
        for arg in args:
            if arg is not type(None):
                _check_field_type(arg, path)
        return
    if origin is list and len(args) == 1:
        return _check_field_type(args[0], f"{path}[]")
    shown = getattr(annotation, "__name__", None) if origin is None else None
    raise InvalidOptionError(
        f"schema field {path!r} has type {shown or annotation!r}, which extract cannot ask for or type into a "
        f"column. Supported: {SUPPORTED_TYPES}. E.g. use float for a number, str for free text, "
        f"list[str] for a list.",
        option="schema",
    )


_SUBSCHEMA = (  # keywords whose value is one schema (``items``: or a list of them, the old tuple form)
    "items",
    "additionalItems",
    "additionalProperties",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contains",
    "propertyNames",
    "not",
    "if",
    "then",
    "else",
)
_SUBSCHEMAS = ("anyOf", "oneOf", "allOf", "prefixItems")  # a list of schemas
_NAMED_SUBSCHEMAS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")  # name → schema
_DROPPED = ("default", "title")


def _strict(node: Any) -> Any:
    """Make a pydantic schema strict the way structured outputs want it.

    Every object lists all its properties as required (optional ones are already nullable) and
    forbids extra ones; defaults and titles are dropped.

    Only the schema nodes are rewritten, found by the keywords that hold them: the keys of
    ``properties`` or ``$defs`` are names chosen by the user (a field may be called ``title``,
    ``default`` or ``type``), and ``enum``, ``const`` or ``required`` hold values, so neither is
    ever mistaken for a keyword.

    >>> _strict({"title": "M", "type": "object", "properties": {"title": {"title": "Title", "type": "string"}}})
    ... # doctest: +NORMALIZE_WHITESPACE
    {'type': 'object', 'properties': {'title': {'type': 'string'}}, 'required': ['title'],
     'additionalProperties': False}
    """
    if not isinstance(node, Mapping):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key in _NAMED_SUBSCHEMAS and isinstance(value, Mapping):
            value = {name: _strict(sub) for name, sub in value.items()}
        elif key in _SUBSCHEMAS and isinstance(value, list):
            value = [_strict(sub) for sub in value]
        elif key in _SUBSCHEMA:
            value = [_strict(sub) for sub in value] if isinstance(value, list) else _strict(value)
        else:
            value = copy.deepcopy(value)  # a value, not a schema: kept exactly
        out[key] = value
    if out.get("type") == "object" and "properties" in out:
        out["required"] = list(out["properties"])
        out["additionalProperties"] = False
    return out


# --------------------------------------------------------------------------- checking


def _resolve(node: Mapping[str, Any], defs: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in node:
        node = defs[node["$ref"].rsplit("/", 1)[-1]]
    return node


_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def schema_error(value: Any, node: Mapping[str, Any], defs: Mapping[str, Any], path: str) -> str | None:
    """Why ``value`` fails the JSON schema ``node`` (the subset structured outputs use)."""
    node = _resolve(node, defs)
    for key in ("anyOf", "oneOf"):
        if key in node:
            reasons = [schema_error(value, option, defs, path) for option in node[key]]
            if any(r is None for r in reasons):
                return None
            return f"{path} matches none of the allowed forms ({'; '.join(r for r in reasons if r)})"
    if "enum" in node and value not in node["enum"]:
        return f"{path} is {value!r}, not one of {node['enum']}"
    if "const" in node and value != node["const"]:
        return f"{path} must be {node['const']!r}"
    kind = node.get("type")
    if isinstance(kind, list):
        if not any(schema_error(value, {**node, "type": k}, defs, path) is None for k in kind):
            return f"{path} is not of type {kind}"
        return None
    check = _TYPE_CHECKS.get(kind) if isinstance(kind, str) else None
    if check is not None and not check(value):
        return f"{path} should be {kind}, got {type(value).__name__} {value!r}"[:300]
    if kind == "string" and node.get("format") in ("date", "date-time"):
        try:
            (dt.date if node["format"] == "date" else dt.datetime).fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return f"{path} is {value!r}, not an ISO {node['format']}"
    if kind == "array":
        return _array_error(value, node, defs, path)
    if kind == "object":
        return _object_error(value, node, defs, path)
    return None


def _array_error(value: list[Any], node: Mapping[str, Any], defs: Mapping[str, Any], path: str) -> str | None:
    if len(value) < node.get("minItems", 0):
        return f"{path} has {len(value)} items, fewer than {node['minItems']}"
    if "maxItems" in node and len(value) > node["maxItems"]:
        return f"{path} has {len(value)} items, more than {node['maxItems']}"
    if "items" in node:
        for i, item in enumerate(value):
            reason = schema_error(item, node["items"], defs, f"{path}[{i}]")
            if reason:
                return reason
    return None


def _object_error(value: dict[str, Any], node: Mapping[str, Any], defs: Mapping[str, Any], path: str) -> str | None:
    properties = node.get("properties", {})
    for name in node.get("required", ()):
        if name not in value:
            return f"{path} is missing {name!r}"
    if node.get("additionalProperties") is False:
        extra = set(value) - set(properties)
        if extra:
            return f"{path} has unexpected fields {sorted(extra)}"
    for name, sub in properties.items():
        if name in value:
            reason = schema_error(value[name], sub, defs, f"{path}.{name}")
            if reason:
                return reason
    return None


# --------------------------------------------------------------------------- typing columns


def _typed(cells: list[Any], prop: Mapping[str, Any], defs: Mapping[str, Any], index: pd.Index) -> pd.Series:
    """A column whose dtype fits the schema of its field (nullable dtypes, NA for missing)."""
    options = [_resolve(o, defs) for o in prop.get("anyOf", [prop])]
    options = [o for o in options if o.get("type") != "null"] or options
    node = options[0] if len(options) == 1 else {}
    kind = node.get("type")
    if "enum" in node:
        return pd.Series(pd.Categorical(cells, categories=list(node["enum"])), index=index)
    if kind == "integer":
        return pd.Series(pd.array(cells, dtype="Int64"), index=index)
    if kind == "number":
        return pd.Series(pd.array([None if c is None else float(c) for c in cells], dtype="Float64"), index=index)
    if kind == "boolean":
        return pd.Series(pd.array(cells, dtype="boolean"), index=index)
    if kind == "string" and node.get("format") in ("date", "date-time"):
        return pd.Series(pd.to_datetime(cells, utc=node["format"] == "date-time", format="ISO8601"), index=index)
    if kind == "string":
        return pd.Series(pd.array(cells, dtype="string"), index=index)
    return pd.Series(cells, index=index, dtype=object)
