"""Answers: the default responder and turning any responder's answer into message content.

A responder is ``(params: dict) -> str | dict | list``. It may also accept any of the keyword
arguments ``custom_id`` (``None`` outside batches), ``batch_id`` (``None`` outside batches) and
``attempt`` (1 for the first time a ``custom_id`` is processed, 2 for its first retry in a
later batch, …); they are passed only when its signature names them (or takes ``**kwargs``).

What the answer becomes:

===============================================  =============================================
request                                          answer → content
===============================================  =============================================
``tools`` + ``tool_choice`` ``any``/``tool``     dict → ``tool_use`` input (``stop_reason``
                                                 ``tool_use``); a str → a plain text answer
``tools`` under ``auto`` naming a tool           dict → ``tool_use`` input of the first tool
(:mod:`._tools`: which tools it calls)           called; a list of dicts → one call per tool
                                                 called, in order (parallel); a str → text
``output_config.format`` json_schema             dict/list → its JSON as the text; str as is
anything else                                    str as the text; dict → its JSON
===============================================  =============================================

When ``thinking`` is enabled (``enabled`` or ``adaptive``), a ``thinking`` block with a
signature comes first (:mod:`._thinking`). The last message being the user's tool results,
the default answer is the final text: what the tools returned.

Then ``stop_sequences`` cut the text at the first one found (``stop_reason`` ``stop_sequence``)
and ``max_tokens`` truncates it (``stop_reason`` ``max_tokens``; a tool call that does not fit
comes back as no content at all). A responder that raises makes the request ``errored`` with
``api_error`` (batches) or a 500 (``/v1/messages``), its message naming the exception.

The default responder is deterministic and answers what a request *means*, not how its
bytes are laid out: every choice comes from a hash of :func:`canonical_prompt` (model, system,
messages with their media blocks, tools, output format; keys sorted, a plain-string content the
same as one text block), so two clients that write the same request differently get the same
answer. Labelling tasks — a JSON-schema ``enum`` of sentiment labels, or a prompt asking for
the sentiment or naming positive/negative — are answered by a small lexicon heuristic
(:mod:`._sentiment`, Korean and English, with negation) that reads the prompt's text only;
its accuracy on the shipped data is measured in ``bench/bench_responder.py`` and stated in the
simulator's README. These are simulated answers, not Claude's: plausible enough that a demo
reads right, never a measure of a model's quality.

Models answer differently, in a simulated, deterministic way (:data:`SIMULATED_MODELS`), so that
``df.claude.compare`` shows differences offline: where the text shows no sentiment, a weaker
model family guesses a polar label for a fixed share of texts (chosen by a hash of the model and
the prompt's text, so the same request always gets the same answer), and a stronger one names
more words in a free-text answer. The rates are
made up to make a comparison show something; they are **not** a benchmark of Claude.

A JSON-schema object with a numeric property named ``confidence`` gets the model's simulated
confidence in the label beside it (:mod:`._confidence`): higher for a verdict from evidence,
lower for a guess, with per-model noise — informative but imperfect, measured in
``bench/bench_responder.py`` (on the 2,000 tweets, haiku's answers at confidence ≥ 0.8 are
right 73.7% of the time, below 0.8 52.8%; opus's 81.5% and 57.9%). Simulated, never a
benchmark of Claude.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import operator
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from ._confidence import NO_EVIDENCE_BASE, confidence, evidence_base, scaled
from ._json import _enc_hook, encode
from ._media import media_answer
from ._prompts import OPTION_KEYS as _OPTION_KEYS
from ._prompts import Shared, options
from ._sentiment import Prefix, polarity_lower, reading_keys, score_lower
from ._thinking import thinking_block
from ._tools import called_tools, tool_results_text

__all__ = [
    "SIMULATED_MODELS",
    "answer_mode",
    "canonical_hash",
    "canonical_prompt",
    "chosen_tool",
    "default_answer",
    "default_responder",
    "pick_label",
    "plain_answer",
    "plain_hash",
    "responder_caller",
    "sentiment_label",
    "shape_answer",
    "shape_thought",
    "text_answer",
    "text_answers",
]

_MASK = (1 << 64) - 1
_PUNCT = ".,!?;:\"'()[]{}<>*`"
_STOPWORDS = frozenset(
    [
        "this",
        "that",
        "with",
        "from",
        "have",
        "will",
        "your",
        "what",
        "when",
        "where",
        "which",
        "there",
        "their",
        "they",
        "them",
        "then",
        "than",
        "into",
        "about",
        "would",
        "could",
        "should",
        "these",
        "those",
        "been",
        "were",
        "also",
        "just",
        "like",
        "only",
        "some",
        "such",
        "very",
        "more",
        "most",
        "other",
        "over",
        "each",
        "does",
        "following",
        "text",
        "review",
        "answer",
        "classify",
        "given",
        "please",
        "write",
        "respond",
        "reply",
        "sentence",
        "word",
        "words",
        "following",
        "below",
        "above",
        "tell",
        "explain",
        "describe",
        "summarize",
        "summarise",
        "list",
        "give",
    ]
)
_SENTIMENT = ("positive", "negative", "neutral", "mixed")
_DEFAULT_LABELS = ("positive", "negative", "neutral")
_OPENERS = (
    "The text is mainly about {}.",
    "In short: {}.",
    "Key points: {}.",
    "This concerns {}.",
)


_canonical_json = msgspec.json.Encoder(enc_hook=_enc_hook, order="sorted").encode
"""Compact JSON with every object's keys sorted: the same value whatever order it was written in."""


