"""Bad input to the call side — df.claude.*, series.claude.* and the core — fails before any call.

Each case in ``BAD`` must raise a :class:`batchkit.BatchkitError` subclass (never a raw
exception from pandas, the SDK, sqlite3, msgspec or the standard library) whose message names
the problem and the fix, and the simulator — the default client of every case — must show no
batch created and no message answered. ``SURPRISING`` holds inputs that are valid but easy to
get wrong, each asserting the behaviour the README documents.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import anthropic
import numpy as np
import pandas as pd
import pydantic
import pytest

import batchkit
from batchkit import (
    BatchkitError,
    BudgetExceededError,
    CellError,
    ColumnCollisionError,
    ColumnLengthError,
    InvalidOptionError,
    MediaError,
    MissingColumnError,
    NotAFrameError,
    OptionTypeError,
    PromptError,
    UnknownModelError,
    UnknownOptionError,
)
from batchkit.engine import calls
from tests.conftest import make_sim


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    call: Callable[[pd.DataFrame, Path], Any]
    error: type[BatchkitError]
    words: tuple[str, ...]
    """Regexes the message must contain (case-insensitive): the problem and the fix."""


def frame() -> pd.DataFrame:
    return pd.DataFrame({"review": ["good film", "bad film"], "stars": [5, 1]})


def batch(**kw: Any) -> Callable[[pd.DataFrame, Path], Any]:
    return lambda df, tmp: df.claude.batch("Sentiment: {review}", **kw)


def submit(**kw: Any) -> Callable[[pd.DataFrame, Path], Any]:
    return lambda df, tmp: df.claude.submit("Sentiment: {review}", **kw)


def estimate(**kw: Any) -> Callable[[pd.DataFrame, Path], Any]:
    return lambda df, tmp: df.claude.estimate("Sentiment: {review}", **kw)


def classify(labels: Any = ("positive", "negative"), **kw: Any) -> Callable[[pd.DataFrame, Path], Any]:
    return lambda df, tmp: df.claude.classify("Sentiment: {review}", labels=labels, **kw)


def extract(schema: Any = None, **kw: Any) -> Callable[[pd.DataFrame, Path], Any]:
    return lambda df, tmp: df.claude.extract("Facts: {review}", schema=schema or {"year": int}, **kw)


def compare(**kw: Any) -> Callable[[pd.DataFrame, Path], Any]:
    kw.setdefault("models", ["claude-haiku-4-5", "claude-sonnet-4-6"])
    return lambda df, tmp: df.claude.compare("Sentiment: {review}", **kw)


def compare_on(change: Callable[[pd.DataFrame], pd.DataFrame], **kw: Any) -> Callable[[pd.DataFrame, Path], Any]:
    """``compare`` on the test frame as ``change`` leaves it."""
    return lambda df, tmp: compare(**kw)(change(df), tmp)


def prompt(text: Any, **kw: Any) -> Callable[[pd.DataFrame, Path], Any]:
    return lambda df, tmp: df.claude.batch(text, **kw)


def series(method: str, text: str = "Say {}", **kw: Any) -> Callable[[pd.DataFrame, Path], Any]:
    return lambda df, tmp: getattr(df["review"].claude, method)(text, **kw)


def price_file(content: str, name: str = "prices.json") -> Callable[[pd.DataFrame, Path], Any]:
    def call(df: pd.DataFrame, tmp: Path) -> Any:
        path = tmp / name
        path.write_text(content)
        return df.claude.estimate("{review}", prices=path)

    return call


def media_cells(
    make: Callable[[Path], list[Any]], text: str = "Describe {photo:image}"
) -> Callable[[pd.DataFrame, Path], Any]:
    """A batch over a column of media cells that ``make`` writes into the test's folder."""
    return lambda df, tmp: df.assign(photo=make(tmp)).claude.batch(text)


def _image(tmp: Path, name: str, size: tuple[int, int] = (4, 4), fmt: str | None = None) -> str:
    from PIL import Image

    path = tmp / name
    Image.new("RGB", size).save(path, format=fmt)
    return str(path)


def _pdf(tmp: Path, pages: int = 1) -> str:
    from batchkit.core.media import text_pdf

    path = tmp / f"doc{pages}.pdf"
    path.write_bytes(text_pdf(["page"] * pages))
    return str(path)


def _fifo(tmp: Path) -> str:
    import os

    os.mkfifo(tmp / "pipe")
    return str(tmp / "pipe")


def _sparse_png(tmp: Path) -> str:
    """A 50 GB file (sparse: nothing on disk) that starts like a PNG."""
    path = Path(_image(tmp, "huge.png"))
    with open(path, "r+b") as f:
        f.truncate(50 * 10**9)
    return str(path)


def dask_to_parquet(where: str) -> Callable[[pd.DataFrame, Path], Any]:
    def call(df: pd.DataFrame, tmp: Path) -> Any:
        import dask.dataframe as dd

        return dd.from_pandas(df, npartitions=1).claude.batch("Sentiment: {review}", progress=False, to_parquet=where)

    return call


