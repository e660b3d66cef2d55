"""The OpenSSH lane's far end where the pod has python3: a small SFTP server of our own.

Why: the account's own SFTP server (``sftp-server``, or sshd's ``internal-sftp``) copies
every byte through its buffers and a 64 KiB pipe to sshd, a wake-up every 64 KiB. This one
answers the few requests the lane sends (:mod:`.lane`: OPEN, READ, WRITE, CLOSE, fsync and
limits) with the kernel doing the copying: a READ's data goes from the page cache into the
pipe by ``sendfile``, a WRITE's from the pipe into the file by ``splice``, and both pipes to
sshd are widened to 1 MiB. What that changed on loopback: docs/transfer.md, "How a verified
GiB is arranged".

It speaks SFTP version 3 exactly as the lane expects it (draft-ietf-secsh-filexfer-02), so
the lane's client, its checks of every answer (:mod:`.sftpcodec`) and the pipeline are the
same whichever server answers; only the start differs. The lane runs it through the login
shell like the far-side helper (:data:`.farprogram.START`): ``HELLO`` and the nonce come
first, so whatever a ``~/.bashrc`` prints is skipped. Where python3 is missing (exit
:data:`.farprogram.NO_PYTHON`) or the program cannot start, the lane asks for the account's
``sftp`` subsystem instead; an account forced to ``internal-sftp`` answers the lane's INIT
with a VERSION straight away, and the lane uses it as it is.

Errors are answered as OpenSSH's server answers them (status codes from the errno), with the
system's own words for the message ("No space left on device"). A WRITE refused mid-way has
its remaining bytes read and dropped, so the next request is read where it starts. A file
that shrinks between a READ's size check and its ``sendfile`` cannot be answered honestly
any more (the DATA length is sent first): the answer is padded and the program exits, the
lane sees a dropped link, and the hashes decide as for any drop.

Runs on python >= 3.6 (``os.splice``, from 3.10, and ``sendfile`` are used where they exist;
reads and ``pwrite`` otherwise). Tested by running it, through a real sshd:
tests/transfer/test_laneserver.py.
"""

from __future__ import annotations

HELLO = b"WORLDLAND-LANE 1 "