def canonical_hash(params: dict) -> int:
    """A stable hash of what the request means (:func:`canonical_prompt`): decoding knobs such
    as ``max_tokens`` or ``stop_sequences`` do not change the answer, only how it is cut."""
    return _mix(zlib.crc32(_canonical_json(canonical_prompt(params))), 0)


_hash = canonical_hash


def plain_hash(model: str, system: str | None, turns: list[tuple[str, str]]) -> int:
    """:func:`canonical_hash` of params whose contents and system are strings, from their
    parts: ``turns`` is ``(role, content)`` per message (no JSON decoded to get them)."""
    return _mix(zlib.crc32(_canonical_json([model, system or None, turns])), 0)


def canonical_prompt(params: dict) -> list:
    """The part of a request that decides its answer, in one canonical form.

    Model, system, messages (text, images, documents, tool calls and results), tools,
    ``tool_choice`` and the output format — not ``max_tokens``, ``stop_sequences``, sampling
    knobs or ``cache_control`` marks, which change how an answer is cut or billed but not what
    it is. A plain-string ``content`` (or ``system``) is the same as a list holding one text
    block with that string. Hashed as JSON with sorted keys, so key order and whitespace in
    what the client sent make no difference.
    """
    messages = []
    for message in params.get("messages") or ():
        content = message.get("content")
        messages.append((message.get("role"), content if type(content) is str else _content(content)))
    system = params.get("system")
    if system is not None and type(system) is not str:
        system = _content(system)
    prompt = [params.get("model"), system or None, messages]
    if "tools" in params or "output_config" in params:
        prompt.append([_strip(t) for t in params.get("tools") or ()])
        prompt.append(params.get("tool_choice"))
        prompt.append((params.get("output_config") or {}).get("format"))
    return prompt


def _content(content: Any) -> Any:
    """A message's block list in canonical form: one lone text block is its string."""
    if not isinstance(content, list):
        return content
    if len(content) == 1:
        block = content[0]
        if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
            return block["text"]
    return [_strip(block) for block in content]


def _strip(block: Any) -> Any:
    """A block or tool without its ``cache_control`` mark (and nested ones, in tool results)."""
    if not isinstance(block, dict):
        return block
    if block.get("type") == "text" and len(block) > 2:
        return {"type": "text", "text": block.get("text")}
    out = {k: v for k, v in block.items() if k != "cache_control"}
    if isinstance(out.get("content"), list):
        out["content"] = _content(out["content"])
    return out


def _mix(h: int, salt: int) -> int:
    h = (h ^ (salt * 0x9E3779B97F4A7C15)) & _MASK
    h = ((h ^ (h >> 31)) * 0xBF58476D1CE4E5B9) & _MASK
    return h ^ (h >> 29)


def _last_user_text(params: dict) -> str:
    messages = params.get("messages") or ()
    if messages:
        last = messages[-1]
        content = last.get("content")
        if type(content) is str and last.get("role") == "user":
            return content[:4000]
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content[:4000]
        return " ".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")[:4000]
    return ""


def _words(text: str, limit: int = 8) -> list[str]:
    """The first distinct words of four letters or more that carry meaning, lower-cased."""
    seen: list[str] = []
    for token in text.split():
        word = token.strip(_PUNCT).lower()
        if len(word) >= 4 and word.isalpha() and word not in _STOPWORDS and word not in seen:
            seen.append(word)
            if len(seen) == limit:
                break
    return seen


_POLARITY_OF_LABEL = {
    **dict.fromkeys(
        (
            "positive",
            "pos",
            "good",
            "favorable",
            "favourable",
            "happy",
            "praise",
            "satisfied",
            "like",
            "긍정",
            "긍정적",
            "호평",
        ),
        "positive",
    ),
    **dict.fromkeys(
        (
            "negative",
            "neg",
            "bad",
            "unfavorable",
            "unfavourable",
            "unhappy",
            "complaint",
            "dissatisfied",
            "dislike",
            "부정",
            "부정적",
            "혹평",
        ),
        "negative",
    ),
    **dict.fromkeys(("neutral", "neither", "none", "중립", "중립적", "보통"), "neutral"),
    **dict.fromkeys(("mixed", "both", "복합"), "mixed"),
}


