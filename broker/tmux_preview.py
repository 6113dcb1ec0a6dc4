"""The inline preview's text: a header line and one hardened body line (tmux.md §10.3-§10.4).

Pure text: no tmux call. :func:`broker.tmux.deliver_preview` types the payload built here;
the hooks (:mod:`broker.hook`) harden injected bodies with the same :func:`harden_body`.
Standard library only; regular expressions are compiled on first use.
"""

import functools
import re

_PATTERNS = {
    # tmux.md §10.4 step 1, tried in this order at each position
    "body_escapes": (
        r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]"  # CSI
        r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])"  # string sequence opener
        r"[^\n\r\x85\u2028\u2029]*?"  # its content, never past a line break
        r"(?:\x07|\x1b\\|\x9c|(?=[\n\r\x85\u2028\u2029])|\Z)"  # terminator or end of line
        r"|\x1b[\s\S]?"  # any other ESC with the one character after it
    ),
    # §10.4 step 2
    "line_breaks": r"\r\n|[\n\r\x85\u2028\u2029]",
    # §10.4 step 4
    "controls": r"[\x00-\x1f\x7f\x80-\x9f]",
    # Before step 1: compatibility forms that imitate ASCII (odd spaces, vertical, small,
    # fullwidth and halfwidth forms, letterlike and mathematical letters); NFKC maps them.
    "compat_lookalikes": (
        "[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000\u2100-\u214f\ufe10-\ufe19"
        "\ufe30-\ufe6f\uff00-\uffef\U0001d400-\U0001d7ff]+"
    ),
    # §10.4 step 6, after lookalikes are folded (see harden_body): any opening bracket,
    # then any whitespace or ⏎ (a former line break), then "cafleet msg" spelt with ASCII letters or the Cyrillic and
    # Greek letters that look like them.
    "fake_header": (
        "[\\[{\u2045\u2329\u27e6\u27e8\u27ea\u27ec\u27ee\u2983\u2985\u2987\u2989"
        "\u298b\u298d\u298f\u2991\u2993\u2995\u2997\u29fc\u2e22\u2e24\u2e26\u2e28"
        "\u2768\u276a\u276c\u276e\u2770\u2772\u2774\u3008\u300a\u300c\u300e\u3010"
        "\u3014\u3016\u3018\u301a]"
        "(?=[\\s\u23ce]*[c\u0441\u03f2][a\u0430\u0251\u03b1]f[l\u04cf\u0456\u03b9\u01311|]"
        "[e\u0435][e\u0435][t\u0442\u03c4][\\s\u23ce]+[m\u043c][s\u0455][g\u0261\u050d])"
    ),
}


@functools.cache
def _rx(name: str) -> re.Pattern:
    flags = re.IGNORECASE if name == "fake_header" else 0
    return re.compile(_PATTERNS[name], flags)


def _control_picture(match: re.Match) -> str:
    ch = match.group(0)
    code = ord(ch)
    if code < 0x20:
        return chr(0x2400 + code)
    if code == 0x7F:
        return "\u2421"
    return ""  # C1 controls are removed


def harden_body(text: str, limit: int) -> str:
    """The body line of a preview, tmux.md §10.4 steps 1-7 in order.

    Step 8 (trailing ``;``) is a property of the tmux call and is handled by
    :func:`broker.tmux.run`.

    Before step 1 the text is normalised so lookalikes cannot slip past steps 6 and 7:
    characters that imitate ASCII get their NFKC form (fullwidth ``［``, ``／``, ``！``,
    odd spaces, mathematical letters; other text such as ``…`` is kept as written), then
    every invisible character (zero-width, bidi controls, BOM, fillers:
    ``broker.textnorm.INVISIBLE``) is removed. Step 6 then defangs any opening bracket before ``cafleet msg``, whatever
    whitespace or Cyrillic/Greek lookalike letters it is spelt with.
    """
    import unicodedata

    from broker import textnorm

    text = _rx("compat_lookalikes").sub(  # 0a. compatibility forms imitating ASCII
        lambda m: unicodedata.normalize("NFKC", m.group(0)), text
    )
    text = textnorm.strip_invisible(text)  # 0b. zero-width, bidi, BOM, fillers
    text = _rx("body_escapes").sub("", text)  # 1. escape sequences
    text = _rx("line_breaks").sub("\u23ce", text)  # 2. line breaks -> ⏎
    text = text.replace("\t", " ")  # 3. tab -> space
    text = _rx("controls").sub(_control_picture, text)  # 4. other controls
    if len(text) > limit:  # 5. cut
        text = text[:limit] + "\u2026"
    text = _rx("fake_header").sub("(", text)  # 6. defang (any bracket, any lookalike)
    if text.startswith(("!", "/")):  # 7. no command on line 2
        text = " " + text
    return text


def preview_payload(task_id: str, sender_id: str, ts: str, body: str, limit: int) -> str:
    """``[cafleet msg <task8> from <sender8> <ts>]`` + LF + hardened body (tmux.md §10.3)."""
    header = f"[cafleet msg {task_id[:8]} from {sender_id[:8]} {ts}]"
    return header + "\n" + harden_body(body, limit)
