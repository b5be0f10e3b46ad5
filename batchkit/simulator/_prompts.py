"""What the default responder reads in a prompt's wording: the option list it names, and what
the prompts of a batch share.

:func:`options` finds the labels a prompt offers ("… as positive, negative or neutral: …").

A batch's requests are mostly one prompt template filled with each row's text, so their texts
share a start. :func:`shared_start` finds it once for a slice of requests, and the answer to
each request reads it once instead of once per request: the words of the template are split
and looked up once (:class:`._sentiment.Prefix`), and an option list the template names in full
is parsed once (:attr:`Shared.options`). Every answer stays what it is without it (the texts
are still read whole where the template does not settle a question; ``tests/simulator`` and
``bench/sim_fingerprint.py`` hold the answers to it).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Sequence

from ._sentiment import Prefix

__all__ = ["OPTION_KEYS", "Shared", "options", "shared_start"]

OPTION_KEYS = (
    " one of",
    " as ",
    " among ",
    " from ",
    "labels",
    "label:",
    "options",
    "categories",
    "choices",
    "classes",
)
_OPTIONS_END_RE = re.compile(r"[.\n\]):;?]")
_LEAD = " :-[("
_FOLLOWING = "the following"
_WINDOW = 240
_SEARCHED = 1000


def options(text: str, low: str) -> tuple[str, ...]:
    """The option list a prompt names ("... as positive, negative or neutral: ..."), if any."""
    for key in OPTION_KEYS:
        if key not in low:  # cheaper than find() with bounds, and usually enough
            continue
        at = low.find(key, 0, _SEARCHED)
        while at != -1:
            rest = text[at + len(key) : at + len(key) + _WINDOW].lstrip(_LEAD)
            if rest[:13].lower() == _FOLLOWING:
                rest = rest[13:].lstrip(_LEAD)
            end = _OPTIONS_END_RE.search(rest)
            items = _option_items(rest if end is None else rest[: end.start()])
            if len(items) >= 2:
                return items
            at = low.find(key, at + 1, _SEARCHED)
    return ()


@functools.lru_cache(maxsize=4096)
def _option_items(listed: str) -> tuple[str, ...]:
    """The items of an option list's text. Cached: a prompt template names the same list on
    every row."""
    listed = listed.replace(" or ", ",").replace("/", ",").replace("|", ",")
    items = [item.strip(" \"'`*") for item in listed.split(",")]
    return tuple(item for item in items if item and len(item) <= 30 and item.count(" ") <= 2)


class Shared:
    """The start every text of a slice shares, read once.

    Attributes:
        low: the start, lower-cased (each text's lower-cased form starts with it).
        prefix: its words, split and looked up once (for :func:`._sentiment.polarity_lower`).
        asked: whether every text asks for one of some labels (the start names sentiment or
            labels, and a list), which the default answer checks before it looks for options.
        options: the option list :func:`options` finds in every text that starts so and holds
            none of the keys in ``before`` — ``()`` when the start does not settle it.
        before: the option keys :func:`options` looks for before the one that found
            ``options`` and that the start does not hold: a text holding one of them is read
            whole.
    """

    __slots__ = ("asked", "before", "low", "options", "prefix")

    def __init__(self, start: str) -> None:
        low = start.lower()
        self.low = low
        self.prefix = Prefix(low)
        self.asked = any(w in low for w in ("sentiment", "positive", "negative", "one of", "label")) and any(
            mark in low for mark in (",", " or ", "/", "|")
        )
        self.options, self.before = _settled_options(start, low)


def shared_start(texts: Sequence[str]) -> Shared | None:
    """What ``texts`` share at their start, up to the last whitespace in it and before any
    character that is not ASCII (lower-casing it then maps each character to one); ``None``
    when that is too short to be worth reading once."""
    if len(texts) < 2:
        return None
    start = os.path.commonprefix([min(texts), max(texts)])  # noqa: RUF071  # characters, as wanted
    if not start.isascii():
        start = start[: next(i for i, ch in enumerate(start) if not ch.isascii())]
    if start and not start[-1].isspace():
        words = start.split()
        if words:
            start = start[: len(start) - len(words[-1])]
    return Shared(start) if len(start) >= 8 else None


def _settled_options(start: str, low: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(options, before)`` (see :class:`Shared`): what :func:`options` finds in any text that
    starts with ``start`` when the keys in ``before`` are not in it, or ``((), ())``. Only an
    option list :func:`options` reads entirely inside ``start`` counts."""
    before: list[str] = []
    size = len(start)
    for key in OPTION_KEYS:
        at = low.find(key, 0, _SEARCHED)
        if at == -1:  # not in the start: a text may hold it further on
            before.append(key)
            continue
        begin = at + len(key)
        stop = begin + _WINDOW  # options() reads this window after the key
        window = start[begin:stop]
        head = begin + len(window) - len(window.lstrip(_LEAD))
        if min(head + 13, stop) > size:  # the lead-in, or the look for "the following", reads on
            return (), ()
        if start[head : min(head + 13, stop)].lower() == _FOLLOWING:
            tail = start[head + 13 : stop]
            head += 13 + len(tail) - len(tail.lstrip(_LEAD))
            if head >= size:
                return (), ()
        end = _OPTIONS_END_RE.search(start, head, min(size, stop))
        if end is None:  # the list runs on past the start
            return (), ()
        items = _option_items(start[head : end.start()])
        return (items, tuple(before)) if len(items) >= 2 else ((), ())
    return (), ()