SIMULATED_MODELS: dict[str, tuple[float, int]] = {
    "haiku": (0.35, 3),
    "sonnet": (0.15, 4),
    "opus": (0.05, 6),
    "fable": (0.03, 6),
    "mythos": (0.03, 6),
}
"""Simulated per-model differences, by the model family named in the id: ``(share of verdicts
without evidence that the model turns into a guess, words named in a free-text answer)``. Where
the lexicons find no sentiment at all (the heuristic would answer neutral), a weaker simulated
model guesses positive or negative instead; a verdict with evidence is never changed. A model id
naming none of these families answers like ``sonnet``. Made up so that a comparison on the
simulator shows differences — **simulated quality, never a benchmark of Claude**. Measured on
the 2,000 shipped tweets (``classify``): haiku 56.3%, sonnet 59.6%, opus 61.3% right; a
``confidence`` property in a schema gets each model's simulated confidence (the simulator's README)."""
_SIMULATED_DEFAULT = SIMULATED_MODELS["sonnet"]


@functools.lru_cache(maxsize=256)
def _simulated(model: Any) -> tuple[int, int, int]:
    """``(guess threshold out of 2**32, crc32 seed of the model, free-text words)`` for a model."""
    name = model.lower() if isinstance(model, str) else ""
    rate, words = next((v for family, v in SIMULATED_MODELS.items() if family in name), _SIMULATED_DEFAULT)
    return int(rate * (1 << 32)), zlib.crc32(name.encode()), words


def sentiment_label(score: float, model: Any = None, low: str = "") -> str:
    """``"positive"``, ``"negative"`` or ``"neutral"`` for a :func:`polarity` score.

    The one place a score becomes a verdict, and so the one place a model's simulated quality
    acts: with no evidence (score 0), ``model`` guesses a polar label for its share of texts
    (:data:`SIMULATED_MODELS`), chosen by a crc32 of the model and the (lower-cased) text
    ``low`` — deterministic, and cheap on the hot path.
    """
    if score:
        return "positive" if score > 0 else "negative"
    if model is None:
        return "neutral"
    threshold, seed, _ = _simulated(model)
    draw = zlib.crc32(low.encode(), seed)
    if draw >= threshold:
        return "neutral"
    return "positive" if draw & 1 else "negative"


def _sentiment_pick(
    labels: Sequence[Any], low: str, h: int | Callable[[], int], model: Any = None, prefix: Prefix | None = None
) -> Any:
    """A sentiment label that follows the (lower-cased) text's wording (see ``_sentiment``).

    ``labels`` may name the polarities in other words (``good``/``bad``, ``긍정``/``부정``).
    With no evidence either way the answer is the neutral label if there is one, else
    ``mixed``, else a polar label by hash (``h``, or a function giving it, called only then).
    """
    want = sentiment_label(polarity_lower(low, prefix), model, low)
    if labels is _DEFAULT_LABELS:
        return want
    return _labelled(want, labels, _by_polarity(labels if type(labels) is tuple else tuple(labels)), h)


def _labelled(want: str, labels: Sequence[Any], by_polarity: dict[str, Any], h: int | Callable[[], int]) -> Any:
    """The label of ``labels`` (``by_polarity``: :func:`_by_polarity` of them) for the verdict
    ``want`` (see :func:`_sentiment_pick`)."""
    found = by_polarity.get(want)
    if found is not None:
        return found
    if want == "neutral" and "mixed" in by_polarity:
        return by_polarity["mixed"]
    pool = [by_polarity[p] for p in ("positive", "negative") if p in by_polarity] or list(labels)
    return pool[(h() if callable(h) else h) % len(pool)]


@functools.lru_cache(maxsize=1024)
def _by_polarity(labels: tuple[Any, ...]) -> dict[str, Any]:
    """``{polarity: label}`` for the labels that name one (the first of each). Cached: a
    prompt template or a schema names the same labels on every row."""
    found: dict[str, Any] = {}
    for label in labels:
        polarity = _POLARITY_OF_LABEL.get(label.lower().strip()) if isinstance(label, str) else None
        if polarity is not None:
            found.setdefault(polarity, label)
    return found


def pick_label(
    labels: Sequence[Any], low: str, h: int | Callable[[], int], model: Any = None, prefix: Prefix | None = None
) -> Any:
    """One of ``labels``: following the text's sentiment when they are sentiment labels (as
    ``model`` would, see :data:`SIMULATED_MODELS`), else by hash (``h``, or a function giving
    it, called only if the hash decides). ``prefix``: a start ``low`` has (see
    :func:`text_answer`)."""
    key = labels if type(labels) is tuple else tuple(labels)
    try:
        by_polarity = _by_polarity(key)
    except TypeError:  # an unhashable enum value (a list or an object): not sentiment labels
        by_polarity = {}
    if "positive" in by_polarity or "negative" in by_polarity:
        return _labelled(sentiment_label(polarity_lower(low, prefix), model, low), key, by_polarity, h)
    return labels[(h() if callable(h) else h) % len(labels)]