def deep(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = [value]
    return value


def deep_cell(df: pd.DataFrame, tmp: Path) -> Any:
    df = df.copy()
    df["notes"] = pd.Series(["fine", deep(5000)], dtype=object)
    return df.claude.batch("{review} {notes}")


TOOL = {"name": "lookup", "input_schema": {"type": "object", "properties": {}}}


class WithComplex(pydantic.BaseModel):
    year: int
    z: complex


BAD = [
    # ---- a typo'd or unknown option: refused, naming the nearest valid one
    Case("typo-max_token", batch(max_token=20), UnknownOptionError, ("max_token=", "did you mean max_tokens")),
    Case("unknown-foo", batch(foo=1), UnknownOptionError, ("foo=", "neither", "batchkit options")),
    Case("typo-poll_interval", submit(pol_interval=1), UnknownOptionError, ("did you mean poll_interval",)),
    Case("typo-chunk_size", estimate(chunksize=10), UnknownOptionError, ("did you mean chunk_size",)),
    Case("typo-max_cost-classify", classify(max_cots=1), UnknownOptionError, ("did you mean max_cost",)),
    Case("typo-system", batch(systen="x"), UnknownOptionError, ("did you mean system",)),
    Case("typo-stop_sequences", batch(stop_sequence=["x"]), UnknownOptionError, ("did you mean stop_sequences",)),
    Case("typo-tools", batch(tool=[TOOL]), UnknownOptionError, ("did you mean tools",)),
    Case("typo-prefix-extract", extract(prefx="llm_"), UnknownOptionError, ("did you mean prefix",)),
    Case(
        "labels-on-batch",
        batch(labels=["a", "b"]),
        UnknownOptionError,
        (r"labels= is an argument of classify\(\)", r"df\.claude\.classify\(prompt, labels="),
    ),
    Case("schema-on-batch", batch(schema={"x": int}), UnknownOptionError, (r"schema= is an argument of extract\(\)",)),
    Case(
        "prefix-on-classify", classify(prefix="llm_"), UnknownOptionError, (r"prefix= is an argument of extract\(\)",)
    ),
    Case("extract-output", extract(output="x"), UnknownOptionError, ("prefix=",)),
    Case(
        "estimate-only-option-in-batch",
        batch(typical_output_tokens=5),
        UnknownOptionError,
        ("estimate\\(\\) only", "remove it"),
    ),
    Case("beta-betas", batch(betas=["output-300k-2026-03-24"]), UnknownOptionError, ("beta", "remove betas=")),
    Case("beta-context_management", batch(context_management={}), UnknownOptionError, ("beta", "remove")),
    Case("beta-mcp_servers", submit(mcp_servers=[]), UnknownOptionError, ("beta", "remove")),
    Case("series-typo", series("batch", max_token=5), UnknownOptionError, ("did you mean max_tokens",)),
    # ---- the model: checked against the model table
    Case("model-typo-dot", batch(model="claude-haiku-4.5"), UnknownModelError, ("prices=", "check_model=False")),
    Case("model-other-vendor", submit(model="gpt-4o"), UnknownModelError, ("'gpt-4o'", "prices=")),
    Case(
        "model-misspelt", classify(model="claude-sonet-4-6"), UnknownModelError, ("did you mean 'claude-sonnet-4-6'",)
    ),
    Case("model-unknown-estimate", estimate(model="my-finetune"), UnknownModelError, ("prices=",)),
    Case("model-int", batch(model=42), OptionTypeError, ("model must be a model id string", "claude-haiku-4-5")),
    Case("model-empty", batch(model=""), OptionTypeError, ("model must be",)),
    Case(
        "model-None-batch",
        batch(model=None),
        OptionTypeError,
        ("model=None is not a model", "'claude-haiku-4-5'", "leave model= out"),
    ),
    Case("model-None-submit", submit(model=None), OptionTypeError, ("model=None", "'claude-haiku-4-5'")),
    Case("model-None-estimate", estimate(model=None), OptionTypeError, ("model=None", "'claude-haiku-4-5'")),
    Case("model-None-classify", classify(model=None), OptionTypeError, ("model=None", "'claude-haiku-4-5'")),
    Case("model-None-extract", extract(model=None), OptionTypeError, ("model=None", "'claude-haiku-4-5'")),
    Case("model-None-series", series("batch", model=None), OptionTypeError, ("model=None", "'claude-haiku-4-5'")),
    Case(
        "compare-models-None", compare(models=["claude-haiku-4-5", None]), OptionTypeError, ("model id strings", "None")
    ),
    # ---- max_tokens
    Case("max_tokens-0", batch(max_tokens=0), InvalidOptionError, ("max_tokens", "at least 1")),
    Case("max_tokens-negative", batch(max_tokens=-5), InvalidOptionError, ("max_tokens", "at least 1")),
    Case(
        "max_tokens-over-haiku-cap",
        batch(max_tokens=100_000),
        InvalidOptionError,
        ("output cap of 64,000", "max_tokens=64,000 or less"),
    ),
    Case(
        "max_tokens-over-opus-300k",
        batch(model="claude-opus-4-8", max_tokens=300_001),
        InvalidOptionError,
        ("128,000", "300,000 at most", "max_tokens=300,000 or less"),
    ),
    Case(
        "max_tokens-over-cap-uncovered",
        batch(model="claude-fable-5", max_tokens=200_000),
        InvalidOptionError,
        ("128,000", "does not cover claude-fable-5", "claude-opus-4-8"),
    ),
    Case("max_tokens-over-cap-classify", classify(max_tokens=70_000), InvalidOptionError, ("64,000",)),
    Case("max_tokens-float", batch(max_tokens=20.5), OptionTypeError, ("whole number",)),
    Case("max_tokens-string", batch(max_tokens="20"), OptionTypeError, ("whole number", "the string '20'")),
    Case("max_tokens-bool", batch(max_tokens=True), OptionTypeError, ("whole number",)),
    # ---- system
    Case("system-int", batch(system=123), OptionTypeError, ("system must be a string or a list of text blocks",)),
    Case("system-list-of-str", batch(system=["text"]), OptionTypeError, ("plain string", "system='…'")),
    Case("system-dict", batch(system={"type": "text", "text": "x"}), OptionTypeError, ("single dict", "list")),
    Case("system-empty-list", batch(system=[]), InvalidOptionError, ("no blocks", "leave system out")),
    Case("system-image-block", batch(system=[{"type": "image"}]), OptionTypeError, ("text block",)),
    # ---- stop_sequences
    Case("stop_sequences-int", batch(stop_sequences=5), OptionTypeError, ("list of strings",)),
    Case("stop_sequences-ints", batch(stop_sequences=[1, 2]), OptionTypeError, ("stop_sequences\\[0\\]", "string")),
    Case("stop_sequences-blank", batch(stop_sequences=[""]), OptionTypeError, ("non-blank string",)),
    Case("stop_sequences-set", batch(stop_sequences={"END"}), OptionTypeError, ("list of strings",)),
    # ---- tools and tool_choice
    Case("tools-dict", batch(tools=TOOL), OptionTypeError, ("single tool", "wrap it in a list")),
    Case("tools-string", batch(tools="lookup"), OptionTypeError, ("list of tool definitions",)),
    Case("tools-no-name", batch(tools=[{"input_schema": {"type": "object"}}]), OptionTypeError, ("'name'",)),
    Case("tools-no-schema", batch(tools=[{"name": "x"}]), InvalidOptionError, ("input_schema",)),
    Case("tools-duplicate", batch(tools=[TOOL, TOOL]), InvalidOptionError, ("distinct",)),
    Case(
        "system-too-deep",
        batch(system=[{"type": "text", "text": "x", "citations": deep(5000)}]),
        InvalidOptionError,
        ("nested too deep", "flatten"),
    ),
    Case(
        "tools-too-deep",
        batch(tools=[{**TOOL, "description": deep(5000)}]),
        InvalidOptionError,
        ("nested too deep", "flatten"),
    ),
    Case(
        "tool_choice-unknown-tool",
        batch(tools=[TOOL], tool_choice={"type": "tool", "name": "other"}),
        InvalidOptionError,
        ("does not define", "lookup"),
    ),
    Case("tool_choice-any-no-tools", batch(tool_choice={"type": "any"}), InvalidOptionError, ("needs tools=",)),
    Case(
        "tool_choice-bad-type",
        batch(tool_choice={"type": "sometimes"}),
        InvalidOptionError,
        ("tool_choice\\[.type.\\] must be one of", "'auto'"),
    ),
    # ---- other Messages params, against the SDK's types
    Case("metadata-int-user", batch(metadata={"user_id": 3}), InvalidOptionError, ("metadata.user_id", "string")),
    Case("metadata-typo-key", batch(metadata={"user": "u1"}), InvalidOptionError, ("did you mean 'user_id'",)),
    Case("metadata-string", batch(metadata="u1"), InvalidOptionError, ("metadata", "dict")),
    Case("output_config-effort", batch(output_config={"effort": "hi"}), InvalidOptionError, ("effort", "'low'")),
    Case("service_tier", batch(service_tier="fast"), InvalidOptionError, ("service_tier", "'auto'")),
    Case(
        "thinking-budget-over-max",
        batch(thinking={"type": "enabled", "budget_tokens": 2000}),
        InvalidOptionError,
        ("less than max_tokens",),
    ),
    Case("thinking-no-budget", batch(thinking={"type": "enabled"}), InvalidOptionError, ("budget_tokens",)),
    Case(
        "cache_control-ttl",
        batch(cache_control={"type": "ephemeral", "ttl": "2h"}),
        InvalidOptionError,
        ("ttl", "'5m' or '1h'"),
    ),
    Case("temperature", batch(temperature=0.2), InvalidOptionError, ("temperature=", "remove")),
    Case("top_k", batch(top_k=5), InvalidOptionError, ("top_k=", "remove")),
    Case("stream", batch(stream=True), InvalidOptionError, ("stream=True", "remove")),
    Case("messages", batch(messages=[{"role": "user", "content": "x"}]), InvalidOptionError, ("prompt=",)),
    Case(
        "classify-own-format",
        classify(output_config={"format": {"type": "json_schema", "schema": {}}}),
        InvalidOptionError,
        ("sets output_config\\['format'\\] itself", "remove"),
    ),
    # ---- how to run
    Case("poll_interval-string", batch(poll_interval="fast"), OptionTypeError, ("number of seconds", "the string")),
    Case("poll_interval-inf", batch(poll_interval=float("inf")), InvalidOptionError, ("finite", "leave it out")),
    Case("poll_interval-nan", batch(poll_interval=float("nan")), InvalidOptionError, ("finite",)),
    Case("poll_interval-zero", submit(poll_interval=0), InvalidOptionError, ("> 0",)),
    Case("poll_interval-negative", batch(poll_interval=-1), InvalidOptionError, ("> 0",)),
    Case("chunk_size-0", batch(chunk_size=0), InvalidOptionError, ("from 1 to 100,000", "leave it out")),
    Case("chunk_size-True", batch(chunk_size=True), OptionTypeError, ("whole number",)),
    Case("chunk_size-over-limit", batch(chunk_size=100_001), InvalidOptionError, ("100,000",)),
    Case("chunk_size-float", batch(chunk_size=2.5), OptionTypeError, ("whole number",)),
    Case("chunk_bytes-0", batch(chunk_bytes=0), InvalidOptionError, ("1,000 to 256,000,000", "leave it out")),
    Case("chunk_bytes-over-limit", batch(chunk_bytes=10**9), InvalidOptionError, ("256,000,000",)),
    Case("max_retries-negative", batch(max_retries=-1), InvalidOptionError, ("max_retries", "at least 0")),
    Case("max_retries-float", batch(max_retries=1.5), OptionTypeError, ("whole number",)),
    Case("cache-yes", batch(cache="yes"), InvalidOptionError, ("'auto', 'prime', False", "cache='auto'")),
    Case("cache-True", batch(cache=True), InvalidOptionError, ("cache='auto'",)),
    Case("cache_ttl-1d", batch(cache_ttl="1d"), InvalidOptionError, ("'5m', '1h'",)),
    Case("max_cost-string", batch(max_cost="10"), OptionTypeError, ("US dollars", "max_cost=10.0, not max_cost='10'")),
    Case("max_cost-nan", batch(max_cost=float("nan")), InvalidOptionError, ("finite", "no budget limit")),
    Case("max_cost-inf", submit(max_cost=float("inf")), InvalidOptionError, ("finite",)),
    Case("max_cost-negative", batch(max_cost=-1), InvalidOptionError, (">= 0",)),
    Case(
        "prices-missing-file",
        estimate(prices="/nonexistent/prices.json"),
        batchkit.ConfigurationError,
        ("'/nonexistent/prices.json'", "does not exist", "JSON or TOML"),
    ),
    Case("prices-bad-json", price_file("{not json"), batchkit.ConfigurationError, ("prices.json", "not valid JSON")),
    Case(
        "prices-bad-toml",
        price_file("= x", "prices.toml"),
        batchkit.ConfigurationError,
        ("prices.toml", "not valid TOML"),
    ),
    Case("prices-file-a-list", price_file("[1, 2]"), batchkit.ConfigurationError, ("table of model id",)),
    Case(
        "prices-nan",
        batch(prices={"claude-haiku-4-5": {"input": float("nan")}}),
        batchkit.ConfigurationError,
        ("'input'", "number >= 0"),
    ),
    Case(
        "prices-inf-new-model",
        batch(model="new", prices={"new": {"input": 1, "output": float("inf")}}),
        batchkit.ConfigurationError,
        ("'output'", "number >= 0"),
    ),
    Case("prices-int", batch(prices=42), OptionTypeError, ("prices= must be a dict",)),
    Case(
        "prices-zero-cap",
        batch(prices={"m": {"input": 1, "output": 2, "max_output_tokens": 0}}, model="m"),
        batchkit.ConfigurationError,
        ("max_output_tokens", ">= 1"),
    ),
    Case("client-string", batch(client="sk-ant-xxx"), OptionTypeError, ("anthropic.Anthropic",)),
    Case(
        "client-async",
        batch(client=anthropic.AsyncAnthropic(api_key="x")),
        OptionTypeError,
        ("AsyncAnthropic", "anthropic.Anthropic"),
    ),
    Case("store-int", batch(store=123), OptionTypeError, ("store=", "path")),
    Case("progress-string", batch(progress="yes"), OptionTypeError, ("True or False",)),
    Case("check_model-string", batch(check_model="no"), OptionTypeError, ("True or False",)),
    # ---- estimate's own options
    Case("sample-0", estimate(sample=0), InvalidOptionError, ("sample", "at least 1")),
    Case("sample-string", estimate(sample="5"), OptionTypeError, ("whole number",)),
    Case("typical-negative", estimate(typical_output_tokens=-5), InvalidOptionError, ("typical_output_tokens",)),
    Case("typical-zero", estimate(typical_output_tokens=0), InvalidOptionError, ("at least 1",)),
    Case("hit_rate-over-1", estimate(hit_rate=1.5), InvalidOptionError, ("within 0..1",)),
    Case("hit_rate-reversed", estimate(hit_rate=(0.9, 0.3)), InvalidOptionError, ("low <= high",)),
    Case("hit_rate-string", estimate(hit_rate="high"), OptionTypeError, ("fraction",)),
    Case("hit_rate-nan", estimate(hit_rate=float("nan")), InvalidOptionError, ("within 0..1",)),
    Case("sample_answers-0", estimate(sample_answers=0), InvalidOptionError, ("sample_answers", "from 1")),
    Case("sample_answers-string", estimate(sample_answers="20"), OptionTypeError, ("sample_answers", "whole number")),
    Case("sample_answers-bool", estimate(sample_answers=True), OptionTypeError, ("sample_answers", "whole number")),
    Case("sample_answers-huge", estimate(sample_answers=100_000), InvalidOptionError, ("1,000", "calibrate=job")),
    Case(
        "sample_answers-whole-run",
        estimate(sample_answers=2),
        InvalidOptionError,
        ("sample_answers=2", "2 distinct requests", "whole run", "standard price", "fewer"),
    ),
    Case(
        "sample_answers-and-calibrate",
        estimate(sample_answers=1, calibrate=types.SimpleNamespace(outcomes=None, spec=None)),
        InvalidOptionError,
        ("sample_answers= or calibrate=, not both",),
    ),
    Case("sample_answers-in-batch", batch(sample_answers=20), UnknownOptionError, ("option of estimate",)),
    # ---- the prompt and the cells
    Case("conversion-x", prompt("{review!x}"), PromptError, ("!x", "!r", "!s", "!a")),
    Case("format-on-text", prompt("{review:.2f}"), CellError, ("row 0", "'review'", ":.2f", "convert the column")),
    Case("unknown-column", prompt("{revew}"), MissingColumnError, ("'revew'", "'review'")),
    Case("malformed-template", prompt("{review"), PromptError, ("not a valid template", "\\{\\{")),
    Case("empty-placeholder", prompt("{}"), PromptError, ("name a column",)),
    Case("prompt-int", prompt(123), PromptError, ("string or a callable",)),
    Case("callable-returns-int", prompt(lambda row: 5), PromptError, ("must return a string",)),
    Case(
        "callable-raises",
        prompt(lambda row: row["revew"]),
        PromptError,
        ("raised KeyError", "row 0", "return None", "'review'"),
    ),
    Case("deep-cell", deep_cell, CellError, ("row 1", "'notes'", "nested too deep")),
    # ---- images and PDFs (a missing file is no error: its row is skipped)
    Case(
        "media-bmp",
        media_cells(lambda t: [_image(t, "a.png"), _image(t, "b.bmp")]),
        MediaError,
        ("row 1", "'photo'", "BMP data", "image/png", "set the cell to None"),
    ),
    Case(
        "media-text-file",
        media_cells(lambda t: [_image(t, "a.png"), __file__]),
        MediaError,
        ("row 1", "unrecognised data", "Convert"),
    ),
    Case(
        "media-pdf-as-image",
        media_cells(lambda t: [_pdf(t), _pdf(t)]),
        MediaError,
        ("row 0", "is a PDF", "use \\{…:pdf\\}"),
    ),
    Case(
        "media-image-as-pdf",
        media_cells(lambda t: [_image(t, "a.png")] * 2, "{photo:pdf}"),
        MediaError,
        ("row 0", "image/png", "use \\{…:image\\}"),
    ),
    Case(
        "media-too-wide",
        media_cells(lambda t: [_image(t, "w.png", (8001, 1)), None]),
        MediaError,
        ("row 0", "8001×1 px", "8000×8000", "resize"),
    ),
    Case(
        "media-too-many-pages",
        media_cells(lambda t: [_pdf(t, 101)] * 2, "{photo:media}"),
        MediaError,
        ("101 pages", "100 per request"),
    ),
    Case(
        "media-dev-zero",
        media_cells(lambda t: [_image(t, "a.png"), "/dev/zero"]),
        MediaError,
        (
            "row 1",
            "'photo'",
            "/dev/zero, which is a character device, not a regular file",
            "regular files only",
            "set the cell to None",
        ),
    ),
    Case(
        "media-fifo",
        media_cells(lambda t: [_fifo(t), _image(t, "a.png")]),
        MediaError,
        ("row 0", "FIFO \\(named pipe\\), not a regular file", "Point the cell at an image or PDF file"),
    ),
    Case(
        "media-directory",
        media_cells(lambda t: [str(t), _image(t, "a.png")]),
        MediaError,
        ("row 0", "which is a directory", "regular files only"),
    ),
    Case(
        "media-nul-byte-path",
        media_cells(lambda t: [_image(t, "a.png"), "/tmp/photo\x00.png"]),
        MediaError,
        ("row 1", "NUL byte", "Fix the path in the cell"),
    ),
    Case(
        "media-huge-sparse-file",
        media_cells(lambda t: [_sparse_png(t), None]),
        MediaError,
        ("row 0", "50,000,000,000 bytes", "over the API's 5 MB"),
    ),
    Case(
        "media-cell-int",
        media_cells(lambda t: [1, 2]),
        CellError,
        ("row 0", "file path, an http\\(s\\) URL, bytes or a Pillow image", "None"),
    ),
    Case(
        "media-too-many-images",
        lambda df, tmp: df.claude.batch(lambda row: [Path(_image(tmp, "a.png"))] * 101),
        MediaError,
        ("101 images", "over the API's 100", "Split"),
    ),
    Case(
        "media-large-among-many",
        lambda df, tmp: df.claude.batch(
            lambda row: [Path(_image(tmp, "a.png"))] * 20 + [Path(_image(tmp, "b.png", (2100, 2)))]
        ),
        MediaError,
        ("21 images", "2000×2000", "2100×2"),
    ),
    Case(
        "callable-bad-block",
        prompt(lambda row: [{"type": "audio", "data": "x"}]),
        PromptError,
        ("type 'audio'", "'text', 'image', 'document'"),
    ),
    Case(
        "callable-block-no-source",
        prompt(lambda row: [{"type": "image", "data": "x"}]),
        PromptError,
        ("no 'source' dict", "base64"),
    ),
    Case("callable-empty-list", prompt(lambda row: []), PromptError, ("empty list", "return None")),
    # ---- Dask's to_parquet=: a folder batchkit can write
    Case(
        "dask-to_parquet-proc",
        dask_to_parquet("/proc/x"),
        batchkit.OutputPathError,
        ("'/proc/x' cannot be written", "give a folder this process can create and write"),
    ),
    Case(
        "dask-to_parquet-nul",
        dask_to_parquet("/tmp/answers\x00"),
        batchkit.OutputPathError,
        ("NUL byte", "fix the path"),
    ),
    # ---- output columns never replace input columns
    Case("output-is-input", batch(output="review"), ColumnCollisionError, ("'review'", "another output=", "drop")),
    Case("submit-output-is-input", submit(output="stars"), ColumnCollisionError, ("'stars'", "another output=")),
    Case("estimate-output-is-input", estimate(output="review"), ColumnCollisionError, ("another output=",)),
    Case("classify-output-is-input", classify(output="stars"), ColumnCollisionError, ("'stars'",)),
    Case(
        "classify-reasoning-is-input",
        lambda df, tmp: df.assign(classification_reasoning=1).claude.classify("{review}", ["a", "b"], reasoning=True),
        ColumnCollisionError,
        ("'classification_reasoning'",),
    ),
    Case("extract-field-is-input", extract({"review": str}), ColumnCollisionError, ("another prefix=", "drop")),
    Case("output-empty", batch(output=""), OptionTypeError, ("non-empty column name",)),
    Case("output-int", batch(output=5), OptionTypeError, ("non-empty column name",)),
    # ---- classify
    Case("labels-ints", classify([1, 2]), OptionTypeError, ("must be strings", "\\['1', '2'\\]")),
    Case("labels-one", classify(["only"]), InvalidOptionError, ("at least two", "\\['yes', 'no'\\]")),
    Case("labels-string", classify("pos,neg"), OptionTypeError, ("list of strings",)),
    Case("labels-duplicate", classify(["a", "a"]), InvalidOptionError, ("distinct",)),
    Case("labels-blank", classify(["a", " "]), InvalidOptionError, ("blank",)),
    Case("labels-none", classify(None), OptionTypeError, ("list of strings",)),
    Case("multi-string", classify(multi="yes"), OptionTypeError, ("True or False",)),
    # ---- extract
    Case("schema-complex", extract({"z": complex}), InvalidOptionError, ("'z'", "complex", "Supported: str")),
    Case("schema-object", extract({"z": object}), InvalidOptionError, ("'z'", "Supported")),
    Case("schema-dict", extract({"z": dict}), InvalidOptionError, ("Supported",)),
    Case("schema-bare-list", extract({"z": list}), InvalidOptionError, ("list\\[str\\]",)),
    Case("schema-model-with-complex", extract(WithComplex), InvalidOptionError, ("WithComplex.z",)),
    Case("schema-list", extract(["year"]), batchkit.ConfigurationError, ("pydantic model class or a dict",)),
    Case("schema-bad-name", extract({"not valid": str}), batchkit.ConfigurationError, ("identifiers",)),
    Case("prefix-int", extract(prefix=5), OptionTypeError, ("prefix must be a string",)),
    # ---- compare and calibrate
    Case("compare-models-empty", compare(models=[]), OptionTypeError, ("list of model ids",)),
    Case("compare-models-int", compare(models=[3]), OptionTypeError, ("model id strings",)),
    Case("compare-models-twice", compare(models=["claude-haiku-4-5"] * 2), InvalidOptionError, ("twice",)),
    Case("compare-model-unknown", compare(models=["claude-haiku-4-5", "claude-nope"]), UnknownModelError, ("prices=",)),
    Case("compare-model-singular", compare(model="claude-haiku-4-5"), UnknownOptionError, ("models=",)),
    Case("compare-sample-0", compare(sample=0), InvalidOptionError, ("at least 1 row",)),
    Case("compare-sample-fraction", compare(sample=1.5), InvalidOptionError, ("fraction", "number of rows")),
    Case("compare-sample-string", compare(sample="200"), OptionTypeError, ("number of rows",)),
    Case("compare-truth-missing", compare(truth="gold"), MissingColumnError, ("'gold'", "review")),
    Case(
        "compare-truth-not-labels",
        compare(task="classify", labels=["pos", "neg"], truth="review"),
        InvalidOptionError,
        ("not labels", "map"),
    ),
    Case("compare-task-unknown", compare(task="label"), InvalidOptionError, ("'classify'",)),
    Case("compare-labels-without-task", compare(labels=["a", "b"]), InvalidOptionError, ("task=",)),
    Case("compare-classify-no-labels", compare(task="classify"), InvalidOptionError, ("labels=",)),
    Case("compare-extract-no-schema", compare(task="extract"), InvalidOptionError, ("schema=",)),
    Case("compare-target-percent", compare(target=80), InvalidOptionError, ("fraction", "0.8")),
    Case("compare-target-string", compare(target="high"), OptionTypeError, ("fraction",)),
    Case("compare-reference-other", compare(reference="claude-opus-4-7"), InvalidOptionError, ("not one of",)),
    Case("compare-prompts-int", compare(prompts=5), OptionTypeError, ("prompts",)),
    Case("compare-prompts-repeat", compare(prompts=["Sentiment: {review}"]), InvalidOptionError, ("repeats",)),
    Case("compare-unknown-column", compare(prompts=["Say {x}"]), MissingColumnError, ("'x'",)),
    Case("compare-max-tokens-0", compare(max_tokens=0), InvalidOptionError, ("max_tokens",)),
    Case("compare-seed-float", compare(seed=1.5), OptionTypeError, ("seed",)),
    # a sample compare could not score is refused before it is paid for
    Case("compare-empty-frame", compare_on(lambda df: df.iloc[:0]), InvalidOptionError, ("no rows", "filter")),
    Case(
        "compare-truth-all-missing",
        compare_on(lambda df: df.assign(gold=None), truth="gold"),
        InvalidOptionError,
        ("'gold' has no values", "fill it in", "leave truth= out"),
    ),
    Case(
        "compare-truth-all-blank",
        compare_on(lambda df: df.assign(gold=["", " "]), truth="gold"),
        InvalidOptionError,
        ("missing or blank",),
    ),
    Case(
        "compare-truth-not-in-sample",
        compare_on(lambda df: df.assign(gold=[None, "good"]), truth="gold", sample=1),
        InvalidOptionError,
        ("none of the sample's 1 rows has a truth value", "1 of 2", "larger sample="),
    ),
    Case(
        "compare-truth-field-not-in-schema",
        compare(task="extract", schema={"year": int}, truth={"yr": "stars"}),
        InvalidOptionError,
        ("\\['yr'\\], not a field of the schema", "\\['year'\\]", "truth=\\{'year': 'stars'\\}"),
    ),
    Case(
        "compare-truth-no-field",
        compare(task="extract", schema={"year": int}, truth={}),
        InvalidOptionError,
        ("names no field", "\\{field: column\\}"),
    ),
    Case(
        "compare-truth-one-column-many-fields",
        compare(task="extract", schema={"year": int, "name": str}, truth="stars"),
        InvalidOptionError,
        ("one column", "2 fields", "truth=\\{'year': 'stars'\\}"),
    ),
    Case(
        "compare-truth-words-for-a-number",
        compare(task="extract", schema={"year": int}, truth="review"),
        InvalidOptionError,
        ("not numbers", "'year'", "'good film'", "pd.to_numeric"),
    ),
    Case(
        "compare-truth-words-for-a-boolean",
        compare(task="extract", schema={"good": bool}, truth={"good": "review"}),
        InvalidOptionError,
        ("not True or False", "map"),
    ),
    Case(
        "compare-truth-words-for-a-date",
        compare(task="extract", schema={"seen": dt.date}, truth="review"),
        InvalidOptionError,
        ("not dates", "pd.to_datetime"),
    ),
    Case(
        "compare-truth-outside-the-choices",
        compare(task="extract", schema={"mood": Literal["happy", "sad"]}, truth="review"),
        InvalidOptionError,
        ("not among", "'happy', 'sad'", "good film", "map"),
    ),
    Case(
        "compare-truth-no-row-scorable",
        compare_on(
            lambda df: df.assign(a=[1, None], b=[None, 2]),
            task="extract",
            schema={"a": int, "b": int},
            truth={"a": "a", "b": "b"},
        ),
        InvalidOptionError,
        ("no row has a value in every truth column",),
    ),
    Case("estimate-calibrate-string", estimate(calibrate="job_1"), OptionTypeError, ("Job", "Comparison")),
    Case("estimate-calibrate-frame", estimate(calibrate=pd.DataFrame()), OptionTypeError, ("sample",)),
    # ---- series.claude
    Case("series-sample-0", series("estimate", sample=0), InvalidOptionError, ("sample",)),
    Case("series-unknown-column", series("batch", "Say {x}"), MissingColumnError, ("'x'",)),
    Case("series-chunk_size-0", series("submit", chunk_size=0), InvalidOptionError, ("chunk_size",)),
    Case("series-system-int", series("batch", system=123), OptionTypeError, ("system",)),
    Case("series-model-unknown", series("estimate", model="claude-nope"), UnknownModelError, ("prices=",)),
    # ---- deadline=: a time ahead, checked before anything is sent
    Case("deadline-past-seconds", batch(deadline=-60), InvalidOptionError, ("deadline has passed", "leave it out")),
    Case(
        "deadline-zero-timedelta",
        submit(deadline=dt.timedelta(0)),
        InvalidOptionError,
        ("deadline has passed", "in the future"),
    ),
    Case(
        "deadline-past-datetime",
        classify(deadline=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)),
        InvalidOptionError,
        ("deadline has passed", "in the future"),
    ),
    Case("deadline-past-auto", extract(deadline=-1.5, mode="auto"), InvalidOptionError, ("deadline has passed",)),
    Case(
        "deadline-past-estimate",
        estimate(deadline=dt.timedelta(minutes=-5)),
        InvalidOptionError,
        ("deadline has passed",),
    ),
    Case(
        "deadline-string",
        batch(deadline="tomorrow"),
        OptionTypeError,
        ("seconds from now", "timedelta", "the string 'tomorrow'"),
    ),
    Case("deadline-nan", submit(deadline=float("nan")), OptionTypeError, ("seconds from now",)),
    Case(
        "deadline-1e300",
        batch(deadline=1e300),
        InvalidOptionError,
        ("deadline=1e\\+300", "100 years", "leave deadline out"),
    ),
    Case("deadline-1e300-auto", batch(deadline=1e300, mode="auto"), InvalidOptionError, ("100 years",)),
    Case(
        "deadline-timedelta-max",
        submit(deadline=dt.timedelta.max),
        InvalidOptionError,
        ("timedelta\\(days=999999999", "100 years", "leave deadline out"),
    ),
    Case(
        "deadline-datetime-max",
        classify(deadline=dt.datetime.max),
        InvalidOptionError,
        ("datetime\\(9999", "100 years", "leave deadline out"),
    ),
    Case(
        "deadline-datetime-max-aware",
        extract(deadline=dt.datetime.max.replace(tzinfo=dt.UTC)),
        InvalidOptionError,
        ("100 years",),
    ),
    Case("deadline-datetime-max-estimate", estimate(deadline=dt.datetime.max), InvalidOptionError, ("100 years",)),
    Case("deadline-datetime-min", submit(deadline=dt.datetime.min), InvalidOptionError, ("deadline has passed",)),
    # ---- the core takes a table: a DataFrame or a mapping of columns
    Case(
        "core-not-a-frame",
        lambda df, tmp: calls.prepare(["a"], "{t}", output="o"),
        NotAFrameError,
        ("pandas DataFrame", "mapping of column name", "got list"),
    ),
    Case(
        "core-a-scalar-column",
        lambda df, tmp: calls.prepare({"t": 5}, "{t}", output="o"),
        NotAFrameError,
        ("column 't' is int 5", "not a sequence of values"),
    ),
    Case(
        "core-a-text-column",
        lambda df, tmp: calls.prepare({"t": "abc"}, "{t}", output="o"),
        NotAFrameError,
        ("column 't' is str 'abc'",),
    ),
    Case(
        "core-a-set-column",
        lambda df, tmp: calls.prepare({"t": {"a", "b"}}, "{t}", output="o"),
        NotAFrameError,
        ("column 't' is set", "one per row"),
    ),
    Case(
        "core-a-2d-column",
        lambda df, tmp: calls.prepare({"t": np.zeros((2, 2))}, "{t}", output="o"),
        NotAFrameError,
        ("column 't' is a 2-dimensional ndarray",),
    ),
    Case(
        "core-ragged-columns",
        lambda df, tmp: calls.prepare({"t": ["a", "b"], "u": ["c"]}, "{t}{u}", output="o"),
        ColumnLengthError,
        ("not all of one length", "'t' has 2", "'u' has 1", "None where a row has none"),
    ),
    Case(
        "core-a-series",
        lambda df, tmp: calls.prepare(df["review"], "{review}", output="o"),
        NotAFrameError,
        ("series.claude",),
    ),
]


