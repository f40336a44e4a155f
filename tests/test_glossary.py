"""One word per concept in each language: the words the language review replaced stay out.

The glossary is DOMAIN.md's "Words" table and the language review's one-word-per-concept table
(companion, booking, cancelling, location, linking, thank you, my profile…). A rider must not
meet two names for one thing, nor a Russian word in Kazakh text, nor a bracketed «(а)» that a
screen reader reads aloud. Patterns match whole words and their inflected forms (Kazakh and
Russian stems with any ending); each failure names the message id so the fix is one search away.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from babel.messages.pofile import read_po

from bot.i18n import LOCALES_DIR


@dataclass(frozen=True)
class Rule:
    concept: str
    use: str  # the one word for the concept, shown in the failure
    avoid: re.Pattern[str]


def rule(concept: str, use: str, pattern: str, *, case: bool = False) -> Rule:
    flags = 0 if case else re.IGNORECASE
    return Rule(concept, use, re.compile(pattern, flags))


# A stem at a word start, with any ending: r"\bболдыр\w*" finds болдырмаңыз, болдырылмады.
KAZAKH = (
    rule(
        "book (someone) for a ride",
        "«X-ті сапарға жазу» or «X үшін сапарға өтінім беру»",
        r"\b(сізге|оған|басқаларға|маған)\s+сапар\s+жаз\w*",
    ),
    rule("book", "«сапарға жазылу»", r"\bтапсырыс\w*"),
    rule(
        "cancel",
        "«сапардан бас тарту» (rider), «сапардың күшін жою» (dispatcher)",
        r"\bболдыр\w*",
    ),
    rule("companion", "«бірге жүретін адам»", r"\bалып\s+жүруш\w*"),
    rule("location pin", "«геолокация»", r"\bгеобелгі\w*|\bорналасқан\s+жер\w*"),
    rule("link / unlink", "«қосу / ажырату»", r"\bбайланыстыр\w*"),
    rule("thank you", "«Рақмет»", r"\bрахмет\w*"),
    rule("not approve", "«мақұлдамады» («растау» is 'confirm')", r"\bрастама\w*"),
    rule("my profile", "«Менің профилім»", r"\bменің\s+деректерім\b"),
    rule("rating", "«балл»", r"\bұпай\w*"),
    rule(
        "withdraw consent",
        "«келісімді кері қайтарып алу»",
        r"\bкері\s+қайтар(?!ып\s+ал)\w*",
    ),
    rule("IIN", "«ЖСН»", r"\bИИН\b", case=True),
    rule("medical commission", "«ДКК»", r"\bВКК\b", case=True),
    rule(
        "person with a disability",
        "«мүгедектігі бар адам» (the noun «мүгедек» is not used for people)",
        r"\bмүгедек(?!тіг|тік|тер\s+арба)\w*",
    ),
    rule("walker", "«жүруге арналған тірек (ходунок)»", r"(?<!\()\bходунок\b(?!\))"),
    rule(
        "the car can't come",
        "«көлік … келе алмайды» (the dispatcher does not come)",
        r"\bдиспетчер\w*[^.]*\bкеле\s+алмайды",
    ),
    rule(
        "postposition after a placeholder",
        "a colon before the value («жарамдылық мерзімі: {date}», «сағат {start}–{end}»)",
        r"\}\s+(дейін|мен|бен|пен)\b",
    ),
    rule("number sign", "«№{number}»", r"№\s+\{"),
)
RUSSIAN = (
    rule("book", "«заказать поездку»", r"\bзапис\w*"),
    rule("location pin", "«геолокация»", r"\bгеометк\w*|\bместоположени\w*"),
    rule(
        "gender brackets", "a sentence without gender («Кто отменил: {who}»)", r"\w\((а|ла|на|ы)\)"
    ),
    rule("characters", "«символов»", r"\bзнаков\b"),
    rule(
        "person with a disability",
        "«человек с инвалидностью» (the noun «инвалид» is not used)",
        r"\bинвалид(?!ност|н)\w*",
    ),
    rule("IIN", "«ИИН»", r"\bЖСН\b", case=True),
    rule("medical commission", "«ВКК»", r"\bДКК\b", case=True),
    rule("thank you", "«Спасибо»", r"\bблагодар\w*"),
    rule("not approve", "«не одобрил» («подтвердить» is 'confirm')", r"\bне\s+подтверди\w*"),
    rule("oldest", "«самое старое»", r"\bдавн(ее|ий|яя|ее)\b"),
    rule(
        "the car can't come",
        "«машина не сможет приехать» (the dispatcher does not come)",
        r"\bдиспетчер\w*\s+не\s+(может|сможет)\s+приехать",
    ),
    rule("number sign", "«№{number}»", r"№\s+\{"),
)
RULES = {"kk": KAZAKH, "ru": RUSSIAN}


def catalog(lang: str) -> dict[str, str]:
    """Every msgid of the language's catalogs, with its text and the file it is in."""
    found: dict[str, str] = {}
    for po in sorted((LOCALES_DIR / lang / "LC_MESSAGES").glob("*.po")):
        with po.open("rb") as fh:
            for message in read_po(fh, locale=lang):
                if message.id and message.string:
                    found[f"{po.name}: {message.id!r}"] = str(message.string)
    return found