def _text_answer(params: dict) -> str:
    if type(params["messages"][-1].get("content")) is list:
        found = tool_results_text(params)
        if found is not None:  # the final answer of a tool loop: what the tools returned
            names, results = found
            said = results[:300] if results else "nothing"
            return f"{' and '.join(names) or 'The tool'} returned: {said}"
    return text_answer(_last_user_text(params), params.get("model"), lambda: _hash(params))


def text_answer(text: str, model: Any, h: Callable[[], int], shared: Shared | None = None) -> str:
    """The default text answer to a request whose last user text is ``text``, from ``model``;
    ``h`` gives the request's :func:`canonical_hash`, called only when a choice is by hash.

    ``shared``: what the texts of the request's slice share at their start
    (:func:`._prompts.shared_start`), read once for all of them; the answer is the same.
    """
    low = text.lower()
    prefix = None
    if shared is not None and low.startswith(shared.low):
        prefix = shared.prefix
        if shared.options and shared.asked:
            for key in shared.before:
                if key in low:
                    break
            else:  # the option list is the template's
                return pick_label(shared.options, low, h, model, prefix)
    if "sentiment" in low or "positive" in low or "negative" in low or "one of" in low or "label" in low:
        if "," in low or " or " in low or "/" in low or "|" in low:
            found = options(text, low)
            if found:
                return pick_label(found, low, h, model, prefix)
        if "positive" in low or "negative" in low or "neutral" in low or "mixed" in low:
            present = [w for w in _SENTIMENT if w in low]
            if len(present) >= 2 or "sentiment" in low:
                return _sentiment_pick(present, low, h, model, prefix)
        elif "sentiment" in low:  # the labels are the default ones: the verdict is the label
            score = polarity_lower(low, prefix)
            if score:
                return "positive" if score > 0 else "negative"
            return sentiment_label(score, model, low)
    if "긍정" in low and "부정" in low:  # "긍정인지 부정인지 답하세요"
        named = tuple(w for w in ("긍정", "부정", "중립") if w in low)
        return _sentiment_pick(named, low, h, model, prefix)
    words = _words(text)
    if not words:
        return "Understood."
    shown = words[: _simulated(model)[2]]
    listed = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]
    return _OPENERS[h() % len(_OPENERS)].format(listed)


def text_answers(texts: list[str], models: list[Any], shared: Shared | None) -> list[str | None]:
    """:func:`text_answer` of each of ``texts`` (``models[k]`` answering ``texts[k]``), for a
    slice whose texts share ``shared``'s start, where the answer follows from the sentiment
    alone; ``None`` where a text must be answered on its own (by :func:`text_answer`, with its
    request's hash).

    Two templates are answered here, the commonest: one naming sentiment labels ("… as
    positive or negative: {text}", the start's ``options``) and one asking for the sentiment
    in the default labels ("Classify the sentiment of this review: {text}"). The branch of
    :func:`text_answer` they take is settled once for the slice (:func:`_slice_branch`). A
    text's reading — its score and which words it holds that the branch reads further
    (another option key, a label named) — is remembered under what the scorer reads of it,
    from its second sighting (:func:`_readings`). A text is left to :func:`text_answer` if it
    is seen for the first time, does not start with the start, holds such a word, or if its
    labels do not name its verdict (then chosen by hash). The slice's texts are joined,
    lower-cased, keyed and looked up in one pass each, in C; Python works per text only for
    the texts that need it.
    """
    n = len(texts)
    answers: list[str | None] = [None] * n
    branch = _slice_branch(shared) if n >= 2 else None
    if branch is None:
        return answers
    assert shared is not None
    alone, named = branch
    start = shared.low
    # Lower-cased as one string: as each text alone, since a NUL is neither cased nor
    # case-ignorable (no final sigma looks across it).
    joined = "\0".join(texts).lower()
    if joined.count("\0") != n - 1:
        return answers  # a text holds a NUL
    kept: Sequence[int] = range(n)
    if joined.count("\0" + start) != n - 1 or not joined.startswith(start):
        kept = [k for k, low in enumerate(joined.split("\0")) if low.startswith(start)]
        if not kept:
            return answers
        joined = "\0".join(texts[k] for k in kept).lower()
    readings = _readings(reading_keys(joined.encode()), joined, shared.prefix)
    # each text's verdict (None: no evidence), or None where it is read alone
    wants: list[str | None] = [None] * len(readings)
    zero: list[int] = []
    for k, reading in enumerate(readings):
        if reading is not None and not reading[1] & alone:
            score = reading[0]
            if score:
                wants[k] = "positive" if score > 0 else "negative"
            else:
                zero.append(k)
    if zero:  # no evidence: the model may guess
        lows = joined.split("\0")
        for k in zero:
            wants[k] = sentiment_label(0.0, models[kept[k]], lows[k])
    if named is not None:
        wants = list(map(named.get, wants))  # named[None] is None
    if type(kept) is range:
        return wants
    for k, want in zip(kept, wants, strict=True):
        answers[k] = want
    return answers


