"""Small inputs (parameter and config files, labels, run summaries, models), read within bounds.

``Path.read_text`` reads whatever the path names: a FIFO waits for a writer forever, a device
such as /dev/zero never ends, and a multi-gigabyte file is read whole before a parser sees it.
These inputs are kilobytes, so anything that is not a regular file, or is larger than a bound,
is refused as an OSError, which the callers already turn into one line naming the file.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

MOST_TEXT_BYTES = 8 << 20  # a parameters file or labels of thousands of segments are well under this
# A training or model config is a few kilobytes; its YAML parser (pure Python) holds some 300 times
# a text's size while it reads it, so 8 MiB of list took 2.7 GB and two minutes before a refusal.
MOST_CONFIG_BYTES = 256 << 10


def read_text_file(path: str | Path, most_bytes: int = MOST_TEXT_BYTES, encoding: str = "utf-8") -> str:
    """The text of ``path``; OSError when it is not a regular file or holds more than ``most_bytes``."""
    return read_regular_file(path, most_bytes).decode(encoding)


def read_regular_file(path: str | Path, most_bytes: int) -> bytes:
    """The bytes of ``path``; OSError when it is not a regular file, holds more than ``most_bytes``,
    or would make the read wait (a kernel file such as /proc/kmsg looks regular and empty)."""
    path = Path(path)
    with open_regular_file(path) as stream:
        data = stream.read(most_bytes + 1)
    if data is None:  # nothing to read yet, and reading would block
        raise OSError(errno.EAGAIN, "reading it would wait (not a file on disk)", str(path))
    if len(data) > most_bytes:
        raise OSError(errno.EFBIG, f"larger than the {most_bytes} bytes such a file may hold", str(path))
    return data


@contextmanager
def open_regular_file(path: str | Path) -> Iterator[BinaryIO]:
    """``path`` open for reading in binary; OSError when it is not a regular file (a FIFO is
    refused, not waited on; a device such as /dev/zero, which never ends, too)."""
    with open(path, "rb", opener=_open_without_waiting) as stream:
        if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):  # a folder fails to open already
            raise OSError(errno.EINVAL, "not a regular file (a pipe, socket or device)", str(path))
        yield stream


def _open_without_waiting(path: str, flags: int) -> int:
    """os.open that does not block on a FIFO without a writer (the check above then refuses it)."""
    return os.open(path, flags | os.O_NONBLOCK)
