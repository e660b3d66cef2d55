"""The one base class for failures a person can act on.

Login, wallet, certificate, hub-client and transfer errors all derive from it, so every
command renders any of them the same way (``commands.common.handled``): one error line with
a hint, or one JSON document, and an exit code scripts can rely on.
"""

from __future__ import annotations


class ActionableError(Exception):
    """A failure a person can fix: the message says what happened, the hint what to run.

    The login, wallet, certificate and hub-client errors all derive from it so a command can
    render any of them the same way (``output.error(message, hint)`` and ``exit_code``).
    """

    exit_code: int = 1

    def __init__(self, message: str, hint: str | None = None, *, exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code