def _slice_branch(shared: Shared | None) -> tuple[int, dict[str | None, str | None] | None] | None:
    """``(the words that take a text off the branch, as a mask of :data:`_ROUTED`; the label
    of each verdict, or None when the verdict is the label)`` for texts starting with
    ``shared``'s start, when :func:`text_answers` answers them; else ``None``."""
    if shared is None:
        return None
    start = shared.low
    if shared.options and shared.asked:  # text_answer's first branch: pick_label(shared.options)
        by_polarity = _by_polarity(shared.options)
        if "positive" not in by_polarity and "negative" not in by_polarity:
            return None  # not sentiment labels: chosen by hash
        named: dict[str | None, str | None] = {want: by_polarity.get(want) for want in _DEFAULT_LABELS}
        if named["neutral"] is None:
            named["neutral"] = by_polarity.get("mixed")
        return _routed_mask(shared.before), named
    if "sentiment" in start and not any(word in start for word in _ROUTED):  # the verdict itself
        return _routed_mask(_ROUTED), None
    return None


_ROUTED = (*_OPTION_KEYS, *_SENTIMENT)
"""Words that take a text asking for the sentiment in the default labels off the shortest
branch of :func:`text_answer`: an option key (it may name a list) or a label it names."""


_ROUTED_BITS = tuple((1 << bit, word) for bit, word in enumerate(_ROUTED))


def _routed_mask(words: Sequence[str]) -> int:
    return sum(bit for bit, word in _ROUTED_BITS if word in words)


def _readings(keys: list[bytes], joined: str, prefix: Prefix) -> list[tuple[float, int] | None]:
    """``(score, which of :data:`_ROUTED` it holds, a bit each)`` of each of the NUL-separated
    texts in ``joined``, remembered under its reading key (``keys``: :func:`._sentiment.reading_keys`;
    digits are in none of the words); ``None`` for a key seen for the first time.

    Remembering pays for texts that come back (a dataset's duplicates, rows that differ in
    an id or an order number, a re-run): a key is read on its second sighting, and from then
    on costs one ``dict.get``. A text seen once costs what it did without (it is answered
    alone: the 14 searches for the words would cost more than the answer's own).
    """
    found = list(map(_READINGS.get, keys))
    if None not in found:
        return found
    lows = joined.split("\0")
    seen = _SEEN
    for k in itertools.compress(range(len(found)), map(operator.not_, found)):
        key = keys[k]
        reading = _READINGS.get(key)  # read earlier in this slice
        if reading is None:
            marker = hash(key)
            if marker not in seen:
                if len(seen) >= 1 << 16:
                    seen.clear()
                seen.add(marker)
                continue
            low = lows[k]
            mask = 0
            for bit, word in _ROUTED_BITS:
                if word in low:
                    mask |= bit
            reading = (score_lower(low, prefix), mask)
            if len(key) <= 2048:  # at most 16,384 keys of 2 KB: tens of MB, whatever the texts
                if len(_READINGS) >= 1 << 14:
                    _READINGS.clear()
                _READINGS[key] = reading
        found[k] = reading
    return found


_READINGS: dict[bytes, tuple[float, int]] = {}
_SEEN: set[int] = set()  # hashes of the reading keys seen once


plain_answer = _text_answer
"""The default responder's answer to params of the simplest shape (string contents and system,
no tools, output format or thinking: what ``_params.analyze_simple`` accepts), without the
dispatch of :func:`default_answer`: the engine's shortest road for the commonest request."""

# --------------------------------------------------------------------------- JSON schema


def _resolve(schema: dict, root: dict) -> dict:
    seen = 0
    while "$ref" in schema and seen < 32:
        ref = schema["$ref"]
        node: Any = root
        if ref.startswith("#"):
            for part in ref[1:].split("/"):
                if part:
                    node = node.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(node, dict) else {}
        else:
            node = {}
        merged = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**node, **merged} if isinstance(node, dict) else merged
        seen += 1
    return schema


def _string_value(schema: dict, words: list[str], h: int) -> str:
    fmt = schema.get("format")
    if fmt == "date":
        value = f"2024-{1 + h % 12:02d}-{1 + (h >> 8) % 28:02d}"
    elif fmt == "date-time":
        value = f"2024-{1 + h % 12:02d}-{1 + (h >> 8) % 28:02d}T{(h >> 16) % 24:02d}:00:00Z"
    elif fmt == "time":
        value = f"{(h >> 16) % 24:02d}:{(h >> 24) % 60:02d}:00"
    elif fmt == "email":
        value = f"{(words[h % len(words)] if words else 'user')}@example.com"
    elif fmt in ("uri", "url"):
        value = f"https://example.com/{words[h % len(words)] if words else 'item'}"
    elif fmt == "uuid":
        value = (
            f"{h & 0xFFFFFFFF:08x}-{(h >> 32) & 0xFFFF:04x}-4{(h >> 48) & 0xFFF:03x}-"
            f"8{(h >> 4) & 0xFFF:03x}-{h & 0xFFFFFFFFFFFF:012x}"
        )
    elif words:
        start = h % len(words)
        value = " ".join(words[start : start + 1 + (h >> 5) % 2])
    else:
        value = "example"
    min_len = schema.get("minLength", 0)
    if len(value) < min_len:
        value = (value + " " + "x" * min_len)[: max(min_len, len(value))]
    max_len = schema.get("maxLength")
    if max_len is not None:
        value = value[:max_len]
    return value


