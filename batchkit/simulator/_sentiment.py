"""The default responder's sentiment heuristic: small Korean and English lexicons, with negation.

:func:`polarity` scores a text: above 0 leans positive, below 0 negative, 0 when it finds no
evidence either way. It reads only the text it is given — never a label — and is deterministic
and cheap (a few microseconds for a tweet), so the simulator can answer a million labelling
requests with it.

How it scores:

- **English**: the lower-cased text is split on whitespace; each word in the lexicon adds its
  weight (``great`` +2, ``bad`` −2, emoticons such as ``:)`` and ``:(`` too). A negator (``not``,
  ``no``, ``never``, any ``…n't``, ``without`` …) flips the next three words up to the end of the
  clause: a negated positive counts as negative, a negated negative as mildly positive
  ("not bad"). ``can't wait`` is positive.
- **Korean**: Korean runs particles and endings into words and reviews often skip spaces, so
  stems are found anywhere in the text (``재밌``, ``최고``, ``감동`` …, ``최악``, ``지루``,
  ``아깝`` …), the longest stem first (``재미없`` before ``재미``). A positive stem counts as
  negative when followed within a few characters by ``없`` / ``않`` / ``못`` / ``아니``
  (``재미가 없다``, ``좋지 않다``), preceded by ``안`` / ``못`` (``안 좋다``), or near
  ``하나도`` / ``전혀`` ("not at all"); a negative stem followed by ``않`` (``지루하지 않다``)
  counts as mildly positive. Expectation turned round (``재밌는 줄 알았는데``) counts against
  the stem. Weak marks of tone (``?``, ``..``, ``!``, ``~``) lean a text one way when no word
  decides, and the last sentiment word counts half again: a Korean review ends on its verdict.

The responder turns the score into a label (see ``_responder.sentiment_label``), where each
model's simulated quality flips a share of verdicts; this function stays the same for every model.
Its measured accuracy on the shipped data is in the simulator's README
(``bench/bench_responder.py`` prints it).
"""

from __future__ import annotations

import re

__all__ = ["Prefix", "polarity", "polarity_lower", "reading_keys", "score_lower"]

# --------------------------------------------------------------------------- English

_EN_POSITIVE = {
    2.0: "love loved lovely amazing awesome excellent fantastic perfect wonderful brilliant superb "
    "best great beautiful gorgeous incredible outstanding excited exciting congrats congratulations "
    "delighted glad happy enjoy enjoyed enjoying fun favorite favourite thank thanks grateful proud "
    "yay woohoo recommend recommended win won winner blessed bless happiest happier loving adore "
    "hilarious fabulous stunning thrilled stoked pumped greatest coolest legend legendary champion "
    "champions victory joy",
    1.0: "good nice cool fine pleased helpful friendly fast works worked satisfied hope hoping ready "
    "like liked likes beauty smile smiling laugh lol haha funny cute sweet wow interesting impressive "
    "support supporting safe welcome well better pretty fresh glory celebrate celebrating cheers "
    "luck lucky honored honoured peace success successful inspiring kind epic solid forward fave faves "
    "hero heroes winning wins sweetest finest wish xoxo",
}
_EN_NEGATIVE = {
    2.0: "hate hated hates terrible awful horrible worst disgusting pathetic useless sucks suck sucked "
    "stupid idiot idiots angry furious disappointed disappointing disappointment fail failed fails "
    "failure ruined ruin broken shit crap fuck fucking wtf dumb racist rude scam waste wasted "
    "ridiculous annoying annoyed ugh boring bored sad upset loser losers screwed pissed disgrace "
    "disgraceful shameful corrupt fraud hypocrite pathetic trash garbage moron morons idiotic",
    1.0: "bad poor wrong worse problem problems issue issues slow late damaged refund cheap unhappy "
    "missing miss missed sorry sick tired lost lose losing kill killed killing dead death die died "
    "war attack attacks fear scared worry worried hell damn cry crying pain hurt lie lies liar "
    "fake shame sadly unfortunately mess weird crazy evil jealous stuck struggle struggled crash crashed "
    "murder murdered terror terrorist terrorists bomb bombing injured guilty crook crooks lying gross "
    "nasty ugly lame meh smh predictable",
}
_EMOTICONS = {
    ":)": 2.0,
    ":-)": 2.0,
    ":))": 2.0,
    "=)": 2.0,
    ":d": 2.0,
    ":-d": 2.0,
    ":p": 1.0,
    ";)": 1.0,
    ";-)": 1.0,
    "<3": 2.0,
    "(:": 2.0,
    "xx": 1.0,
    ":(": -2.0,
    ":-(": -2.0,
    ":'(": -2.0,
    "):": -2.0,
    ":/": -1.0,
}
_PUNCT = ".,!?;:\"'()[]{}<>*`#@…“”‘’"