@pytest.fixture
def sim():
    sim = make_sim()
    batchkit.set_default_client(sim.client())
    return sim


def test_the_table_is_large_and_its_ids_unique():
    assert len(BAD) >= 80
    assert len({c.id for c in BAD}) == len(BAD)


@pytest.mark.parametrize("case", BAD, ids=[c.id for c in BAD])
def test_bad_input_fails_before_any_call_naming_the_problem_and_the_fix(case: Case, sim, tmp_path):
    with pytest.raises(BatchkitError) as info:
        case.call(frame(), tmp_path)
    assert isinstance(info.value, case.error), f"{type(info.value).__name__}: {info.value}"
    message = str(info.value)
    for word in case.words:
        assert re.search(word, message, re.IGNORECASE), f"{word!r} not in: {message}"
    stats = sim.stats()
    assert (stats["batches_created"], stats["batches.create"], stats["messages_answered"]) == (0, 0, 0)


def test_errors_also_carry_the_built_in_type_a_caller_may_catch():
    assert issubclass(UnknownOptionError, TypeError) and issubclass(OptionTypeError, TypeError)
    assert issubclass(InvalidOptionError, ValueError) and issubclass(ColumnCollisionError, ValueError)
    assert issubclass(NotAFrameError, TypeError) and issubclass(CellError, ValueError)
    with pytest.raises(UnknownOptionError) as info:
        frame().claude.batch("{review}", max_token=5)
    assert (info.value.option, info.value.suggestion) == ("max_token", "max_tokens")
    with pytest.raises(CellError) as cell:
        frame().claude.batch("{review:>{width}}")
    assert isinstance(cell.value, PromptError)


