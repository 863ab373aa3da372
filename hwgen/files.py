"""Files hwgen writes for a user: staged out of sight, published whole, with the user's umask.

Everything hwgen hands to a user (an exported model, a build directory, a rendered
script) is written first into a hidden staging place beside its destination and then
renamed into place with :func:`publish`, so that the destination only ever holds a
complete file and nothing else is left behind, whether the work succeeds or fails.
``tempfile`` creates its files 0600 and its directories 0700; :func:`publish` gives
them the modes the user's umask asks for (``0666 & ~umask``, ``0777 & ~umask``), as
any file made with ``open()`` or ``mkdir`` would get.
"""

import os
import shutil
import tempfile
from contextlib import contextmanager

__all__ = ["umask", "file_mode", "dir_mode", "staging_dir", "publish", "write_text"]

STAGING_PREFIX = ".hwgen-tmp-"


def umask():
    """The process's umask, read without changing it where the system allows."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)       # elsewhere: the classic set-and-restore
    os.umask(old)
    return old


def file_mode():
    """Mode of a regular file the user's umask allows (``0666 & ~umask``)."""
    return 0o666 & ~umask()


def dir_mode():
    """Mode of a directory the user's umask allows (``0777 & ~umask``)."""
    return 0o777 & ~umask()


@contextmanager
def staging_dir(dest):
    """A fresh hidden directory beside ``dest`` (same file system, so renames are atomic),
    removed with everything still in it when the block ends, however it ends."""
    parent = os.path.dirname(os.path.abspath(os.fspath(dest)))
    os.makedirs(parent, exist_ok=True)
    d = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=parent)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def publish(src, dest):
    """Give ``src`` (a file or a directory) the user's umask and rename it to ``dest``
    (replacing a file there; a directory ``dest`` must not exist)."""
    os.chmod(src, dir_mode() if os.path.isdir(src) else file_mode())
    os.replace(src, dest)


def write_text(path, text):
    """Write ``text`` to ``path`` atomically (``\\n`` line ends), mode ``0666 & ~umask``."""
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=parent)
    try:
        with os.fdopen(fd, "w", newline="\n") as f:
            f.write(text)
        publish(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