def _english() -> dict[str, float]:
    table: dict[str, float] = {}
    for sign, groups in ((1.0, _EN_POSITIVE), (-1.0, _EN_NEGATIVE)):
        for weight, words in groups.items():
            for word in words.split():
                word = word.strip(_PUNCT)
                for variant in (word, "#" + word):  # hashtags carry sentiment on Twitter
                    for tail in ("", ",", ".", "!", "!!", "?", ":", ";", "...", ")", "'", '"'):
                        table[variant + tail] = sign * weight
                        table['"' + variant + tail] = sign * weight
    table.update(_EMOTICONS)
    return table


_EN = _english()
_NEGATORS = frozenset(
    w + tail
    for w in (
        "not",
        "no",
        "never",
        "nothing",
        "nobody",
        "none",
        "neither",
        "nor",
        "without",
        "hardly",
        "cannot",
        "dont",
        "don't",
        "doesnt",
        "doesn't",
        "didnt",
        "didn't",
        "isnt",
        "isn't",
        "wasnt",
        "wasn't",
        "arent",
        "aren't",
        "werent",
        "weren't",
        "cant",
        "can't",
        "couldnt",
        "couldn't",
        "wont",
        "won't",
        "wouldnt",
        "wouldn't",
        "shouldnt",
        "shouldn't",
        "aint",
        "ain't",
        "havent",
        "haven't",
        "hasnt",
        "hasn't",
        "don’t",
        "can’t",
        "isn’t",
        "didn’t",
        "won’t",
        "doesn’t",
    )
    for tail in ("", ",")
)
_EN_OR_NEGATOR = frozenset(_EN).union(_NEGATORS)
_CANT = frozenset({"can't", "cant", "cannot", "can’t"})
_CLAUSE_END = (".", "!", "?", ",", ";", ":")
_NEGATION_SCOPE = 3


class Prefix:
    """The start that every text of a group shares (a prompt template's words before the row's
    text), split and looked up once: :func:`polarity_lower` of a text that starts with it
    splits and searches only the rest.

    Args:
        low: the shared start, lower-cased; ASCII, and empty or ending with whitespace (so
            that no word runs on into the rest).
    """

    __slots__ = ("hits", "low", "size", "words")

    def __init__(self, low: str) -> None:
        if not low.isascii() or (low and not low[-1].isspace()):
            raise ValueError("a prefix is ASCII, and empty or ends with whitespace")
        self.low = low
        self.size = len(low)
        self.words = low.split()
        self.hits = _EN_OR_NEGATOR.intersection(self.words)


def _english_score(low: str, prefix: Prefix | None = None) -> float:
    if prefix is None:
        words = low.split()
        hits = _EN_OR_NEGATOR.intersection(words)  # one pass in C finds both
    else:  # the words of low are the prefix's and the rest's
        words = low[prefix.size :].split()
        hits = _EN_OR_NEGATOR.intersection(words)
        if prefix.hits:
            hits = hits.union(prefix.hits)
        if hits:
            words = prefix.words + words
    if not hits:
        return 0.0
    if _NEGATORS.isdisjoint(hits):  # the usual case: each distinct word counts once
        return sum(map(_EN.__getitem__, hits))
    negators = _NEGATORS.intersection(hits)
    # The words each negator governs (after its first use): Python work per negator, not per word.
    score = 0.0
    negated: set[str] = set()
    for negator in negators:
        at = words.index(negator) + 1
        if negator in _CANT and words[at : at + 1] and words[at].startswith("wait"):
            score += 2.0  # "can't wait"
            continue
        if negator.endswith(_CLAUSE_END):
            continue
        for word in words[at : at + _NEGATION_SCOPE]:
            negated.add(word)
            if word.endswith(_CLAUSE_END):
                break
    for word in hits - negators:
        weight = _EN[word]
        if word in negated:
            weight = -weight if weight > 0 else -0.5 * weight
        score += weight
    return score


