"""The events of one open watch: the stream's lines bounded in size, each event checked
for the shape of its kind where it arrives."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import ClusterUnreachable, JwksDeployError, WatchExpired

MAX_EVENT_BYTES = 16 << 20  # one watch event: one object (a ConfigMap holds at most 1 MiB)


class WatchStream:
    """The events of one open watch, as (type, object); ends when the server closes it."""

    def __init__(
        self,
        response: Any,
        kind: str = "",
        malformed: Callable[[str], JwksDeployError] | None = None,
        ended: tuple[type[BaseException], ...] = (OSError, ValueError),
    ) -> None:
        self._response = response
        self._ended = ended  # what the transport raises when the connection ends
        self._kind = kind
        self._malformed = malformed

    def __iter__(self) -> Iterator[tuple[str, dict[str, Any]]]:
        try:
            for line in self._lines():
                if not line:
                    continue
                try:
                    event = json.loads(line)
                except (ValueError, RecursionError):
                    continue
                if not isinstance(event, dict) or not isinstance(event.get("object"), dict):
                    continue
                kind = str(event.get("type", ""))
                obj: dict[str, Any] = event["object"]
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise WatchExpired()
                    return
                self._check(obj)
                yield kind, obj
        except self._ended:
            return  # the connection ended (closed, timed out or shut down): resume
        finally:
            # a shut-down connection cannot go back to the pool
            with contextlib.suppress(Exception):
                self._response.release_conn()

    def _lines(self) -> Iterator[bytes]:
        """The stream's lines, each at most MAX_EVENT_BYTES: kubernetes' iter_resp_lines
        buffers a line without end (a server that never sends a newline fills the memory)."""
        buffer = bytearray()
        scanned = 0
        for segment in self._response.stream(amt=65536, decode_content=False):
            buffer.extend(segment)
            while (newline := buffer.find(b"\n", scanned)) >= 0:
                yield bytes(buffer[:newline])
                del buffer[: newline + 1]
                scanned = 0
            scanned = len(buffer)
            if scanned > MAX_EVENT_BYTES:
                reason = f"a watch event longer than {MAX_EVENT_BYTES >> 20} MiB"
                if self._malformed is not None:
                    raise self._malformed(reason)
                raise ClusterUnreachable(f"the API server sent {reason}.")

    def _check(self, obj: dict[str, Any]) -> None:
        from .views import check_object

        if self._kind and self._malformed is not None:
            try:
                check_object(obj, self._kind)
            except ValueError as exc:
                raise self._malformed(f"a watch event holding {exc}") from None

    def close(self) -> None:
        """End the stream from another thread (urllib3 interrupts the blocked read)."""
        with contextlib.suppress(Exception):  # already closed: nothing to interrupt
            self._response.shutdown()
