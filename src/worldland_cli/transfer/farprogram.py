"""The far-side helper's program: one python3 process per connection, never one per file.

Why one process: OpenSSH runs every exec request through the remote account's login shell,
and Debian's bash reads ``~/.bashrc`` for a command run by sshd; a ``pyenv init`` or
``conda`` line there costs 0.2-1 s per process. A far-side hash per file made 2,000 small
files 25-500x slower than rsync. So :mod:`.farside` starts this program once per connection
and asks it for everything the far side must do itself, in batches, over its stdin and
stdout: stat many paths, hash many files (or their prefixes), make directories, hash one
file while it streams (the ``follow`` and ``whole`` modes of the hash that used to be a
process per file), and move small files packed, many to a frame stream (put: written,
hashed back from the far disk, synced and renamed there; get: read, hashed and stat-checked
there).

Frames, both ways: ``kind`` (1 byte), ``rid`` (the request's id, u32), ``length`` (u32),
then that many bytes, JSON for everything but file data. Before its first frame the program
prints :data:`HELLO` with the nonce it was given, so whatever a ``~/.bashrc`` prints first is
skipped, and reads the SFTP INIT packet the client sends at once (:data:`PREAMBLE`): an
account forced to ``internal-sftp`` answers that with an SFTP VERSION instead of waiting for
a helper that never comes.

It runs on python >= 3.6 (no walrus, no dataclasses), uses bytes paths (UTF-8, whatever the
far side's locale), and removes every staging file it made when its stdin ends or it fails.
A hash job's thread runs at nice 10: on a pod the renter's own work comes first, and nothing
waits on that hash until the stream ends. The packed batches and the surveys' hashes, which
the transfer waits on, run at the account's own priority, as rsync's server does.

(About 450 lines because it is one program, sent whole on the helper's command line; its
client, which checks every answer, is :mod:`.farside`. It is tested by running it, there and
here: tests/transfer/test_farside.py.)
"""

from __future__ import annotations

import shlex

HELLO = b"WORLDLAND-FARSIDE 1 "
# An SFTP INIT (length 5, type 1, version 3): the helper skips it; internal-sftp answers it.
PREAMBLE = b"\x00\x00\x00\x05\x01\x00\x00\x00\x03"
NO_PYTHON = 97  # the wrapper's exit status when the far side has no python3

# How the far side starts a program of ours, as ``sh -c START PROGRAM ARG...`` (the helper's
# and the lane server's, :mod:`.laneserver`): the first python3 on the PATH, unless it is a
# version manager's shim (pyenv's, asdf's): a shim is a shell script that picks a python,
# ~0.1 s a start here, and any python3 >= 3.6 runs them, so the system's is taken where there
# is one.
START = f"""p=$(command -v python3) || exit {NO_PYTHON}
case "$p" in */shims/*) for q in /usr/bin/python3 /usr/local/bin/python3; do
  if [ -x "$q" ]; then p=$q; break; fi; done;; esac
exec "$p" -c "$0" "$@"
"""
GREETING_MAX = 64 << 10  # what a ~/.bashrc may print before a program's hello


def start_command(program: str, nonce: str) -> str:
    """The far side's command for ``program`` (given ``nonce``), through :data:`START`,
    one shell word each, as the account's login shell will read them."""
    return " ".join(shlex.quote(a) for a in ("sh", "-c", START, program, nonce))


def greeting(seen: bytes, hello: bytes, nonce: str) -> tuple[bool, bytes] | None:
    """What a program started by :func:`start_command` has said so far (``seen``).

    None while neither its ``hello`` line with ``nonce`` nor an SFTP VERSION has come (read
    more); (True, the bytes after the hello); or (False, ``seen``) when an SFTP VERSION came
    first: an account forced to ``internal-sftp`` runs no command and answers the SFTP INIT
    the client sent.
    """
    if seen[:2] == b"\x00\x00" and seen[4:5] == b"\x02":  # a VERSION, length < 64 KiB
        return False, seen
    line = b"\n" + hello + nonce.encode() + b"\n"
    at = seen.find(line)
    return (True, seen[at + len(line) :]) if at >= 0 else None