# --------------------------------------------------------------------------- Korean

_KO_POSITIVE = {
    2.5: "최고 명작 걸작 인생영화 강추 꿀잼 존잼 핵잼 개꿀잼 만점 완벽 감동 짱",
    2.0: "재밌 재미있 재밋 재미나 재미난 잼있 잼나 훌륭 추천 소름 여운 명품 대작 압권 웰메이드 레전드 "
    "흥미진진 멋지 멋진 멋있 멋졌 멋쪄 아름답 아름다운 눈물 울었 감명 감탄 좋았 좋아요 좋다 좋네 "
    "좋은 좋고 좋음 좋아 최강 볼만 잘봤 잘보 잘만든 잘만들 굿 수작 행복 힐링 사랑 따뜻 따듯 탄탄 "
    "몰입 신선 괜찮 만족 일품 기대된 기대돼 기대됩 기대이상 굳 대단 강렬 달달 추억 소중 긴장감 "
    "짜릿 통쾌 재치 유익 뛰어나 뛰어난 훌륭 먹먹 기억남",
    1.0: "좋 재미 웃기 웃겼 귀엽 귀여 예쁘 이쁘 착한 훈훈 감사 짠하 뭉클 공감 인상깊 대박 역시 "
    "매력 잘하 ^^ ♥ ♡ ㅎㅎ 잔잔 설레 유쾌 박진감 부럽 배웠 슬프 슬펐 아팠 명복 ㅋㅋ ㅠㅠ "
    "볼수록 아이디어",
}
_KO_NEGATIVE = {
    3.0: "최악 쓰레기 ㅆㄹㄱ 졸작 망작 재미없 재미가없 노잼 돈아깝 시간아깝 비추 낭비 기대이하",
    2.0: "아깝 아까운 아까워 지루 실망 짜증 유치 억지 엉망 어이없 한심 허접 발연기 개판 후회 낚였 낚임 "
    "불쾌 뻔한 뻔하 뻔함 식상 지겹 답답 황당 노답 망했 망친 망침 망함 별로 과대평가 거품 알바 싫 "
    "어색 엉성 졸려 졸리 잠이 잤 ㅡㅡ -_- 최하 저질 그닥 그다지 애매 실패 조잡 막장 불편 "
    "무의미 밋밋 느슨 필요없 쒸레기 어거지 멍청 즈질 발암 거지같 망할 대재앙 어처구니 장애 "
    "이상하 유감 허무 별루 재미업 재미X 노답 불쌍한 수면제 하품 실소 시시",
    1.0: "뭐야 뭐냐 뭐임 모야 에휴 하아 안타깝 부족 글쎄 이상한 ;; 오글 어수선 부끄 불안정 흔들",
}
# Stems holding a space, and phrases whose parts mislead alone.
_KO_PHRASES = {
    "잘 봤": 2.0,
    "잘 보": 1.5,
    "잘 만든": 2.0,
    "잘 만들": 2.0,
    "재미 없": -3.0,
    "재미도 없": -3.0,
    "재미가 없": -3.0,
    "재미는 없": -3.0,
    "점도 아깝": -3.0,
    "점수 아깝": -3.0,
    "돈 아깝": -3.0,
    "시간 아깝": -3.0,
    "어이가 없": -2.0,
    "그저 그": -2.0,
    "그냥 그": -2.0,
    "수준 이하": -2.5,
    "이해가 안": -1.0,
    "이해 안": -1.0,
    "인상 깊": 1.5,
    "볼 만": 2.0,
    "기대 이상": 2.0,
    "또 보": 1.5,
    "다시 보": 1.5,
    "기대 되": 1.0,
    "기대 이하": -3.0,
    "10점": 2.5,
    "9점": 1.5,
    "8점": 1.0,
    "1점": -3.0,
    "2점": -2.0,
    "3점": -1.5,
    "0점": -3.0,
    "별 하나": -2.0,
    "별하나": -2.0,
    "돈 주고": -1.0,
    "돈주고": -1.0,
    "비추천": -3.0,
    "느낄 수 있": 1.0,
    "가슴 찡": 2.0,
    "기억에 남": 1.5,
    # Weak marks of tone, enough to lean one way when no word decides: rhetorical questions and
    # trailing ellipses go with complaint, exclamation and the tilde with enthusiasm.
    "?": -0.5,
    "..": -0.5,
    "냐": -1.0,
    "안 ": -0.5,
    "못 ": -0.5,
    "!": 0.5,
    "~": 0.5,
    # A run of a mark counts once (up to eight long), not once per pair.
    **{
        mark * n: weight
        for mark, weight in (("ㅋ", 1.0), ("ㅎ", 1.0), ("ㅠ", 1.0), (".", -0.5), ("?", -0.5), ("!", 0.5), ("~", 0.5))
        for n in range(2, 9)
    },
}
_KO_AFTER_NEGATION = ("없", "않", "못", "아니", "안 ", "줄 알", "줄알", "줄 았", "척")
_KO_BEFORE_NEGATION = ("안", "못", "안 ", "못 ", "덜", "덜 ")
_KO_AFTER_WINDOW = 5
# "Not at all" words come only with a negation, which may sit further away ("재미가 하나도 없다").
_KO_NOT_AT_ALL = ("하나도", "전혀", "1도")


