"""Unicode lookalikes: invisible characters and confusable letters (standard library only).

Used where text must not pass for something else: a message body typed into a pane
(``broker.tmux.harden_body``: a fake preview header, a hidden leading ``/`` or ``!``) and
agent names (nothing may pass for the reserved ``Administrator``).

* :data:`INVISIBLE` matches characters that render as nothing (or as blank space that is not
  whitespace): every format character (Unicode category Cf — zero-width space and joiners,
  bidi controls, the BOM, soft hyphen, tag characters...), the combining grapheme joiner,
  variation selectors, and the Hangul and Braille fillers.
* :func:`skeleton` reduces a name to a comparison key: NFKC, case folding, invisible
  characters and combining marks removed, common Cyrillic/Greek lookalikes and ``0``/``1``/
  ``l``/``rn`` mapped onto the Latin letters they imitate.
"""

from __future__ import annotations

import re
import unicodedata

INVISIBLE_CLASS = (
    "["
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\ufff9-\ufffb\uffa0"
    "\u0600-\u0605\u06dd\u070f\u0890\u0891\u08e2"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f\U000e0100-\U000e01ef"
    "]"
)
INVISIBLE = re.compile(INVISIBLE_CLASS)

#: Letters that look like Latin ones, keyed by their case-folded form.
_CONFUSABLES = {
    # Cyrillic
    "а": "a",
    "в": "b",
    "с": "c",
    "ԁ": "d",
    "е": "e",
    "ё": "e",
    "һ": "h",
    "н": "h",
    "і": "i",
    "ї": "i",
    "ӏ": "i",
    "ј": "j",
    "к": "k",
    "м": "m",
    "о": "o",
    "р": "p",
    "ԛ": "q",
    "ѕ": "s",
    "т": "t",
    "у": "y",
    "ԝ": "w",
    "х": "x",
    "ү": "y",
    # Greek
    "α": "a",
    "β": "b",
    "ϲ": "c",
    "ε": "e",
    "η": "n",
    "ι": "i",
    "κ": "k",
    "μ": "m",
    "ν": "v",
    "ο": "o",
    "ρ": "p",
    "τ": "t",
    "υ": "u",
    "χ": "x",
    "ζ": "z",
    # Latin lookalikes and digits
    "ı": "i",
    "ɑ": "a",
    "ɡ": "g",
    "ℓ": "i",
    "l": "i",
    "1": "i",
    "|": "i",
    "!": "i",
    "0": "o",
}
_FOLD = str.maketrans(_CONFUSABLES)


def strip_invisible(text: str) -> str:
    return INVISIBLE.sub("", text)


def skeleton(text: str) -> str:
    """The comparison key of a name (see the module docstring); surrounding whitespace and
    every whitespace character inside are ignored."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = strip_invisible(text)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch) and not ch.isspace())
    text = text.translate(_FOLD)
    return text.replace("rn", "m")
