"""Recording fakes shared by the pure-core tests."""

from __future__ import annotations


class Recorder:
    """Records every byte written to it, as a peer's socket would receive it."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    @property
    def lines(self) -> list[str]:
        """What the peer read, as lines without their CRLF (each must end in CRLF)."""
        data = b"".join(self.writes)
        assert data == b"" or data.endswith(b"\r\n"), data
        return data.decode().split("\r\n")[:-1]

    def clear(self) -> None:
        self.writes.clear()