# --------------------------------------------------------------------------- valid, but surprising


def _numpy_numbers(df: pd.DataFrame, sim: Any) -> None:
    out = df.claude.batch(
        "{review}",
        max_tokens=np.int64(20),
        chunk_size=np.int32(1),
        max_cost=np.float64(5.0),
        poll_interval=np.float32(0.01),
        max_retries=np.int8(1),
        progress=False,
    )
    assert out["response"].tolist() == ["re:good film", "re:bad film"]
    assert sim.stats()["batches_created"] == 2  # chunk_size=1, as a numpy integer


def _numpy_labels(df: pd.DataFrame, sim: Any) -> None:
    from batchkit.simulator import Processing, SimConfig, Simulator

    schema_sim = Simulator(config=SimConfig(processing=Processing.instant()))  # answers within the schema
    labels = np.array(["positive", "negative"])  # numpy strings are strings
    out = df.claude.classify(
        "{review}", labels=labels, output="verdict", client=schema_sim.client(), poll_interval=0.01, progress=False
    )
    assert list(out["verdict"].cat.categories) == ["positive", "negative"] and out["verdict"].notna().all()


def _one_stop_string(df: pd.DataFrame, sim: Any) -> None:
    out = pd.DataFrame({"t": ["one STOP two"]}).claude.batch(
        "{t}", stop_sequences="STOP", poll_interval=0.01, progress=False
    )
    assert out["response"].iloc[0] == "re:one "  # one string is one stop sequence