PROGRAM = r"""
import errno, os, struct, sys
nonce = sys.argv[1].encode()
U32 = struct.Struct(">I")
FRAME = struct.Struct(">IB")
HEAD = struct.Struct(">IBI")
MAX_BLOCK = 255 << 10
MAX_REQUEST = 256 << 10
try:
    import fcntl
    for fd in (0, 1):
        try:
            fcntl.fcntl(fd, 1031, 1 << 20)  # F_SETPIPE_SZ: a wake-up a MiB, not every 64 KiB
        except (OSError, ValueError):
            pass
except ImportError:
    pass
can_splice = hasattr(os, "splice")
can_sendfile = hasattr(os, "sendfile")
files = {}
counter = [0]

def put(data):
    view = memoryview(data)
    while view:
        view = view[os.write(1, view):]

def take(n, at_boundary=False):
    out = bytearray(n)
    view = memoryview(out)
    got = 0
    while got < n:
        k = os.readv(0, [view[got:]])
        if not k:  # stdin closed: the lane is done (between requests) or cut (inside one)
            raise SystemExit(0 if at_boundary and got == 0 else 2)
        got += k
    return bytes(out)

def string(b):
    return U32.pack(len(b)) + b

def status(rid, code, message):
    body = U32.pack(code) + string(message.encode()) + string(b"")
    put(HEAD.pack(5 + len(body), 101, rid) + body)

def code_of(e):
    if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP):
        return 2
    if e.errno in (errno.EPERM, errno.EACCES):
        return 3
    return 4

def refuse(rid, e):
    status(rid, code_of(e), os.strerror(e.errno) if e.errno else str(e))

class Body:
    def __init__(self, data):
        self.data, self.at = data, 0
    def u32(self):
        self.at += 4
        if self.at > len(self.data):
            raise SystemExit(2)
        return U32.unpack_from(self.data, self.at - 4)[0]
    def u64(self):
        return (self.u32() << 32) | self.u32()
    def string(self):
        n = self.u32()
        self.at += n
        if self.at > len(self.data):
            raise SystemExit(2)
        return self.data[self.at - n:self.at]

def handle_of(h):
    fd = files.get(h)
    if fd is None:
        raise OSError(errno.EBADF, "no such handle")
    return fd

def do_open(rid, b):
    path, pflags, attrs = b.string(), b.u32(), b.u32()
    mode = b.u32() & 0o7777 if attrs & 4 else 0o666
    access = {1: os.O_RDONLY, 2: os.O_WRONLY, 3: os.O_RDWR}.get(pflags & 3, os.O_RDONLY)
    flags = access | (os.O_CREAT if pflags & 8 else 0) | (os.O_TRUNC if pflags & 16 else 0)
    flags |= os.O_EXCL if pflags & 32 else 0
    try:
        fd = os.open(path, flags, mode)
    except OSError as e:
        return refuse(rid, e)
    counter[0] += 1
    h = U32.pack(counter[0])
    files[h] = fd
    put(HEAD.pack(5 + 4 + len(h), 102, rid) + string(h))

def do_read(rid, b):
    h, offset, length = b.string(), b.u64(), b.u32()
    try:
        fd = handle_of(h)
        n = min(length, MAX_BLOCK, os.fstat(fd).st_size - offset)
    except OSError as e:
        return refuse(rid, e)
    if n <= 0:
        return status(rid, 1, "End of file")
    if not can_sendfile:
        try:
            data = os.pread(fd, n, offset)
        except OSError as e:
            return refuse(rid, e)
        put(HEAD.pack(9 + len(data), 103, rid) + string(data))
        return
    put(HEAD.pack(9 + n, 103, rid) + U32.pack(n))
    sent = 0
    while sent < n:
        try:
            k = os.sendfile(1, fd, offset + sent, n - sent)
        except OSError:
            k = 0
        if not k:  # shrank since the size check: the length is sent, the link must end
            put(bytes(n - sent))
            raise SystemExit(3)
        sent += k

def splice_in(fd, offset, n):
    global can_splice
    done = 0
    while done < n and can_splice:
        try:
            k = os.splice(0, fd, n - done, offset_dst=offset + done)
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                raise Refused(e, n - done)
            can_splice = False
            break
        if not k:
            raise SystemExit(2)
        done += k
    while done < n:
        data = take(min(n - done, 1 << 20))
        try:
            os.pwrite(fd, data, offset + done)
        except OSError as e:
            raise Refused(e, n - done - len(data))
        done += len(data)

class Refused(Exception):
    def __init__(self, e, left):
        self.e, self.left = e, left

def do_write(body_length):
    rid, hl = struct.unpack(">II", take(8))
    if hl > 256:
        raise SystemExit(2)
    h = take(hl)
    offset, n = struct.unpack(">QI", take(12))
    if 4 + 4 + hl + 8 + 4 + n != body_length:
        raise SystemExit(2)
    try:
        fd = handle_of(h)
    except OSError as e:
        return drop(rid, e, n)
    try:
        splice_in(fd, offset, n)
    except Refused as r:
        return drop(rid, r.e, r.left)
    status(rid, 0, "")

def drop(rid, e, left):
    while left > 0:
        left -= len(take(min(left, 1 << 20)))
    refuse(rid, e)

def do_close(rid, b):
    fd = files.pop(b.string(), None)
    if fd is None:
        return refuse(rid, OSError(errno.EBADF, "no such handle"))
    try:
        os.close(fd)
    except OSError as e:
        return refuse(rid, e)
    status(rid, 0, "")

def do_extended(rid, b):
    name = b.string()
    if name == b"fsync@openssh.com":
        try:
            os.fsync(handle_of(b.string()))
        except OSError as e:
            return refuse(rid, e)
        return status(rid, 0, "")
    if name == b"limits@openssh.com":
        body = struct.pack(">QQQQ", MAX_REQUEST, MAX_BLOCK, MAX_BLOCK, 0)
        return put(HEAD.pack(5 + len(body), 201, rid) + body)
    status(rid, 8, "Operation unsupported")

put(b"\n" + HELLO + nonce + b"\n")
ACTIONS = {3: do_open, 4: do_close, 5: do_read, 200: do_extended}
while True:
    length, kind = FRAME.unpack(take(5, at_boundary=True))
    if length < 5 or length > MAX_REQUEST + 64:
        raise SystemExit(2)
    if kind == 6:
        do_write(length - 1)
        continue
    body = take(length - 1)
    if kind == 1:
        ext = string(b"fsync@openssh.com") + string(b"1")
        ext += string(b"limits@openssh.com") + string(b"1")
        put(FRAME.pack(5 + len(ext), 2) + U32.pack(3) + ext)
        continue
    rid = U32.unpack_from(body)[0]
    action = ACTIONS.get(kind)
    if action is None:
        status(rid, 8, "Operation unsupported")
    else:
        action(rid, Body(body[4:]))
""".replace("HELLO + nonce", repr(HELLO) + " + nonce")
