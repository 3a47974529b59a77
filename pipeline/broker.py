"""The embedded broker: kombu's filesystem transport with atomic hand-off of message files.

Stock kombu creates a message file and then writes it, and a consumer may claim it in between
(an empty or half-written message, then lost); with two consumers on different filesystems
both may copy it. Here a producer writes a hidden temporary file and renames it into the queue
folder, and a consumer claims a message by renaming it into a folder of its own on the same
filesystem: each message is seen whole, by exactly one consumer.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from queue import Empty
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

SCHEME = "cardscanfs"


class Channel(filesystem.Channel):
    """Filesystem channel whose put and get are single renames."""

    def _put(self, queue, payload, **kwargs) -> None:  # type: ignore[override]  # noqa: ANN001
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        folder = Path(self.data_folder_out)
        # A leading dot keeps the file out of `_get` and `_size` until the rename.
        tmp = folder / f".{name}.tmp"
        try:
            tmp.write_bytes(str_to_bytes(dumps(payload)))
            os.replace(tmp, folder / name)
        except OSError as exc:
            raise ChannelError(f"cannot add {name!r} to {folder}") from exc

    def _get(self, queue):  # noqa: ANN001, ANN202
        suffix = f"{queue}.msg"
        folder = Path(self.data_folder_in)
        claimed = folder.parent / "claimed"
        claimed.mkdir(exist_ok=True)
        for name in sorted(os.listdir(folder)):
            if name.startswith(".") or name.partition(".")[2] != suffix:
                continue
            mine = claimed / f"{os.getpid()}-{name}"
            try:
                os.rename(folder / name, mine)  # atomic: another consumer took it if this fails
            except OSError:
                continue
            try:
                payload = mine.read_bytes()
            finally:
                mine.unlink(missing_ok=True)
            return loads(bytes_to_str(payload))
        raise Empty()


class Transport(filesystem.Transport):
    Channel = Channel
    driver_name = SCHEME


TRANSPORT_ALIASES.setdefault(SCHEME, "pipeline.broker:Transport")