def _none_means_default(df: pd.DataFrame, sim: Any) -> None:
    job = df.claude.submit("{review}", chunk_size=None, chunk_bytes=None, poll_interval=None).wait()
    assert sim.stats()["batches_created"] == 1 and job.spec.run.chunk_size == 100_000


def _series_output_names_the_result(df: pd.DataFrame, sim: Any) -> None:
    named = df["review"].claude.batch("Say {}", output="said", poll_interval=0.01, progress=False)
    assert named.name == "said" and named.tolist() == ["re:Say good film", "re:Say bad film"]
    default = df["review"].claude.batch("Say {}", poll_interval=0.01, progress=False)
    assert default.name == "review"  # the Series' own name when output= is not given
    guess = df["review"].claude.estimate("Say {}", output="said", typical_output_tokens=3)
    assert guess.already_answered == 2 and guess.typical_output_tokens == 3


def _unknown_model_with_its_price(df: pd.DataFrame, sim: Any) -> None:
    prices = {"claude-next": {"input": 2.0, "output": 10.0, "max_output_tokens": 50}}
    new_api = make_sim(models=("claude-next",)).client()  # an API that serves the new model
    guess = df.claude.estimate("{review}", model="claude-next", max_tokens=10, prices=prices, client=new_api)
    assert guess.model == "claude-next" and guess["batch"].upper_bound > 0 and guess.token_source == "count_tokens"
    with pytest.raises(UnknownModelError, match="does not know the model 'claude-next'"):
        df.claude.estimate("{review}", model="claude-next", max_tokens=10, prices=prices)  # this API does not
    with pytest.raises(InvalidOptionError, match="output cap of 50"):
        df.claude.estimate(
            "{review}",
            model="claude-next",
            max_tokens=60,
            prices={"claude-next": {"input": 2.0, "output": 10.0, "max_output_tokens": 50}},
        )


