"""Names as a terminal may show them: non-printable characters escaped, as ``ls -b`` does.

A pod chooses its file names (and what a code's sender registers), and a name holding
``ESC ]0;...`` or ``ESC [2J``, a C1 control, or U+202E (right-to-left override) would reach
the renter's terminal raw: it could set the window title, rewrite what is on the screen, or
make ``model.pt<U+202E>exe.sh`` read as ``model.pths.exe``. Every name and every piece of text
from the far side goes through :func:`shown` before it joins a message, a note or an error.
``--json`` keeps the raw name: ``json.dumps`` escapes control characters (and, with its
default ``ensure_ascii``, everything beyond ASCII) itself.
"""

from __future__ import annotations


def shown(text: object) -> str:
    r"""``text`` with backslashes and non-printable characters escaped as Python writes them.

    Non-printable is :meth:`str.isprintable`'s sense: C0 and C1 controls, DEL, format
    characters such as the bidi overrides, separators other than the space, and the lone
    surrogates that undecodable bytes become. ``\x1b`` stays readable and cannot act.
    """
    value = str(text)
    if value.isprintable() and "\\" not in value:
        return value
    return "".join(c if c.isprintable() and c != "\\" else repr(c)[1:-1] for c in value)
