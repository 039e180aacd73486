"""The client-name rule (PRODUCT.md §3): length, and no imitation of a brand word.

The check normalises (Unicode NFKC, case folding, common look-alikes such as
`1→i`, `0→o`, `3→e`, `4/@→a`, Cyrillic and Greek homoglyphs), removes
separators, then:
- blocks a brand word that starts at a word of the name (`iRacer Tools`,
  `i-Racing Stats`, `1Racing`, `ＩＲＡＣＥ`): a clear match;
- warns, for the reviewer, when a brand word hides inside a word
  (`MyiRacing`, `Hi Racing`) or a word starts one letter (or one swap) away
  from one (`iRasing`, `Iarce`). Staff make the final call; honest names
  such as `Miracle Laps` or `Discord Race Bot` pass.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

MIN_NAME_LENGTH = 3
MAX_NAME_LENGTH = 64

LOOK_ALIKES = str.maketrans(
    {
        "1": "i", "!": "i", "|": "i", "¡": "i", "ı": "i",
        "0": "o", "3": "e", "4": "a", "@": "a", "5": "s", "$": "s", "7": "t",
        # Cyrillic and Greek letters that look Latin (NFKC keeps them apart).
        "а": "a", "е": "e", "і": "i", "ї": "i", "о": "o", "р": "p", "с": "c", "ѕ": "s",
        "х": "x", "у": "y", "к": "k", "м": "m", "т": "t", "н": "h", "в": "b", "г": "r",
        "α": "a", "ε": "e", "ι": "i", "ο": "o", "ρ": "p", "κ": "k", "ν": "v", "τ": "t",
    }
)  # fmt: skip
# Word boundaries in the name as typed: separators, and a lower→upper case change.
WORD_BREAK = re.compile(r"[^\w@$!|¡]+|_|(?<=[a-z])(?=[A-Z])")


@dataclass
class NameCheck:
    name: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def canonical(text: str) -> str:
    """NFKC, case-folded, look-alikes mapped, separators removed."""
    folded = unicodedata.normalize("NFKC", text).casefold().translate(LOOK_ALIKES)
    return "".join(ch for ch in folded if ch.isalnum())


def name_key(name: str) -> str:
    """What makes two names "the same" for uniqueness among live clients."""
    return unicodedata.normalize("NFKC", " ".join(name.split())).casefold()


def _word_starts(name: str) -> list[str]:
    """Canonical text from each word start to the end of the name."""
    words = [w for w in WORD_BREAK.split(unicodedata.normalize("NFKC", name)) if w]
    return [canonical("".join(words[index:])) for index in range(len(words))]


def _one_letter_away(candidate: str, word: str) -> bool:
    """Same length with one substitution or one swap of neighbours."""
    if len(candidate) != len(word) or candidate == word:
        return False
    differences = [i for i, (a, b) in enumerate(zip(candidate, word, strict=True)) if a != b]
    if len(differences) == 1:
        return True
    if len(differences) == 2 and differences[1] == differences[0] + 1:
        first, second = differences
        return candidate[first] == word[second] and candidate[second] == word[first]
    return False


def check_client_name(name: str, brand_words: Iterable[str]) -> NameCheck:
    trimmed = name.strip()
    check = NameCheck(trimmed)
    if len(trimmed) < MIN_NAME_LENGTH:
        check.problems.append(f"a client name needs at least {MIN_NAME_LENGTH} characters")
        return check
    if len(trimmed) > MAX_NAME_LENGTH:
        check.problems.append(
            f"a client name may have at most {MAX_NAME_LENGTH} characters; "
            f"this one has {len(trimmed)}"
        )
        return check
    if any(unicodedata.category(ch).startswith("C") for ch in trimmed):
        check.problems.append("a client name must not contain control or invisible characters")
        return check
    whole = canonical(trimmed)
    starts = _word_starts(trimmed)
    for word in sorted({canonical(w) for w in brand_words}, key=len, reverse=True):
        if any(start.startswith(word) for start in starts):
            check.problems.append(
                f"the name must not imitate the platform's name: '{word}' (or a look-alike "
                "spelling) starts one of its words; choose a name of your own"
            )
            return check
        if word in whole:
            check.warnings.append(
                f"'{word}' appears inside the name; staff will check it does not imitate the "
                "platform's name"
            )
        elif any(_one_letter_away(start[: len(word)], word) for start in starts):
            check.warnings.append(
                f"part of the name is one letter away from '{word}'; staff will check it does "
                "not imitate the platform's name"
            )
    return check