def _unknown_model_unchecked(df: pd.DataFrame, sim: Any) -> None:
    sim2 = make_sim(models=("my-finetune",))
    job = df.claude.submit(
        "{review}", model="my-finetune", check_model=False, client=sim2.client(), poll_interval=0.01
    ).wait()
    assert job.outcomes()["status"].tolist() == ["succeeded", "succeeded"]
    with pytest.raises(UnknownModelError, match="prices="):  # the budget guard needs a price
        df.claude.batch("{review} again", model="my-finetune", check_model=False, max_cost=1.0, client=sim2.client())
    with pytest.raises(UnknownModelError, match="no cost to estimate"):
        df.claude.estimate("{review}", model="my-finetune", check_model=False)
    assert sim2.stats()["batches_created"] == 1  # the refused calls sent nothing


def _a_row_too_large_for_count_tokens(df: pd.DataFrame, sim: Any) -> None:
    big = pd.DataFrame({"t": ["short", "x" * 40_000_000]})  # fits a batch (256 MB), not count_tokens (32 MB)
    guess = big.claude.estimate("{t}", max_tokens=5)
    assert guess.token_source == "count_tokens+offline"
    assert "too large for count_tokens" in str(guess)
    assert guess.input_tokens > 10_000_000  # the big row is counted, offline
    with pytest.raises(BudgetExceededError, match="max_cost"):
        big.claude.batch("{t}", max_tokens=5, max_cost=0.01)
    assert sim.stats()["batches_created"] == 0