def _trie_pattern(stems: list[str]) -> str:
    """One regex matching any of ``stems``, longest first, as a character trie: ``re`` tries
    alternatives one by one, so a flat ``a|b|c`` of ~300 stems costs ~300 tests per character;
    the trie costs one per branch."""
    trie: dict = {}
    for stem in stems:
        node = trie
        for ch in stem:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict) -> str:
        alternatives = [re.escape(ch) + emit(child) for ch, child in sorted(node.items()) if ch]
        if not alternatives:
            return ""
        body = alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"
        return f"(?:{body})?" if "" in node else body  # greedy: the longer stem wins

    return emit(trie)


def _korean() -> tuple[dict[str, float], re.Pattern[str]]:
    table: dict[str, float] = {}
    for sign, groups in ((1.0, _KO_POSITIVE), (-1.0, _KO_NEGATIVE)):
        for weight, words in groups.items():
            for stem in words.split():
                table[stem] = sign * weight
    table.update(_KO_PHRASES)
    return table, re.compile(_trie_pattern(list(table)))


_KO, _KO_RE = _korean()
_KO_AFTER_RE = re.compile("|".join(map(re.escape, _KO_AFTER_NEGATION)))
_KO_NOT_AT_ALL_RE = re.compile("|".join(map(re.escape, _KO_NOT_AT_ALL)))
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _korean_score(text: str, pos: int = 0) -> float:
    score = last = 0.0
    negation_after = _KO_AFTER_RE.search
    # The stems as found, without a match object each: a stem starts where it is next found
    # (had it been found anywhere earlier, the scan would have matched there).
    end = pos
    for stem in _KO_RE.findall(text, pos):
        weight = _KO[stem]
        start = text.find(stem, end)
        end = start + len(stem)
        if weight > 0:
            if (
                negation_after(text, end, end + _KO_AFTER_WINDOW) is not None
                or text[max(0, start - 2) : start].endswith(_KO_BEFORE_NEGATION)
                or _KO_NOT_AT_ALL_RE.search(text, max(0, start - 5), end + 6) is not None
            ):
                weight = -weight
        elif "않" in text[end : end + _KO_AFTER_WINDOW]:
            weight = -0.5 * weight  # "지루하지 않다": mildly positive
        score += weight
        if weight >= 1 or weight <= -1:
            last = weight
    # A Korean review ends on its verdict ("지루했지만 결국 재밌었다"): the last word that
    # carries sentiment counts half again.
    return score + 0.5 * last


