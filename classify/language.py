"""Which of Finnish, Swedish or English a mail is written in.

Service-desk mail is short and full of product names, so general-purpose
detectors trained on long prose guess poorly and pull in large models.  Three
languages with very different function words separate well by counting
stopwords, plus the letters only one of them uses (å is Swedish; many ä/ö
without å is Finnish).  Quoted lines of replies are skipped because the
quoted message may be in another language than the new text.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from classify.text import tokens


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STOPWORDS: dict[str, frozenset[str]] = {
    "fi": _words(
        """
        ja on ei että se tai kun minä mä olen oli ole olla et hän te he
        mutta myös kuin jos niin nyt vielä jo sekä sen siitä tämä tämän tätä
        mitä miten miksi missä kuka voi voisi voisitko voitteko voisiko pitää
        pitäisi tarvitsen tarvitaan saada saan kiitos kiitoksia hei moi
        terveisin ystävällisesti yst ystävällisin ti tulee olisi ovat onko
        eikä minun minulla minulle meillä meidän teille teidän kanssa jälkeen
        lähtien asti alkaen koska vaan vain kaikki mikään mitään yhä enää
        apua ongelma pyydän ole toimi toimii kerran osalta asia asiassa
        """
    ),
    "sv": _words(
        """
        och är att det jag inte för med som på har kan till av den en ett om
        var vi ni de mig min mitt mina vår våra er ert hur när vad varför kan
        kunde skulle ska måste behöver få får tack hej hälsningar vänliga
        vänligen mvh med från efter sedan också bara eller men så nu här där
        inte inga ingen något någon blir blev har hade fungerar jobbet
        """
    ),
    "en": _words(
        """
        the and is to of in it for with my me we you your our this that
        have has had not can could would should please thanks thank hi hello
        dear regards best kind am are was were be been will from at as an by
        need help there what when how why which who since does do did cannot
        can't isn't doesn't working work any some all new
        """
    ),
}

# Letters that are strong evidence on their own, per occurrence.
_LETTER_WEIGHT = {"å": ("sv", 2.0), "ä": ("fi", 0.25), "ö": ("fi", 0.2)}


def _own_lines(text: str) -> str:
    """The part of a body written by the sender: no quoted lines, no forwarded tail."""
    kept: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(">"):
            continue
        kept.append(line)
    return "\n".join(kept)


def scores(text: str) -> dict[str, float]:
    """Evidence per language; exposed so tests and explanations can show it."""
    counts = Counter(tokens(text))
    result = {
        lang: float(sum(counts[word] for word in words.intersection(counts)))
        for lang, words in _STOPWORDS.items()
    }
    lowered = text.lower()
    for letter, (lang, weight) in _LETTER_WEIGHT.items():
        result[lang] += lowered.count(letter) * weight
    # ä/ö appear in Swedish too; with å present they are not Finnish evidence.
    if "å" in lowered:
        result["fi"] -= (lowered.count("ä") * 0.25 + lowered.count("ö") * 0.2) * 0.8
    return result


def detect_language(
    parts: Iterable[str], default: str = "fi", allowed: Iterable[str] = ("fi", "sv", "en")
) -> str:
    """Best-scoring language of the given texts, ``default`` when there is no evidence."""
    text = "\n".join(_own_lines(part) for part in parts)[:4000]
    found = scores(text)
    best = max((lang for lang in allowed if lang in found), key=lambda lang: found[lang])
    if found[best] < 1.0:
        return default
    ties = [lang for lang in allowed if found.get(lang) == found[best]]
    return default if len(ties) > 1 and default in ties else best
