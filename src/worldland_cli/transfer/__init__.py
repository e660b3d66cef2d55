"""Moving files to and from pods over SFTP: the engine, its safety rules and progress.

Importing this package is cheap on purpose: :mod:`.targets` and :mod:`.errors` need no
network libraries, so the command can parse arguments before asyncssh is imported by
:mod:`.engine` and :mod:`.ssh`.
"""