def _number(schema: dict, h: int, integer: bool) -> int | float:
    lo: float | None = schema.get("minimum")
    hi: float | None = schema.get("maximum")
    if schema.get("exclusiveMinimum") is not None:
        lo = schema["exclusiveMinimum"] + (1 if integer else 1e-6)
    if schema.get("exclusiveMaximum") is not None:
        hi = schema["exclusiveMaximum"] - (1 if integer else 1e-6)
    if lo is None and hi is None:
        lo, hi = 0, 100
    elif lo is None:
        assert hi is not None
        lo = hi - 100
    elif hi is None:
        hi = lo + 100
    assert lo is not None and hi is not None
    if integer:
        lo_i, hi_i = int(-(-lo // 1)), int(hi // 1)
        return lo_i if hi_i <= lo_i else lo_i + h % (hi_i - lo_i + 1)
    return round(lo + (hi - lo) * ((h % 10_000) / 10_000), 2) if hi > lo else lo


def _merge_all_of(schema: dict, root: dict) -> dict:
    """An ``allOf`` schema as one: its parts merged in order, then its own other keys."""
    merged: dict = {}
    for part in schema["allOf"]:
        part = _resolve(part, root) if isinstance(part, dict) else {}
        merged.update(part)
    merged.update({k: v for k, v in schema.items() if k != "allOf"})
    return merged


def json_value(schema: Any, root: dict, words: list[str], text: str, h: int, depth: int = 0, model: Any = None) -> Any:
    """A value valid against ``schema`` (the subset pydantic emits), chosen by hash ``h``
    (sentiment enums as ``model`` would answer them)."""
    if not isinstance(schema, dict):
        return None
    schema = _resolve(schema, root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return pick_label(list(schema["enum"]), text.lower(), h, model)
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            options = [_resolve(o, root) if isinstance(o, dict) else o for o in schema[key]]
            non_null = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            pool = non_null if non_null and depth < 6 else options
            return json_value(pool[h % len(pool)], root, words, text, _mix(h, 1), depth + 1, model)
    if schema.get("allOf"):
        return json_value(_merge_all_of(schema, root), root, words, text, h, depth + 1, model)
    kind = schema.get("type")
    if isinstance(kind, list):
        non_null = [k for k in kind if k != "null"]
        kind = non_null[0] if non_null else "null"
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if kind == "object":
        return _object_value(schema, root, words, text, h, depth, model)
    if kind == "array":
        lo = schema.get("minItems", 0)
        hi = schema.get("maxItems", max(lo, 3))
        n = lo if depth >= 8 else min(hi, max(lo, 1 + h % 3))
        items = schema.get("items", {})
        return [json_value(items, root, words, text, _mix(h, i + 101), depth + 1, model) for i in range(n)]
    if kind == "string":
        return _string_value(schema, words, h)
    if kind == "integer" or kind == "number":
        return _number(schema, h, integer=kind == "integer")
    if kind == "boolean":
        return bool(h & 1)
    return None


def _object_value(schema: dict, root: dict, words: list[str], text: str, h: int, depth: int, model: Any) -> dict:
    """:func:`json_value` of an object schema: each property's value, salted by its name (not
    its position: a schema with its properties in another order asks the same question and
    gets the same values); a numeric ``confidence`` says how sure the model is."""
    props = schema.get("properties") or {}
    if depth >= 8:
        required = schema.get("required") or []
        props = {k: v for k, v in props.items() if k in required}
    values = {
        name: json_value(sub, root, words, text, _mix(h, _name_salt(name)), depth + 1, model)
        for name, sub in props.items()
    }
    if "confidence" in values:
        found = _confidence_value(props, root, text, model)
        if found is not None:
            values["confidence"] = found
    return values


def _confidence_value(props: dict, root: dict, text: str, model: Any) -> int | float | None:
    """The value of an object's numeric ``confidence`` property (:mod:`._confidence`): how sure
    ``model`` is of the verdict its sibling label (an ``enum``) holds; None when ``confidence``
    is not a number. Its noise is drawn from the model and the text, like a guess, so the same
    text gets the same confidence whatever else the schema asks (a percentage is the same ×100)."""
    schema = _numeric(props["confidence"], root)
    if schema is None:
        return None
    low = text.lower()
    h = _mix(zlib.crc32(low.encode(), _simulated(model)[1]), 0xC0)
    labels = _sibling_labels(props, root)
    try:
        by_polarity = _by_polarity(labels) if labels else {}
    except TypeError:  # an unhashable enum value: not sentiment labels
        by_polarity = {}
    if "positive" in by_polarity or "negative" in by_polarity:
        score = polarity_lower(low)
        if score:
            base = evidence_base(score)
        elif sentiment_label(0.0, model, low) == "neutral" and ("neutral" in by_polarity or "mixed" in by_polarity):
            base = NO_EVIDENCE_BASE
        else:  # the model's polar guess, or a label by hash: a draw from the labels
            base = 1 / len(labels)
    else:  # no label follows from the text: labels by hash, or no label at all
        base = 1 / len(labels) if labels else NO_EVIDENCE_BASE
    return scaled(schema, confidence(base, model, h))


def _numeric(schema: Any, root: dict) -> dict | None:
    """``schema`` resolved when it asks for one number or integer (``X | None`` is ``X``), else None."""
    if not isinstance(schema, dict):
        return None
    schema = _resolve(schema, root)
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        kept = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
        return _numeric(kept[0], root) if len(kept) == 1 else None
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    return {**schema, "type": kind} if kind in ("number", "integer") else None


def _sibling_labels(props: dict, root: dict) -> tuple[Any, ...]:
    """The labels of the first property beside ``confidence`` that is a closed set (an ``enum``,
    maybe optional, or a list of one), else ``()``."""
    for name, sub in props.items():
        if name == "confidence" or not isinstance(sub, dict):
            continue
        node = _resolve(sub, root)
        if node.get("type") == "array" and isinstance(node.get("items"), dict):
            node = _resolve(node["items"], root)
        for option in node.get("anyOf") or node.get("oneOf") or (node,):
            option = _resolve(option, root) if isinstance(option, dict) else {}
            if option.get("enum"):
                return tuple(option["enum"])
    return ()


@functools.lru_cache(maxsize=4096)
def _name_salt(name: str) -> int:
    return zlib.crc32(name.encode()) + 2


# --------------------------------------------------------------------------- modes


def answer_mode(params: dict) -> str:
    """``"tool"``, ``"calls"``, ``"json"`` or ``"text"``: what kind of answer the request asks
    for (``calls``: tools the model chooses to call under ``auto``, :mod:`._tools`)."""
    if "tools" not in params and "output_config" not in params:
        return "text"
    choice = params.get("tool_choice")
    if params.get("tools") and isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
        return "tool"
    if called_tools(params):
        return "calls"
    fmt = (params.get("output_config") or {}).get("format")
    if fmt and fmt.get("type") == "json_schema":
        return "json"
    return "text"


def chosen_tool(params: dict) -> dict:
    """The tool a ``tool``-mode request calls: the named one, or one picked by content hash
    (from the tools in name order: listing them in another order changes nothing)."""
    tools = params["tools"]
    choice = params["tool_choice"]
    if choice.get("type") == "tool":
        return next(t for t in tools if t.get("name") == choice.get("name"))
    ordered = sorted(tools, key=lambda t: str(t.get("name")))
    return ordered[_mix(_hash(params), 3) % len(ordered)]


def default_responder(params: dict) -> str | dict | list:
    """The simulator's built-in answer: deterministic, cheap, plausible for demos.

    - tool request: schema-valid input for the tool being called (a list of them when the
      model calls several under ``auto``, :mod:`._tools`);
    - JSON-schema request: a schema-valid object (enums pick a listed value);
    - sentiment/label questions: one of the options named in the prompt, following the
      wording of the text for positive/negative/neutral;
    - anything else: a short sentence naming a few words of the prompt.

    >>> default_responder({"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [
    ...     {"role": "user", "content": "Sentiment (positive or negative): I love it, great!"}]})
    'positive'
    """
    return default_answer(params, answer_mode(params))


def default_answer(params: dict, mode: str) -> str | dict | list:
    """:func:`default_responder`'s answer, for a request of known :func:`answer_mode`.

    A request with images or PDFs is answered from their content (:mod:`._media`)."""
    last: dict = (params.get("messages") or ({},))[-1]
    if type(last.get("content")) is list:
        found = media_answer(params, mode, lambda: _default_answer(params, mode))
        if found is not None:
            return found
    return _default_answer(params, mode)


def _default_answer(params: dict, mode: str) -> str | dict | list:
    if mode == "text":
        return _text_answer(params)
    h = _hash(params)
    text = _last_user_text(params)
    words = _words(text)
    if mode == "calls":  # one input per tool called, each salted by its name
        inputs = []
        for tool in called_tools(params):
            schema = tool.get("input_schema") or {}
            value = json_value(
                schema, schema, words, text, _mix(h, _name_salt(str(tool.get("name")))), model=params.get("model")
            )
            inputs.append(value if isinstance(value, dict) else {"value": value})
        return inputs[0] if len(inputs) == 1 else inputs
    if mode == "tool":
        schema = chosen_tool(params).get("input_schema") or {}
    else:
        schema = params["output_config"]["format"]["schema"]
    value = json_value(schema, schema, words, text, h, model=params.get("model"))
    return value if isinstance(value, dict) or mode == "json" else {"value": value}


# --------------------------------------------------------------------------- calling


def responder_caller(responder: Callable[..., Any]) -> Callable[[dict, Any, Any, int], Any]:
    """Wrap ``responder`` as ``call(params, custom_id, batch_id, attempt)``, passing on only
    the extras its signature accepts."""
    try:
        parameters = inspect.signature(responder).parameters
    except (TypeError, ValueError):
        parameters = {}  # type: ignore[assignment]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        accepted = {"custom_id", "batch_id", "attempt"}
    else:
        accepted = {"custom_id", "batch_id", "attempt"} & set(parameters)
    if not accepted:
        return lambda params, custom_id, batch_id, attempt: responder(params)

    def call(params: dict, custom_id: Any, batch_id: Any, attempt: int) -> Any:
        extras = {"custom_id": custom_id, "batch_id": batch_id, "attempt": attempt}
        return responder(params, **{k: v for k, v in extras.items() if k in accepted})

    return call


def shape_answer(
    params: dict, answer: Any, tool_id: str, mode: str | None = None
) -> tuple[list[dict], str, str | None, int]:
    """Answer → ``(content, stop_reason, stop_sequence, output_tokens)``; ``mode`` is
    ``answer_mode(params)`` when the caller knows it already."""
    max_tokens = params["max_tokens"]
    if mode is None:
        mode = answer_mode(params)
    if mode == "calls" and isinstance(answer, (dict, list)):
        called = called_tools(params)
        inputs = [answer] if isinstance(answer, dict) else [a for a in answer if isinstance(a, dict)]
        if inputs:
            content = []
            out = 0
            for k, (tool, given) in enumerate(zip(called, inputs, strict=False)):
                out += (len(encode(given)) + 3) >> 2
                content.append(
                    {
                        "type": "tool_use",
                        "id": tool_id if k == 0 else f"{tool_id}{k}",
                        "name": tool["name"],
                        "input": given,
                        "caller": {"type": "direct"},
                    }
                )
            if out > max_tokens:
                return [], "max_tokens", None, max_tokens
            return content, "tool_use", None, max(out, 1)
    if mode == "tool" and isinstance(answer, dict):
        tool = chosen_tool(params)
        out = (len(encode(answer)) + 3) >> 2  # tok() of its JSON
        if out > max_tokens:
            return [], "max_tokens", None, max_tokens
        return (
            [{"type": "tool_use", "id": tool_id, "name": tool["name"], "input": answer, "caller": {"type": "direct"}}],
            "tool_use",
            None,
            max(out, 1),
        )
    if isinstance(answer, str):
        text = answer
    elif isinstance(answer, (dict, list)):
        text = encode(answer).decode()
    else:
        raise TypeError(f"a responder must return str or dict, not {type(answer).__name__}")
    stop_reason = "end_turn"
    stop_sequence = None
    stops = params.get("stop_sequences")
    if stops:
        text, stop_reason, stop_sequence = _cut_at_stop(text, stops)
    out = ((len(text) if text.isascii() else len(text.encode())) + 3) >> 2  # tok(text)
    if out > max_tokens:
        limit = max_tokens * 4
        text = text[:limit] if text.isascii() else text.encode()[:limit].decode("utf-8", "ignore")
        stop_reason, stop_sequence, out = "max_tokens", None, max_tokens
    if max_tokens == 0:
        return [], "max_tokens", None, 0
    return [{"type": "text", "text": text, "citations": None}], stop_reason, stop_sequence, max(out, 1)


def _cut_at_stop(text: str, stops: list) -> tuple[str, str, str | None]:
    """``(text, stop_reason, stop_sequence)``: the text up to the earliest stop sequence found
    in it (the first listed of those found there), else as it is with ``end_turn``."""
    cut = -1
    stop_sequence = None
    for stop in stops:
        if stop:
            at = text.find(stop)
            if at != -1 and (cut == -1 or at < cut):
                cut, stop_sequence = at, stop
    if cut != -1:
        return text[:cut], "stop_sequence", stop_sequence
    return text, "end_turn", None


def shape_thought(
    params: dict, answer: Any, tool_id: str, mode: str | None = None
) -> tuple[list[dict], str, str | None, int]:
    """:func:`shape_answer` with thinking on: the thinking block first, then the answer in the
    tokens ``max_tokens`` leaves it."""
    if mode is None:
        mode = answer_mode(params)
    calls = [str(t.get("name")) for t in called_tools(params)] if mode == "calls" else []
    block, used = thinking_block(
        params, _words(_last_user_text(params), 4), calls, tool_results_text(params) is not None, params["max_tokens"]
    )
    rest = {**params, "max_tokens": params["max_tokens"] - used}
    content, stop_reason, stop_sequence, out = shape_answer(rest, answer, tool_id, mode)
    if rest["max_tokens"] == 0:
        out = 0
    return [block, *content], stop_reason, stop_sequence, used + out
