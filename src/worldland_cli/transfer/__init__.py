"""Moving files to and from pods over SFTP: the engine, its safety rules and progress.

Where things are (docs/transfer.md, "Where the code is"):

* ``upload.py``, ``download.py``: each direction's plan and entry point (``sendplan.py``
  plans what ``send`` reads, ``exclude.py`` what --exclude leaves out; ``safety.py`` checks
  every name a pod sends);
* ``survey.py``: what the destination holds already (skip, resume, refuse); ``packed.py``:
  small files many to a stream; ``failures.py``: permission and full disks, in one line;
* ``engine.py``: what both do for each file: workers, retries, the verified resumable move;
* ``model.py``: the transfer model (entries, options, results), without I/O;
* ``pipeline.py``: one file's bytes, pipelined, through either carrier: ``lane.py`` (the
  system's ``ssh``, speaking ``sftpcodec.py``'s packets) or ``sftpcarrier.py`` (asyncssh);
  ``lanes.py`` picks one for each file, ``overlap.py`` runs disk and hash beside it;
* ``localfs.py``: all local file I/O of user data; ``ssh.py``: the asyncssh connection;
  ``farside.py``, ``farprogram.py`` and ``farreplies.py``: the far-side helper, one
  process per connection (stat, hash, packed files), and the checks of what it answers;
  ``partmark.py`` and ``remoteparts.py``: ``.part`` files of ours;
* ``targets.py``, ``remote.py``: what an argument names, and the hub's pods and codes.

Importing this package is cheap on purpose: :mod:`.targets` and :mod:`.errors` need no
network libraries, so the command can parse arguments before asyncssh is imported by
:mod:`.upload` or :mod:`.download`.
"""
