"""The one base class for failures a person can act on.

Login, wallet, certificate, hub-client, config and transfer errors all derive from it, so
the one door every command goes through (:mod:`worldland_cli.commands.dispatch`) renders any
of them the same way: one error line with a hint, or one JSON document, and an exit code
scripts can rely on.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes scripts can rely on (CONTRIBUTING.md); every error below carries one.

    They live with the errors rather than with the renderer: the auth, hub-client and
    transfer modules raise errors with these codes without depending on how they are shown.
    """

    OK = 0
    FAILED = 1  # the command ran and found or hit a problem
    USAGE = 2  # bad flags or arguments (click's own convention)
    UNREACHABLE = 3  # a remote (hub, pod) could not be reached
    DENIED = 4  # authentication or authorisation refused
    INTERRUPTED = 130  # stopped by Ctrl-C (SIGINT), as a shell reports it: 128 + 2


class ActionableError(Exception):
    """A failure a person can fix: the message says what happened, the hint what to run.

    A command raises it and does nothing else: the door prints ``message`` and ``hint``
    (``output.render_failure``) and exits with ``exit_code``.
    """

    exit_code: int = ExitCode.FAILED

    def __init__(self, message: str, hint: str | None = None, *, exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code