# The program, run as ``python3 -c PROGRAM NONCE``.
PROGRAM = r"""
import errno, hashlib, json, mmap, os, stat, struct, sys, threading
HEAD = struct.Struct(">cII")
BLOCK = 256 << 10
nonce = sys.argv[1]
inp = sys.stdin.buffer
out = sys.stdout.buffer
lock = threading.Lock()
staged = set()
jobs = {}
try:
    import ctypes
    _syncfs = ctypes.CDLL(None, use_errno=True).syncfs
except Exception:
    _syncfs = None

def send(kind, rid, payload, flush=True):
    with lock:
        out.write(HEAD.pack(kind, rid, len(payload)))
        out.write(payload)
        if flush:
            out.flush()

def reply(kind, rid, doc, flush=True):
    send(kind, rid, json.dumps(doc).encode(), flush)

def b(path):
    return path.encode("utf-8", "surrogateescape")

def oserr(e):
    return [e.errno or 0, e.strerror or str(e)]

def read_exact(n):
    data = inp.read(n)
    if len(data) != n:
        raise EOFError
    return data

def kind_of(mode):
    if stat.S_ISREG(mode):
        return "f"
    if stat.S_ISDIR(mode):
        return "d"
    if stat.S_ISLNK(mode):
        return "l"
    return "o"

def do_stat(paths):
    found = []
    for p in paths:
        try:
            st = os.lstat(b(p))
        except OSError as e:
            found.append([None] + oserr(e))
            continue
        entry = [kind_of(st.st_mode), st.st_size, stat.S_IMODE(st.st_mode), st.st_mtime]
        if entry[0] == "l":
            try:
                entry.append(os.readlink(b(p)).decode("utf-8", "surrogateescape"))
            except OSError:
                entry.append(None)
        found.append(entry)
    return found

def hash_fd(fd, limit):
    # A buffer no larger than the file: zeroing 1 MiB for each 4 KiB file cost more than
    # writing it.
    h = hashlib.sha256()
    want = os.fstat(fd).st_size + 1 if limit < 0 else limit + 1
    buf = bytearray(min(1 << 20, max(want, 1)))
    view = memoryview(buf)
    pos = 0
    while limit < 0 or pos < limit:
        want = len(buf) if limit < 0 else min(len(buf), limit - pos)
        n = os.readv(fd, [view[:want]])
        if not n:
            break
        h.update(view[:n])
        pos += n
    return h.hexdigest(), pos

def open_regular(path):
    fd = os.open(b(path), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file")
    return fd

def do_hash(rid, items):
    # [path, limit] or [path, limit, 1]: with the 1, the file goes to disk first (fdatasync,
    # which a read-only descriptor may ask for), so a ranged upload's last round trip does both.
    found = []
    for item in items:
        p, limit = item[0], item[1]
        try:
            fd = open_regular(p)
            try:
                if item[2:] == [1]:
                    os.fdatasync(fd)
                found.append([hash_fd(fd, limit)[0], 0, ""])
            finally:
                os.close(fd)
        except OSError as e:
            found.append([None] + oserr(e))
    reply(b"R", rid, found)

def do_blocks(rid, doc):
    # The sha256 of each block of a file's first `limit` bytes: what a resume of a file that
    # several lanes wrote compares (ranged.py), in one pass and one answer.
    path, size, limit = doc
    try:
        fd = open_regular(path)
        try:
            found = []
            while len(found) * size < limit:
                found.append(hash_fd(fd, min(size, limit - len(found) * size))[0])
        finally:
            os.close(fd)
        reply(b"R", rid, found)
    except OSError as e:
        reply(b"R", rid, [None] + oserr(e))

def do_write(doc):
    # A small file of ours (a .part's mark), 0600, never through a link: created only if
    # absent (exclusive), or replaced; one round trip where SFTP takes an open, a write and
    # a close.
    path, text, exclusive = doc
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_EXCL if exclusive else os.O_TRUNC)
    try:
        fd = os.open(b(path), flags, 0o600)
        try:
            data = text.encode()
            while data:
                data = data[os.write(fd, data):]
        finally:
            os.close(fd)
    except OSError as e:
        return oserr(e)
    return None

def do_mkdirs(paths):
    done = []
    for p in paths:
        try:
            os.makedirs(b(p), exist_ok=True)
        except OSError as e:
            done.append(oserr(e))
            continue
        done.append(None)
    return done

class Job(object):
    # One file hashed while it streams: "follow" (sending: hash exactly as far as the client
    # says sftp-server acknowledged, then hand the range to writeback) or "whole" (receiving:
    # the whole source, through a mapping, while the client reads it).
    def __init__(self, rid, path, size, follow):
        self.rid, self.path, self.size, self.follow = rid, path, size, follow
        self.limit, self.ended, self.cancelled = 0, False, False
        self.cond = threading.Condition()
        self.h = hashlib.sha256()
        self.pos = 0
        self.fd = None
        self.base = None

    def tell(self, limit=None, end=False, cancel=False):
        with self.cond:
            if limit is not None:
                self.limit = max(self.limit, limit)
            self.ended = self.ended or end
            self.cancelled = self.cancelled or cancel
            self.cond.notify()

    def hash_to(self, limit):
        if self.fd is None:
            self.fd = os.open(b(self.path), os.O_RDONLY | os.O_NONBLOCK)
            self.base = os.fstat(self.fd)
        began = self.pos
        if not self.follow and self.pos < limit:
            try:
                mapped = mmap.mmap(self.fd, 0, access=mmap.ACCESS_READ)
            except (ValueError, OSError):
                mapped = None
            if mapped is not None:
                whole = memoryview(mapped)
                end = min(limit, len(whole))
                while self.pos < end:
                    step = min(end, self.pos + (1 << 20))
                    self.h.update(whole[self.pos:step])
                    self.pos = step
                whole.release()
                mapped.close()
        os.lseek(self.fd, self.pos, 0)
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        while self.pos < limit:
            n = os.readv(self.fd, [view[:min(limit - self.pos, len(buf))]])
            if not n:
                break
            self.h.update(view[:n])
            self.pos += n
        if self.follow and self.pos > began and hasattr(os, "posix_fadvise"):
            os.posix_fadvise(self.fd, began, self.pos - began, os.POSIX_FADV_DONTNEED)

    def run(self):
        try:
            os.nice(10)  # this thread only (Linux): nothing waits on it until the stream ends
        except OSError:
            pass
        try:
            if not self.follow:
                self.hash_to(self.size)
            while True:
                with self.cond:
                    while not (self.ended or self.cancelled or self.limit > self.pos):
                        self.cond.wait()
                    limit, ended, cancelled = self.limit, self.ended, self.cancelled
                if cancelled:
                    return
                if self.follow:
                    self.hash_to(limit)
                if ended:
                    break
            if self.follow:
                self.hash_to(self.limit)
            now = os.stat(b(self.path))
            if self.follow:
                changed = now.st_ino != self.base.st_ino or now.st_size != self.pos
            else:
                key = lambda s: (s.st_ino, s.st_size, s.st_mtime_ns, s.st_ctime_ns)
                changed = key(now) != key(self.base)
            reply(b"R", self.rid, [self.h.hexdigest(), self.pos, changed])
        except OSError as e:
            reply(b"!", self.rid, oserr(e))
        finally:
            jobs.pop(self.rid, None)
            if self.fd is not None:
                os.close(self.fd)

def free_bytes(path):
    try:
        st = os.statvfs(os.path.dirname(path) or b".")
        return st.f_bavail * st.f_frsize
    except OSError:
        return -1

class Put(object):
    # Small files packed: each written to a staging name beside its own, hashed back from
    # the far disk, and at the batch's end synced (one syncfs per file system) and renamed.
    def __init__(self):
        self.files = []
        self.current = None

    def begin(self, doc):
        final = b(doc["path"])
        head, name = os.path.split(final)
        tmp = os.path.join(head, b"." + name[:40] + b"." + os.urandom(6).hex().encode()
                           + b".worldland-tmp")
        rec = {"doc": doc, "final": final, "tmp": tmp, "left": doc["size"], "error": None}
        self.files.append(rec)
        self.current = rec
        try:
            rec["fd"] = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            staged.add(tmp)
        except OSError as e:
            self.fail(rec, e)
        if rec["left"] == 0:
            self.finish(rec)

    def fail(self, rec, e):
        rec["error"] = oserr(e)
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            rec["error"].append(free_bytes(rec["final"]))
        fd = rec.pop("fd", None)
        if fd is not None:
            os.close(fd)
        self.drop(rec)

    def drop(self, rec):
        if rec["tmp"] in staged:
            staged.discard(rec["tmp"])
            try:
                os.unlink(rec["tmp"])
            except OSError:
                pass

    def data(self, chunk):
        rec = self.current
        if rec is None:
            raise EOFError
        rec["left"] -= len(chunk)
        if rec["error"] is None:
            try:
                view = memoryview(chunk)
                while view:
                    view = view[os.write(rec["fd"], view):]
            except OSError as e:
                self.fail(rec, e)
        if rec["left"] <= 0:
            self.finish(rec)

    def finish(self, rec):
        self.current = None
        if rec["error"] is not None:
            return
        fd = rec.pop("fd")
        try:
            os.lseek(fd, 0, 0)
            rec["sha256"], rec["held"] = hash_fd(fd, -1)
            if _syncfs is None:
                os.fsync(fd)
            else:
                rec["dev"] = os.fstat(fd).st_dev
        except OSError as e:
            rec["fd"] = fd
            self.fail(rec, e)
            return
        os.close(fd)

    def end(self):
        synced = set()
        for rec in self.files:
            if _syncfs is not None and rec["error"] is None and rec["dev"] not in synced:
                synced.add(rec["dev"])
                fd = os.open(os.path.dirname(rec["tmp"]) or b".", os.O_RDONLY)
                try:
                    if _syncfs(fd) != 0:
                        rec["error"] = [ctypes.get_errno(), "syncfs failed"]
                finally:
                    os.close(fd)
        return [self.place(rec) for rec in self.files]

    def place(self, rec):
        doc = rec["doc"]
        if rec["error"] is not None:
            return {"error": rec["error"]}
        if rec["sha256"] != doc["sha256"] or rec["held"] != doc["size"]:
            self.drop(rec)
            return {"sha256": rec["sha256"], "placed": False}
        try:
            os.chmod(rec["tmp"], doc["mode"])
            os.utime(rec["tmp"], (doc["atime"], doc["mtime"]))
            if doc["overwrite"]:
                os.rename(rec["tmp"], rec["final"])
            else:
                try:
                    os.link(rec["tmp"], rec["final"])
                except OSError as e:
                    if e.errno != errno.EEXIST:
                        raise
                    same = self.same(rec)
                    self.drop(rec)
                    return {"sha256": rec["sha256"], "placed": same, "exists": True}
                os.unlink(rec["tmp"])
            staged.discard(rec["tmp"])
        except OSError as e:
            self.drop(rec)
            return {"error": oserr(e)}
        return {"sha256": rec["sha256"], "placed": True}

    def same(self, rec):
        # The name was taken meanwhile (or by this very file, before a dropped link lost
        # our answer): it counts as placed when it holds exactly these bytes.
        try:
            fd = open_regular(rec["final"].decode("utf-8", "surrogateescape"))
        except OSError:
            return False
        try:
            return hash_fd(fd, -1) == (rec["sha256"], rec["held"])
        finally:
            os.close(fd)

def do_get(rid, items):
    # Small files read whole (the client asks for at most a few MiB at once), hashed, and
    # checked not to have changed while read: same inode, size, mtime and ctime, still the
    # file at that name, and no longer than the size asked for.
    key = lambda s: (s.st_ino, s.st_size, s.st_mtime_ns, s.st_ctime_ns)
    for p, size in items:
        try:
            fd = open_regular(p)
            try:
                before = os.fstat(fd)
                chunks, got = [], 0
                while got <= size:
                    chunk = os.read(fd, size + 1 - got)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    got += len(chunk)
                data = b"".join(chunks)[:size]
                changed = got != size or key(os.fstat(fd)) != key(before)
                changed = changed or os.lstat(b(p)).st_ino != before.st_ino
            finally:
                os.close(fd)
        except OSError as e:
            reply(b"F", rid, {"error": oserr(e)}, False)
            continue
        head = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "changed": changed}
        reply(b"F", rid, head, False)
        for at in range(0, len(data), BLOCK):
            send(b"D", rid, data[at:at + BLOCK], False)
    reply(b"R", rid, None)

def spawn(target, *args):
    t = threading.Thread(target=target, args=args)
    t.daemon = True
    t.start()

def main():
    out.write(b"\n" + b"WORLDLAND-FARSIDE 1 " + nonce.encode() + b"\n")
    out.flush()
    if read_exact(9) != b"\x00\x00\x00\x05\x01\x00\x00\x00\x03":
        return
    puts = {}
    while True:
        try:
            kind, rid, n = HEAD.unpack(read_exact(HEAD.size))
            payload = read_exact(n)
        except EOFError:
            return
        if kind == b"D":
            puts[rid].data(payload)
            continue
        doc = json.loads(payload.decode()) if payload else None
        if kind == b"S":
            reply(b"R", rid, do_stat(doc))
        elif kind == b"H":
            spawn(do_hash, rid, doc)
        elif kind == b"B":
            spawn(do_blocks, rid, doc)
        elif kind == b"M":
            reply(b"R", rid, do_mkdirs(doc))
        elif kind == b"W":
            reply(b"R", rid, do_write(doc))
        elif kind == b"J":
            job = jobs[rid] = Job(rid, doc[0], doc[1], doc[2])
            spawn(job.run)
        elif kind == b"A" and rid in jobs:
            jobs[rid].tell(limit=doc)
        elif kind == b"X" and rid in jobs:
            jobs[rid].tell(end=True)
        elif kind == b"C" and rid in jobs:
            jobs[rid].tell(cancel=True)
        elif kind == b"P":
            puts.setdefault(rid, Put()).begin(doc)
        elif kind == b"E":
            reply(b"R", rid, puts.pop(rid, Put()).end())
        elif kind == b"G":
            spawn(do_get, rid, doc)

try:
    main()
finally:
    for tmp in list(staged):
        try:
            os.unlink(tmp)
        except OSError:
            pass
    try:
        out.flush()
    except OSError:
        pass
    os._exit(0)
"""