def offending(lang: str, glossary_rule: Rule) -> list[str]:
    return [
        f"{where}\n    {lang}: {text!r}"
        for where, text in catalog(lang).items()
        if glossary_rule.avoid.search(text)
    ]


@pytest.mark.parametrize(
    ("lang", "glossary_rule"),
    [(lang, r) for lang, rules in RULES.items() for r in rules],
    ids=[f"{lang}-{r.concept}" for lang, rules in RULES.items() for r in rules],
)
def test_one_word_per_concept(lang: str, glossary_rule: Rule) -> None:
    found = offending(lang, glossary_rule)
    assert not found, (
        f"{glossary_rule.concept}: use {glossary_rule.use}; these {lang} texts don't:\n"
        + "\n".join(found)
    )


@pytest.mark.parametrize(
    ("lang", "concept", "text"),
    [
        ("kk", "cancel", "сапарды /rides арқылы болдырмаңыз"),
        ("kk", "book (someone) for a ride", "Ол енді сізге сапар жаза алмайды"),
        ("kk", "companion", "Алып жүрушілер саны: 2"),
        ("kk", "withdraw consent", "Бұл келісіміңізді кері қайтарады"),
        ("kk", "postposition after a placeholder", "{until} дейін жарамды"),
        ("kk", "person with a disability", "мүгедектерге арналған"),
        ("kk", "walker", "ходунок немесе балдақ"),
        ("kk", "the car can't come", "Диспетчер №1 сапарға сағат 10:00 келе алмайды"),
        ("ru", "book", "Ближайшая дата для записи"),
        ("ru", "gender brackets", "отменил(а)"),
        ("ru", "person with a disability", "для инвалидов"),
        ("ru", "location pin", "Геометка получена"),
    ],
)
def test_the_rules_catch_the_reviewed_errors(lang: str, concept: str, text: str) -> None:
    """The patterns find the very texts the review corrected, in their inflected forms."""
    matching = [r for r in RULES[lang] if r.concept == concept]
    assert matching and all(r.avoid.search(text) for r in matching)


@pytest.mark.parametrize(
    ("lang", "text"),
    [
        ("kk", "мүгедектігі бар адамдар, бірінші топтағы мүгедектік, мүгедектер арбасы"),
        ("kk", "жүруге арналған тірек (ходунок) немесе балдақ"),
        ("kk", "Келісіміңіз кері қайтарып алынды"),
        ("kk", "Көліктер сағат {start}–{end} аралығында келеді."),
        ("kk", "Сізді сапарға жаза алмайды; сапардан бас тарту; сапардың күшін жою"),
        ("ru", "инвалидность первой группы, инвалидная коляска"),
        ("ru", "Заказать поездку; отправьте геолокацию; до 300 символов"),
    ],
)
def test_the_right_words_pass(lang: str, text: str) -> None:
    assert not [r.concept for r in RULES[lang] if r.avoid.search(text)]