def _old_spec_loads(df: pd.DataFrame, sim: Any) -> None:
    # A spec as today's code wrote it before options were typed: read back with the same values.
    from batchkit.core.options import JobSpec

    old = {
        "prompt": "{t}",
        "max_tokens": 20,
        "max_retries": 3,
        "poll_interval": None,
        "chunk_size": 500,
        "chunk_bytes": 1_000_000,
        "cache": False,
        "cache_ttl": "1h",
        "estimate": {
            "mode": "batch",
            "low": 0.1,
            "typical": 0.2,
            "high": 0.3,
            "upper_bound": 0.4,
            "token_source": "offline",
        },
    }
    spec = JobSpec.from_json(old)
    assert (spec.run.max_retries, spec.run.chunk_size, spec.run.max_invalid_retries, spec.max_tokens) == (3, 500, 1, 20)
    assert spec.to_json() == {**old, "max_invalid_retries": 1}
    assert JobSpec.from_json({}).run.chunk_size == 100_000  # an older, sparser spec: today's defaults
    # values older versions let through load too, with today's defaults in their place
    lax = JobSpec.from_json({**old, "poll_interval": float("inf"), "chunk_size": True, "cache": "maybe"})
    assert (lax.run.poll_interval, lax.run.chunk_size, lax.run.cache) == (None, 100_000, "auto")


SURPRISING = [
    pytest.param(_numpy_numbers, id="numpy-numbers-are-numbers"),
    pytest.param(_numpy_labels, id="numpy-string-labels"),
    pytest.param(_one_stop_string, id="one-stop-sequence-as-a-string"),
    pytest.param(_none_means_default, id="none-means-the-default"),
    pytest.param(_series_output_names_the_result, id="series-output-names-the-result"),
    pytest.param(_unknown_model_with_its_price, id="new-model-priced-with-prices="),
    pytest.param(_unknown_model_unchecked, id="unknown-model-with-check_model-False"),
    pytest.param(_a_row_too_large_for_count_tokens, id="40MB-row-counted-offline"),
    pytest.param(_old_spec_loads, id="old-stored-spec-loads-typed"),
]


@pytest.mark.parametrize("check", SURPRISING)
def test_valid_but_surprising_input_behaves_as_documented(check, sim):
    check(frame(), sim)


def test_the_options_docstring_example_runs():
    import doctest

    from batchkit.core import options

    assert doctest.testmod(options).failed == 0
