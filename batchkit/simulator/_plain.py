"""The commonest batch request, answered on a short road: string contents, the default responder.

Most batch requests have the simplest shape — ``model``, ``max_tokens``, ``messages`` whose
contents are strings, maybe a string ``system`` and ``metadata`` — and no tools, output format,
thinking, stop sequences or cache marks. For those, :class:`PlainLines` decodes the params
straight into typed structs (msgspec checks the shape and the types in C, in the same pass
that decodes them), answers with the default responder's text answer, and writes the result
line from a byte template: the same bytes as the general road (``_engine``: decode, validate,
answer, shape, encode the structs), for a fraction of its cost. Anything else — another key,
a block list, an unknown model, an empty content, ``max_tokens`` above every model's smallest
cap — is ``None`` here, and the general road answers it (and finds the precise error).

A slice of a batch is answered in one call (:meth:`PlainLines.lines`), and what repeats from
request to request — a model's JSON, the part of the line an answer decides (the labels of a
classification come back again and again), the start the slice's texts share (a prompt
template: :func:`._prompts.shared_start`) — is written or read once and reused. The answers
of a slice are found together where they follow from the sentiment
(:func:`._responder.text_answers`). A slice of one template's requests — the same params
but for the last message's text, as batchkit and most scripts send them — takes the shortest
road (:meth:`PlainLines._template_lines`): the texts are cut out of the joined params and
decoded as one JSON array, and the lines are joined from pieces, with no Python step a
request but the answers that need one.

What this road accepts is exactly what ``_params.analyze_simple`` accepts, and it counts the
input tokens the same way; ``tests/simulator`` and ``bench/sim_fingerprint.py`` hold the bytes
to the general road's.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

import msgspec

from ._json import DECODE_ERRORS
from ._output import SMALLEST_CAP
from ._prompts import shared_start
from ._responder import plain_hash, text_answer, text_answers

__all__ = ["BETA_TAIL", "PLAIN_LINE", "PlainLines", "cut_plain"]


class _Message(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    role: Literal["user", "assistant"]
    content: str


class _Params(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    model: str
    max_tokens: int
    messages: list[_Message]
    system: str | None = None
    metadata: Any = None  # not checked, as on the general road for params of this shape


_decode_params = msgspec.json.Decoder(_Params).decode

# The result line of the commonest answer (the default responder's text to string-only params,
# no cache), written from a template: the same bytes as encoding the engine's structs (a test
# holds them to it), for a third of the cost. Fields in order: custom_id (JSON), the batch's
# stem and the request's index, model and text (JSON), stop_reason, input and output tokens;
# the beta line ends its message with ``context_management``.
PLAIN_LINE = (
    b'{"custom_id":%b,"result":{"type":"succeeded","message":{"id":"msg_01%b%08d","type":"message",'
    b'"role":"assistant","model":%b,"content":[{"type":"text","text":%b,"citations":null}],'
    b'"stop_reason":"%b","stop_sequence":null,"stop_details":null,"container":null,'
    b'"diagnostics":null,"usage":{"input_tokens":%d,"output_tokens":%d,'
    b'"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":'
    b'{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"server_tool_use":null,'
    b'"service_tier":"batch","output_tokens_details":null,"speed":null,"inference_geo":null}%b}}}\n'
)
BETA_TAIL = b',"context_management":null'

# PLAIN_LINE cut in three at the parts a request decides: its custom_id and index, then the
# part its answer decides (model, text, stop_reason: written once per distinct answer), then
# its input and output tokens.
_HEAD, _rest = PLAIN_LINE.split(b"%b%08d", 1)
_HEAD = _HEAD.replace(b"%b", b'"%s"', 1)  # a custom_id is [a-zA-Z0-9_-]{1,64}: its JSON is itself, quoted
_ANSWERED, _USAGE = _rest.split(b'"usage":{"input_tokens":%d,', 1)


def cut_plain(text: str, max_tokens: int) -> tuple[str, bytes, int]:
    """``(text, stop_reason, output tokens)`` of a plain answer, cut at ``max_tokens`` as
    ``shape_answer`` cuts it (four bytes a token)."""
    out = ((len(text) if text.isascii() else len(text.encode())) + 3) >> 2  # tok(text)
    if out <= max_tokens:
        return text, b"end_turn", out
    limit = max_tokens * 4
    text = text[:limit] if text.isascii() else text.encode()[:limit].decode("utf-8", "ignore")
    return text, b"max_tokens", max_tokens


_json_str = msgspec.json.encode


class _Request(Protocol):
    custom_id: str
    params: msgspec.Raw


class PlainLines:
    """Result lines of one batch's plain requests (see the module's docstring).

    Args:
        known: whether a model id exists (the catalogue's check).
        stem: the batch's id stem (message ids are ``msg_01{stem}{index:08d}``).
        beta: whether the batch was created through the beta endpoint.
    """

    __slots__ = ("_answered", "_known", "_line", "_models", "_pieces")

    def __init__(self, known: Callable[[str], bool], stem: str, beta: bool) -> None:
        self._known = known
        stem_bytes = stem.encode().replace(b"%", b"%%")
        tail = BETA_TAIL if beta else b""
        # custom_id, index, the answer's part, input tokens, output tokens
        usage = b'"usage":{"input_tokens":%d,' + _USAGE.replace(b"%b", tail.replace(b"%", b"%%"))
        self._line = _HEAD + stem_bytes + b"%08d%b" + usage
        # The same line in pieces, joined rather than formatted (:meth:`_template_lines`):
        # before the custom_id, from it to the index, from the answer's part to the input
        # tokens, and after them (to be formatted with the output tokens).
        head, rest = self._line.split(b"%s", 1)
        to_index, rest = rest.split(b"%08d%b", 1)
        to_input, after = rest.split(b"%d", 1)
        self._pieces = (head, to_index.replace(b"%%", b"%"), to_input, after)
        self._models: dict[str, bytes | None] = {}
        # (model JSON, answer) → (the line's part from the model to the stop reason, output tokens)
        self._answered: dict[tuple[bytes, str], tuple[bytes, int]] = {}

    def lines(self, requests: Sequence[_Request], lo: int, hi: int) -> list[bytes | None]:
        """The result lines of ``requests[lo:hi]``: each plain request's line, ``None`` for
        the others.

        In three passes: the params are decoded and checked, and the input counted; the
        answers are found for the slice at once where they can be (:func:`text_answers`);
        then each line is written. A slice of one template's requests takes a shorter road
        (:meth:`_template_lines`)."""
        if hi - lo >= 64:
            found = self._template_lines(requests, lo, hi)
            if found is not None:
                return found
        out: list[bytes | None] = [None] * (hi - lo)
        at, picked, texts, totals = self._plain_params(requests, lo, hi)
        if not at:
            return out
        n = len(at)
        shared = shared_start((texts[0], texts[n // 2], texts[-1])) if hi - lo >= 64 else None
        try:
            answers = text_answers(texts, [params.model for params in picked], shared)
        except Exception:  # answered one by one below, where any error is the general road's
            answers = [None] * n
        models: dict[str, bytes] = self._models  # type: ignore[assignment]  # known: not None
        answered = self._answered
        template = self._line
        params = _Params("", 0, [])

        def request_hash() -> int:  # called only when a choice is by hash
            return plain_hash(params.model, params.system, [(m.role, m.content) for m in params.messages])

        for i, params, text, total, answer in zip(
            at, picked, texts, totals, answers, strict=True
        ):  # request_hash reads params
            if answer is None:
                try:
                    answer = text_answer(text, params.model, request_hash, shared)
                except Exception:  # the general road turns it into the same error line
                    continue
            encoded_model = models[params.model]
            key = (encoded_model, answer)
            known_answer = answered.get(key)
            if known_answer is None:
                known_answer = answered[key] = _answer_part(encoded_model, answer)
                if len(answered) > 4096:  # free-text answers seldom repeat
                    answered.clear()
            part, tokens = known_answer
            max_tokens = params.max_tokens
            if tokens > max_tokens:
                cut, stop_reason, tokens = cut_plain(answer, max_tokens)
                part = _answer_part(encoded_model, cut, stop_reason)[0]
            out[i - lo] = template % (requests[i].custom_id.encode(), i, part, total, tokens or 1)
        return out

    def _template_lines(self, requests: Sequence[_Request], lo: int, hi: int) -> list[bytes | None] | None:
        """The lines of ``requests[lo:hi]`` when all of them are one plain request with only its
        last message's text changed (a prompt template filled with each row, as batchkit and
        most scripts send them); ``None`` otherwise (:func:`_template_texts`).

        Everything but the text being the same, so is everything but the answer: the input
        counted but for the text, the model, the cut. Each distinct answer's part of the line
        is written once, and the lines in one ``map`` over the template."""
        items = requests[lo:hi]
        found = _template_texts(list(map(_params_of, items)), self._known)
        if found is None:
            return None
        params, texts = found
        n = hi - lo
        sizes = list(map(len, texts)) if "".join(texts).isascii() else list(map(len, map(str.encode, texts)))
        earlier = params.messages[:-1]
        base = 7 + sum(4 + ((len(m.content.encode()) + 3) >> 2) for m in earlier)
        if params.system is not None:
            base += (len(params.system.encode()) + 3) >> 2
        totals = [base + ((size + 3) >> 2) for size in sizes]
        read = texts if max(sizes) <= 4000 else [text[:4000] for text in texts]
        answers = self._template_answers(params, texts, read)
        head, to_index, to_input, after = self._pieces
        encoded_model = _json_str(params.model)
        max_tokens = params.max_tokens
        # each answer's part of the line: from the model to the input tokens, and after them
        up_to: dict[str | None, bytes] = {None: b""}
        ending: dict[str | None, bytes] = {None: b""}
        for answer in set(answers):
            if answer is not None:
                part, tokens = _answer_part(encoded_model, answer)
                if tokens > max_tokens:
                    cut, stop_reason, tokens = cut_plain(answer, max_tokens)
                    part = _answer_part(encoded_model, cut, stop_reason)[0]
                up_to[answer] = part + to_input
                ending[answer] = after % (tokens or 1)
        numbers = {total: b"%d" % total for total in set(totals)}
        indexes = (b"\0".join([b"%08d"] * n) % tuple(range(lo, hi))).split(b"\0")
        out: list[bytes | None] = list(
            map(
                b"".join,
                zip(
                    itertools.repeat(head, n),
                    map(str.encode, map(_custom_id, items)),
                    itertools.repeat(to_index, n),
                    indexes,
                    map(up_to.__getitem__, answers),
                    map(numbers.__getitem__, totals),
                    map(ending.__getitem__, answers),
                    strict=True,
                ),
            )
        )
        if None in answers:
            for k in range(n):
                if answers[k] is None:
                    out[k] = None  # the default responder failed: the general road's error line
        return out

    def _template_answers(self, params: _Params, texts: list[str], read: list[str]) -> list[str | None]:
        """The default answers to ``params`` with each of ``texts`` as its last message's text
        (``read``: what the answer reads of each), ``None`` where answering raised."""
        n = len(texts)
        model = params.model
        shared = shared_start((read[0], read[n // 2], read[-1]))
        try:
            answers = text_answers(read, [model] * n, shared)
        except Exception:  # answered one by one below, where any error is the general road's
            answers = [None] * n
        if None in answers:
            earlier = [(m.role, m.content) for m in params.messages[:-1]]
            system = params.system
            text = ""

            def request_hash() -> int:  # called only when a choice is by hash; reads text
                return plain_hash(model, system, [*earlier, ("user", text)])

            for k in itertools.compress(range(n), map(operator.is_, answers, itertools.repeat(None))):
                text = texts[k]
                try:  # noqa: SIM105  # suppress() costs half a microsecond a text
                    answers[k] = text_answer(read[k], model, request_hash, shared)
                except Exception:  # the general road's error line
                    pass
        return answers

    def _plain_params(
        self, requests: Sequence[_Request], lo: int, hi: int
    ) -> tuple[list[int], list[_Params], list[str], list[int]]:
        """``(indexes, params, texts, input tokens)`` of the plain requests of
        ``requests[lo:hi]``: decoded, checked, their input counted and the text the answer
        reads taken (each model's JSON is in ``_models`` then)."""
        at: list[int] = []
        picked: list[_Params] = []
        texts: list[str] = []
        totals: list[int] = []
        models = self._models
        known = self._known
        decode_params = _decode_params
        for i in range(lo, hi):
            try:
                params = decode_params(requests[i].params)
            except DECODE_ERRORS:
                continue
            model = params.model
            if models.get(model) is None:
                if model in models or not known(model):
                    models[model] = None
                    continue
                models[model] = _json_str(model)
            messages = params.messages
            if not 0 < params.max_tokens <= SMALLEST_CAP or not messages:
                continue
            total = 3
            system = params.system
            if system is not None:
                total += ((len(system) if system.isascii() else len(system.encode())) + 3) >> 2
            for message in messages:
                content = message.content
                if not content:
                    break  # an empty content: the general road's error
                total += 4 + (((len(content) if content.isascii() else len(content.encode())) + 3) >> 2)
            else:
                last = messages[-1]
                texts.append(last.content[:4000] if last.role == "user" else _last_user_text(messages))
                at.append(i)
                picked.append(params)
                totals.append(total)
        return at, picked, texts, totals


def _template_texts(raws: list[msgspec.Raw], known: Callable[[str], bool]) -> tuple[_Params, list[str]] | None:
    """``(the first's params, every request's last text)`` when ``raws`` are one plain
    request's params with only the last message's text changed, else ``None``.

    The first is decoded and checked (what :meth:`PlainLines._plain_params` checks, and the
    last message the user's); the bytes before and after its text are found, and a probe
    text put between them decodes to the first's params with the probe as that text. Each
    request is then checked to be those bytes around something (a count each over the
    params joined by NULs, which no JSON holds unescaped), and the somethings are decoded
    as one JSON array of strings: exactly one string each, or no template.
    """
    try:
        params = _decode_params(raws[0])
    except DECODE_ERRORS:
        return None
    messages = params.messages
    if (
        not 0 < params.max_tokens <= SMALLEST_CAP
        or not messages
        or messages[-1].role != "user"
        or not all(m.content for m in messages)
        or not known(params.model)
    ):
        return None
    first = bytes(raws[0])
    text = _json_str(messages[-1].content)
    at = first.rfind(text)
    if at == -1:
        return None  # the text written otherwise (escaped differently)
    before, after = first[:at], first[at + len(text) :]
    try:
        probe = _decode_params(before + b'"\\u0000"' + after)
    except DECODE_ERRORS:
        return None
    last = probe.messages[-1] if probe.messages else None
    if (
        last is None
        or last.content != "\0"
        or last.role != "user"
        or probe.messages[:-1] != messages[:-1]
        or (probe.model, probe.max_tokens, probe.system, probe.metadata)
        != (params.model, params.max_tokens, params.system, params.metadata)
    ):
        return None
    n = len(raws)
    # Split where one request's params end and the next one's begin: one piece a request,
    # if all of them start and end so (the NUL is found nowhere else), each the text's JSON.
    pieces = b"\0".join(raws).split(after + b"\0" + before)
    if len(pieces) != n or not pieces[0].startswith(before) or not pieces[-1].endswith(after):
        return None
    pieces[0] = pieces[0][len(before) :]
    pieces[-1] = pieces[-1][: len(pieces[-1]) - len(after)]
    try:
        texts = _decode_texts(b"[" + b",".join(pieces) + b"]")
    except DECODE_ERRORS:
        return None
    if len(texts) != n or "" in texts:
        return None  # an empty text: the general road's error
    return params, texts


_decode_texts = msgspec.json.Decoder(list[str]).decode
_params_of = operator.attrgetter("params")
_custom_id = operator.attrgetter("custom_id")


def _last_user_text(messages: list[_Message]) -> str:
    """The text the default responder answers: the last user message's (its first 4,000
    characters)."""
    last = messages[-1]
    if last.role == "user":
        return last.content[:4000]
    return next((m.content[:4000] for m in reversed(messages) if m.role == "user"), "")


def _answer_part(encoded_model: bytes, text: str, stop_reason: bytes = b"end_turn") -> tuple[bytes, int]:
    """The part of a plain line the answer decides (model, text, stop reason), and its output
    tokens before any cut."""
    tokens = ((len(text) if text.isascii() else len(text.encode())) + 3) >> 2
    part = _ANSWERED % (encoded_model, _json_str(text), stop_reason)
    return part, tokens
