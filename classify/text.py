"""Words of a mail reduced to comparable forms, so keywords survive Finnish inflection.

Snowball stemmers alone are not enough for Finnish: ``salasana`` stems to
``salas`` but ``salasanaa`` to ``salasan``, and consonant gradation turns
``käyttöoikeus`` into ``käyttöoikeud-``.  A keyword therefore matches a word
when one of their forms (the lower-cased word or its fi/sv/en stem) equals,
or is a short prefix of, the other; that tolerance is what the tests pin.

Each mail is tokenised and stemmed once (``FieldIndex``); stems are cached per
word across mails because service-desk vocabulary repeats endlessly.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

import snowballstemmer

LANGUAGES = ("finnish", "swedish", "english")
_STEMMERS = {name: snowballstemmer.stemmer(name) for name in LANGUAGES}

# Letters and digits, keeping inner hyphens/apostrophes out: "SD-123" gives two tokens.
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)

# Keyword forms this short must match exactly: "esim" (eSIM) must not find
# "esimies", "lisä" must not find "lisättyä".
_EXACT_UP_TO = 4
# Letters an inflected word may add after the keyword's form ("salas" -> "salasano").
_SLACK = 3
_BUCKET = 4
# Finnish consonant gradation and stem-vowel changes at the end of a stem:
# käyttöoikeus -> käyttöoikeude-, tunnus -> tunnukse-, hiiri -> hiire-, ranta -> ranna-.
_GRADATION = frozenset(
    {("s", "d"), ("s", "k"), ("t", "d"), ("k", "g"), ("p", "v"), ("p", "m"), ("t", "n"),
     ("t", "l"), ("t", "r"), ("i", "e"), ("e", "i"), ("a", "o"), ("ä", "ö"), ("s", "t"),
     ("n", "s")}
)  # fmt: skip


def fold(text: str) -> str:
    """Drop accents so ``tyotodistus`` typed on a foreign keyboard meets ``työtodistus``."""
    if text.isascii():
        return text
    if len(text) <= 64:
        return _fold_word(text)
    return _fold(text)


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


# Words repeat endlessly across mails; folding one is a Unicode decomposition.
_fold_word = lru_cache(maxsize=200_000)(_fold)


def tokens(text: str) -> list[str]:
    """Lower-cased words in order; casefold also maps ß and similar safely."""
    return [word.casefold() for word in _TOKEN.findall(text)]


@lru_cache(maxsize=200_000)
def folded_forms(word: str) -> tuple[tuple[str, str], ...]:
    """Each form of the word with its accent-folded spelling, as the index stores them."""
    return tuple((form, fold(form)) for form in forms(word))


@lru_cache(maxsize=200_000)
def forms(word: str) -> tuple[str, ...]:
    """The word and its stems in each language, deduplicated, word first."""
    if word.isdigit():
        # Stemmers leave numbers as they are, and numbers (ticket, phone,
        # order) are new in nearly every mail: stemming them thrice missed the
        # cache for a quarter of a parse worker's routing time on numbered subjects.
        return (word,)
    seen = [word]
    for name in LANGUAGES:
        stem = _STEMMERS[name].stemWord(word)
        if stem and stem not in seen:
            seen.append(stem)
    return tuple(seen)


def forms_match(keyword: str, word: str) -> bool:
    """Whether a word of the mail is the keyword modulo a short inflectional ending.

    Allowed: equality; the keyword's form followed by at most three more
    letters; or the keyword's form with its last letter changed by consonant
    gradation.  Never the other way round: the mail word "till" is not the
    keyword "tillägg", and "käyttöön" is not "käyttökatko".
    """
    if keyword == word:
        return True
    size = len(keyword)
    if size <= _EXACT_UP_TO or len(word) < size:
        return False
    if word.startswith(keyword):
        return len(word) - size <= _SLACK
    last = size - 1
    return (
        word[:last] == keyword[:last]
        and (keyword[last], word[last]) in _GRADATION
        and len(word) - last <= _SLACK + 2
    )


class Entry(NamedTuple):
    """One form of a distinct word and every position of that word in a field."""

    form: str
    folded: str
    positions: tuple[int, ...]


def _key(folded: str) -> str:
    """Index key of a folded form: its first letters (all of a short form)."""
    return folded[:_BUCKET]


@lru_cache(maxsize=200_000)
def _keyed_forms(word: str) -> tuple[tuple[str, str, str], ...]:
    """(index key, form, folded form) for each form of the word."""
    return tuple((_key(folded), form, folded) for form, folded in folded_forms(word))


@dataclass(slots=True)
class FieldIndex:
    """All words of one field, indexed by the first letters of their forms.

    A keyword only needs comparing with the few forms that share its first
    four (accent-folded) letters, which keeps a hundred rules cheap per mail;
    a form shorter than that is its own key. Each distinct word is indexed
    once with all its positions: mail repeats its words, and building the
    index was most of the cost of routing.
    """

    words: list[str]
    entries: dict[str, list[Entry]] = field(default_factory=dict)
    joined: str = ""
    _joined_folded: str | None = None

    @classmethod
    def build(cls, text: str) -> FieldIndex:
        words = tokens(text)
        index = cls(words=words)
        joined = " ".join(words)
        index.joined = f" {joined} "
        where: dict[str, list[int]] = {}
        for position, word in enumerate(words):
            where.setdefault(word, []).append(position)
        entries = index.entries
        for word, positions in where.items():
            places = tuple(positions)
            # Distinct forms of one word: no duplicate entries.
            for key, form, folded in _keyed_forms(word):
                entries.setdefault(key, []).append(Entry(form, folded, places))
        return index

    @property
    def joined_folded(self) -> str:
        """The joined words without accents; only accent-blind wildcards need it,
        and folding a whole body was a third of building its index."""
        if self._joined_folded is None:
            self._joined_folded = fold(self.joined)
        return self._joined_folded

    def has_any(self, keys: frozenset[str]) -> bool:
        """Cheap pre-check: could any keyword with these index keys match here?"""
        return not self.entries.keys().isdisjoint(keys)


@dataclass(frozen=True, slots=True)
class Keyword:
    """A compiled keyword or phrase: every word's forms, precomputed at load time.

    ``stem`` off means whole words only (for codes like ``VPN``); with
    ``fold_accents`` forms are compared without accents.  Stars make a
    wildcard instead of a stem match: ``tulost*`` is a prefix, ``*todistus``
    a compound ending (``palkkatodistuksen``), ``*lisenssi*`` anywhere in a word.
    """

    text: str
    words: tuple[tuple[str, ...], ...]
    stem: bool = True
    fold_accents: bool = False
    wildcard: re.Pattern[str] | None = None
    # Per word of the phrase: (form, index key to look it up under).
    lookups: tuple[tuple[tuple[str, str], ...], ...] = ()
    # Index keys the first word can only be found under; None for wildcards
    # (no pre-check possible).
    first_keys: frozenset[str] | None = None

    @classmethod
    def compile(cls, text: str, *, stem: bool = True, fold_accents: bool = False) -> Keyword:
        raw = text.strip()
        words = tokens(raw.strip("*"))
        if raw.startswith("*") or raw.endswith("*"):
            return cls(raw, (tuple(words),), stem, fold_accents, _wildcard(raw, fold_accents))
        compiled = tuple((_keyword_forms(w) if stem else (w,)) for w in words)
        if fold_accents:
            compiled = tuple(tuple(dict.fromkeys(fold(f) for f in ws)) for ws in compiled)
        lookups = tuple(
            tuple((form, _key(form if fold_accents else fold(form))) for form in word_forms)
            for word_forms in compiled
        )
        first = frozenset(key for _, key in lookups[0]) if lookups else frozenset()
        return cls(raw, compiled, stem, fold_accents, None, lookups, first)

    def absent_from(self, index: FieldIndex) -> bool:
        """Cheap and certain: no form of the first word is in the field's index."""
        return self.first_keys is not None and self.first_keys.isdisjoint(index.entries)

    def find(self, index: FieldIndex) -> str | None:
        """The matched words of the field, or None; phrases need consecutive words."""
        if not self.words or not self.words[0]:
            return None
        if self.wildcard is not None:
            return self._find_wild(index)
        starts = self._positions(index, 0)
        for offset in range(1, len(self.words)):
            if not starts:
                break
            following = self._positions(index, offset)
            starts &= following
        if not starts:
            return None
        first = min(starts)
        return " ".join(index.words[first : first + len(self.words)])

    def _positions(self, index: FieldIndex, offset: int) -> set[int]:
        found: set[int] = set()
        entries = index.entries
        for form, key in self.lookups[offset]:
            for entry in entries.get(key, ()):
                other = entry.folded if self.fold_accents else entry.form
                if forms_match(form, other) if self.stem else other == form:
                    found.update(p - offset for p in entry.positions)
        return found

    def _find_wild(self, index: FieldIndex) -> str | None:
        assert self.wildcard is not None
        haystack = index.joined_folded if self.fold_accents else index.joined
        match = self.wildcard.search(haystack)
        if match is None:
            return None
        if len(haystack) == len(index.joined):
            return index.joined[match.start() : match.end()]
        return match.group(0)


def _keyword_forms(word: str) -> tuple[str, ...]:
    """Forms of a keyword, minus over-stemmed stubs: "uusitaan" -> "uus" would match "uusille"."""
    return tuple(f for f in forms(word) if f == word or len(f) >= _EXACT_UP_TO)


def _wildcard(raw: str, fold_accents: bool) -> re.Pattern[str]:
    """Regex over the space-joined words of a field for a starred keyword."""
    head, tail = raw.startswith("*"), raw.endswith("*")
    words = tokens(raw.strip("*"))
    if fold_accents:
        words = [fold(w) for w in words]
    body = re.escape(" ".join(words))
    if head and not tail:
        # A compound ending may still carry an inflection: allow the shortest
        # stem of the last word plus a few letters.
        last = min(forms(words[-1]), key=len) if words else ""
        last = last[:-1] if len(last) > 5 else last
        stemmed = " ".join([*words[:-1], last])
        body = f"(?:{re.escape(stemmed)}[^ ]{{0,5}})"
    prefix = "[^ ]*" if head else "(?<= )"
    suffix = "[^ ]*" if tail else "(?= )"
    return re.compile(prefix + body + suffix)