# --------------------------------------------------------------------------- both


def polarity(text: str) -> float:
    """The text's sentiment score: > 0 positive, < 0 negative, 0 no evidence either way.

    Deterministic, reads nothing but ``text`` (no label, no hidden state).

    >>> polarity("I love it, great value") > 0 > polarity("not good, it arrived broken")
    True
    >>> polarity("정말 재미있어요 최고!") > 0 > polarity("재미없다. 시간 아깝다")
    True
    """
    return polarity_lower(text.lower())


def polarity_lower(low: str, prefix: Prefix | None = None) -> float:
    """:func:`polarity` of a text already lower-cased (the responder has it at hand).

    ``prefix``: a :class:`Prefix` that ``low`` starts with (the same score, for less work).
    A text that is not all ASCII is scored once (Korean costs some ten microseconds): the
    same texts come back across a test suite, a re-run, a comparison of models and a
    dataset's duplicates. An English score costs less than remembering it would, one text at
    a time (the responder remembers both for a slice of one template's texts that come
    back, under what the scorer reads of each: :func:`reading_keys`)."""
    if low.isascii():
        return _english_score(low, prefix)
    score = _SCORED_TEXTS.get(low)
    if score is None:
        score = score_lower(low, prefix)
        if len(_SCORED_TEXTS) >= _REMEMBERED:
            _SCORED_TEXTS.clear()
        _SCORED_TEXTS[low] = score
    return score


def score_lower(low: str, prefix: Prefix | None = None) -> float:
    """:func:`polarity_lower` without remembering it: English, then (for a text not all
    ASCII) Korean."""
    score = _english_score(low, prefix)
    if low.isascii():
        return score
    # From a little before the first non-ASCII character ("10점"): an English instruction
    # ahead of a Korean review is not scanned (its "?" is not the reviewer's). An ASCII
    # prefix holds none.
    first = _NON_ASCII.search(low, 0 if prefix is None else prefix.size)
    return score + _korean_score(low, max(0, first.start() - 3) if first else 0)


_SCORED_TEXTS: dict[str, float] = {}
_REMEMBERED = 1 << 14


# --------------------------------------------------------------------------- what is read

_UNREAD_DIGITS = bytes.maketrans(b"0123456789", b"0000000000")
_READ_AFTER = tuple(stem.encode() for stem in ("점", "도"))  # "10점", "1도": digits the scorer reads
_DIGITS = frozenset(b"0123456789")


def reading_keys(joined: bytes) -> list[bytes]:
    """What the scorer reads of each of the NUL-separated texts in ``joined`` (UTF-8,
    lower-cased, none holding a NUL): the text with every digit it does not read set to ``0``.
    Equal keys, equal scores.

    The lexicons hold digits in two places only: ``<3`` (English) and a number of points or
    ``1도`` ("not one bit", Korean) — a digit right after ``<``, and a run of digits right
    before ``점`` or ``도``. Those are kept; any other digit is only part of a word no lexicon
    holds, and setting it to ``0`` keeps every word, length and position the scorer looks at.
    """
    return _reading(joined).split(b"\0")


def _reading(joined: bytes) -> bytes:
    """:func:`reading_keys` before the split: ``joined`` with the digits the scorer does not
    read set to ``0``."""
    keys = joined.translate(_UNREAD_DIGITS)
    if keys == joined:  # no digit other than 0
        return joined
    kept: bytearray | None = None
    digits = _DIGITS
    at = joined.find(b"<")
    while at != -1:
        if joined[at + 1 : at + 2] and joined[at + 1] in digits:
            if kept is None:
                kept = bytearray(keys)
            kept[at + 1] = joined[at + 1]
        at = joined.find(b"<", at + 1)
    if not joined.isascii():
        for mark in _READ_AFTER:
            at = joined.find(mark)
            while at != -1:
                start = at
                while start and joined[start - 1] in digits:
                    start -= 1
                if start != at:
                    if kept is None:
                        kept = bytearray(keys)
                    kept[start:at] = joined[start:at]
                at = joined.find(mark, at + len(mark))
    return keys if kept is None else bytes(kept)
