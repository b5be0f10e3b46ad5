"""A call's options are declared once; nothing that shows them to a user can drift from that.

The declarations: :class:`batchkit.core.params.RequestParams` (the Messages params, with
:data:`~batchkit.core.params.SAMPLING_PARAMS` and :data:`~batchkit.core.params.BUILT_PARAMS`, the
params refused), :class:`batchkit.core.options.RunOptions` and
:class:`~batchkit.core.options.EstimateOptions` — each field's default, check and the docstring
under it. What shows them:

- the docs' options reference, *generated* from the declarations (``docs/_ext/batchkit_reference.py``):
  every declared option is a row with its own default and docstring, and no page or README copies
  one by hand;
- the accessors (pandas, Polars, Dask, and the shared verbs): their signatures' defaults are the
  declared ones, an option their docstrings name (``name=``) is declared, and ``estimate``'s own
  options are named where ``estimate`` is documented — they do not copy the other options, they
  point to the reference.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
from pathlib import Path

import pytest

from batchkit.core import options as options_module
from batchkit.core import params as params_module
from batchkit.core.options import ACCESSOR_ARGUMENTS, CLASSIFY_MAX_TOKENS, EstimateOptions, Options, RunOptions
from batchkit.core.params import BUILT_PARAMS, SAMPLING_PARAMS, RequestParams, sdk_params
from batchkit.errors import InvalidOptionError
from batchkit.frontends import dask as dask_frontend
from batchkit.frontends import pandas as pandas_frontend
from batchkit.frontends import polars as polars_frontend
from batchkit.frontends import verbs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs" / "_ext"))
import batchkit_reference as reference  # noqa: E402

DECLARING = (RequestParams, RunOptions, EstimateOptions)


def declared() -> dict[str, tuple[type, dataclasses.Field[object]]]:
    """Every declared option (a field with a check), by name."""
    return {
        f.name: (cls, f)
        for cls in DECLARING
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if "check" in f.metadata
    }


def _docstring(cls: type, name: str) -> str:
    return reference.attribute_docs(Path(inspect.getsourcefile(cls) or ""), cls.__name__).get(name, "")


def test_the_options_reference_is_every_declared_option_with_its_own_default_and_docstring():
    rows = {row["name"]: row for row in reference.options()}
    assert set(rows) == set(declared()) | {"**params"}, "the reference and the declarations name other options"
    table = reference.options_markdown()
    for name, (cls, f) in declared().items():
        doc = _docstring(cls, name)
        assert doc and rows[name]["doc"] == doc, f"{name}: the reference does not carry the docstring under its field"
        default = "none" if f.default is None else f"`{f.default!r}`"
        assert rows[name]["default"] == default, f"{name}: the reference shows another default"
        assert f"| `{name}` | {default} | {reference._plain(doc)} |" in table
    assert rows["**params"]["doc"] == _docstring(RequestParams, "extra")


def test_no_page_copies_an_option_row_by_hand():
    page = (ROOT / "docs" / "reference" / "options.md").read_text()
    assert "```{batchkit-options}" in page, "the options page must generate its table"
    texts = {p: p.read_text() for p in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]}
    for name in declared():
        for path, text in texts.items():
            assert not re.search(rf"^\|\s*`{name}`\s*\|", text, re.M), (
                f"{path.relative_to(ROOT)} has a hand-written row for option {name!r}; it is generated"
            )


@pytest.mark.parametrize("name", [*SAMPLING_PARAMS, *BUILT_PARAMS, "stream"])
def test_every_refused_messages_param_is_refused_and_named_in_the_reference(name):
    value = True if name == "stream" else 0.5
    with pytest.raises(InvalidOptionError) as refused:
        Options.build({"max_tokens": 10, name: value})
    assert refused.value.option == name
    assert name in _docstring(RequestParams, "extra"), f"{name}= is refused but the reference does not say so"


# --------------------------------------------------------------------------- the accessors


ACCESSORS: list[type] = [
    pandas_frontend.ClaudeFrameAccessor,
    pandas_frontend.ClaudeSeriesAccessor,
    polars_frontend.ClaudeFrame,
    polars_frontend.ClaudeLazyFrame,
    dask_frontend.DaskFrameAccessor,
    dask_frontend.DaskSeriesAccessor,
]
VERB_NAMES = ("batch", "submit", "estimate", "classify", "extract", "compare")


def _methods() -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for cls in ACCESSORS:
        out += [(f"{cls.__name__}.{v}", getattr(cls, v)) for v in VERB_NAMES if hasattr(cls, v)]
    return out


def test_the_accessors_defaults_are_the_declared_defaults():
    options = declared()
    for where, method in _methods():
        if where.endswith(".compare"):  # its own sample= (rows compared), not estimate's
            continue
        for p in inspect.signature(method).parameters.values():  # type: ignore[arg-type]
            if p.name not in options or p.default is inspect.Parameter.empty:
                continue
            want = options[p.name][1].default
            if p.name == "max_tokens" and where.endswith(".classify"):
                want = CLASSIFY_MAX_TOKENS
            assert p.default == want, f"{where}({p.name}={p.default!r}) but the option's default is {want!r}"


# Keywords of other libraries' calls shown in the docstrings' examples.
_FOREIGN = {"categories", "values"}


def _docstrings() -> list[tuple[str, str]]:
    out = [(m.__name__, m.__doc__ or "") for m in (pandas_frontend, polars_frontend, dask_frontend, verbs)]
    out += [(cls.__name__, cls.__doc__ or "") for cls in ACCESSORS]
    out += [(where, getattr(method, "__doc__", None) or "") for where, method in _methods()]
    out += [(f"verbs.{v}", getattr(verbs, v).__doc__ or "") for v in verbs.__all__ if callable(getattr(verbs, v))]
    return out


def test_the_accessor_docstrings_name_only_options_that_exist():
    arguments = {p for _, m in _methods() for p in inspect.signature(m).parameters}  # type: ignore[arg-type]
    known = set(declared()) | set(sdk_params()) | set(ACCESSOR_ARGUMENTS) | arguments | _FOREIGN
    for where, doc in _docstrings():
        for name in re.findall(r"(?<![\w.])([a-z_][a-z0-9_]*)=", doc):
            assert name in known, f"the docstring of {where} names {name}=, which no call takes"


def test_estimates_own_options_are_named_where_estimate_is_documented():
    own = [f.name for f in dataclasses.fields(EstimateOptions)]
    reference_doc = pandas_frontend.ClaudeFrameAccessor.estimate.__doc__ or ""
    missing = [name for name in own if name not in reference_doc]
    assert not missing, f"df.claude.estimate's docstring does not name {missing}"
    for cls in ACCESSORS:
        doc = cls.estimate.__doc__ or ""
        named = all(name in doc for name in own)
        assert named or re.search(r"claude\.estimate|ClaudeFrame\.estimate", doc), (
            f"{cls.__name__}.estimate's docstring neither names {own} nor points to df.claude.estimate"
        )


def test_the_one_definition_is_the_one_that_acts():
    """Every declared option is taken by a call, under its declared name and default; the names a
    call refuses and the defaults it uses are the declarations' own (no second copy in options)."""
    given = {name: f.default for name, (_, f) in declared().items()}
    built = Options.build(given, verb="estimate")
    assert built == Options.build({}, verb="estimate")
    assert options_module.SAMPLING_PARAMS is params_module.SAMPLING_PARAMS
    assert built.params.max_tokens == params_module.DEFAULT_MAX_TOKENS
    assert options_module.DEFAULT_MODEL is params_module.DEFAULT_MODEL
