"""Which kind of Ray port answers at HOST:PORT, told within a deadline by one gRPC call in plain
HTTP/2 (no grpcio: Ray bundles its own C++ gRPC), before ``ray.init`` waits on a wrong port.

A server that has the called method answers it (a reply message, or a status of its own); one
without it answers status UNIMPLEMENTED at once. ``GCS_PROBE_PATH`` is the first call a Ray driver
makes to a GCS, ``CLIENT_PROBE_PATH`` a Ray Client server's: a Ray Client port given as HOST:PORT,
where ``ray.init`` retries for 21 s, or a GCS port given as ``ray://``, where it waits 30 s, is
told apart in milliseconds.
"""

from __future__ import annotations

import enum
import socket
import struct
import time
from collections.abc import Mapping

GCS_PROBE_PATH = "/ray.rpc.NodeInfoGcsService/GetClusterId"
"""Ray 2.40 to 2.63 (``ray.core.generated.gcs_service_pb2``): the GCS's first call from a driver."""
CLIENT_PROBE_PATH = "/ray.rpc.RayletDriver/ClusterInfo"
"""The Ray Client server's (``ray.core.generated.ray_client_pb2``)."""

_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
"""RFC 9113, section 3.4: the client connection preface."""
_DATA, _HEADERS, _RST_STREAM, _SETTINGS, _GOAWAY, _CONTINUATION = 0, 1, 3, 4, 7, 9
_END_STREAM, _ACK, _END_HEADERS, _PADDED, _PRIORITY = 0x1, 0x1, 0x4, 0x8, 0x20
_FRAME_HEADER_BYTES = 9
_STREAM = 1
_UNIMPLEMENTED = 12
_MAX_FRAME_BYTES = 1 << 20
_FIRST_BYTES_SHOWN = 24


class Answer(enum.Enum):
    """What the port said to the call."""

    SERVED = "a reply message: the server has the method"
    UNIMPLEMENTED = "status UNIMPLEMENTED: a gRPC server without the method"
    UNCLEAR = "another status (an authentication error, say): the method may be there"


class NotGrpc(Exception):
    """The port answered, but not as a gRPC server does; ``first_bytes`` is what it sent."""

    def __init__(self, first_bytes: bytes) -> None:
        super().__init__(first_bytes)
        self.first_bytes = first_bytes


def call_port(
    host: str,
    port: int,
    path: str,
    timeout: float,
    *,
    metadata: Mapping[str, str] | None = None,
) -> Answer:
    """How the server at ``host:port`` answers a unary gRPC call of ``path`` with an empty
    message, within ``timeout`` seconds.

    ``metadata``: header fields the call carries (Ray's ``authorization`` token, which a GCS with
    token authentication requires). Raises TimeoutError when the answer does not come in time,
    OSError when the port cannot be reached and NotGrpc when it speaks another protocol."""
    deadline = time.monotonic() + timeout
    with socket.create_connection((host, port), timeout=timeout) as connection:
        request = _PREFACE + _frame(_SETTINGS, 0, 0, b"")
        request += _request_frames(f"{host}:{port}", path, metadata or {})
        connection.sendall(request)
        frames = _Frames(connection, deadline)
        kind, flags, _, payload = frames.next()
        if kind != _SETTINGS or flags & _ACK:
            raise NotGrpc(frames.received)
        connection.sendall(_frame(_SETTINGS, _ACK, 0, b""))
        return _answer(frames)


def _answer(frames: _Frames) -> Answer:
    """Read frames until stream 1 says how the call went: a DATA frame (a reply message), or
    trailers with a status and no message."""
    block, ends = b"", False
    while True:
        kind, flags, stream, payload = frames.next()
        if kind == _GOAWAY:
            return Answer.UNCLEAR
        if stream != _STREAM:
            continue
        if kind == _DATA and payload:
            return Answer.SERVED
        if kind == _RST_STREAM:
            return Answer.UNCLEAR
        if kind == _HEADERS:
            block, ends = _header_block(flags, payload), bool(flags & _END_STREAM)
        elif kind == _CONTINUATION:
            block += payload
        if kind in (_HEADERS, _CONTINUATION) and flags & _END_HEADERS:
            if ends:  # trailers: the call is over without a reply message
                return (
                    Answer.UNIMPLEMENTED if grpc_status(block) == _UNIMPLEMENTED else Answer.UNCLEAR
                )
            block = b""


class _Frames:
    """HTTP/2 frames read from a socket, each within the overall deadline."""

    def __init__(self, connection: socket.socket, deadline: float) -> None:
        self.connection = connection
        self.deadline = deadline
        self.received = b""
        """The first bytes the port sent (``NotGrpc`` shows them)."""

    def next(self) -> tuple[int, int, int, bytes]:
        header = self._read(_FRAME_HEADER_BYTES)
        length = int.from_bytes(header[:3], "big")
        if length > _MAX_FRAME_BYTES:
            raise NotGrpc(self.received)
        stream = struct.unpack(">I", header[5:9])[0] & 0x7FFFFFFF
        return header[3], header[4], stream, self._read(length)

    def _read(self, size: int) -> bytes:
        chunks = b""
        while len(chunks) < size:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer in time")
            self.connection.settimeout(left)
            chunk = self.connection.recv(size - len(chunks))
            if not chunk:
                raise NotGrpc(self.received)
            chunks += chunk
            self.received = (self.received + chunk)[:_FIRST_BYTES_SHOWN]
        return chunks


def _frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return (
        len(payload).to_bytes(3, "big") + bytes((kind, flags)) + struct.pack(">I", stream) + payload
    )


def _request_frames(authority: str, path: str, metadata: Mapping[str, str]) -> bytes:
    """HEADERS and DATA of a unary gRPC call of ``path`` with an empty message; header
    fields as HPACK literals without indexing or Huffman coding (RFC 7541, 6.2.2)."""
    fields = (
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", authority),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
        *((name.lower(), value) for name, value in metadata.items()),
    )
    block = b"".join(b"\x00" + _string(name) + _string(value) for name, value in fields)
    message = b"\x00" + (0).to_bytes(4, "big")  # not compressed, 0 bytes long
    return _frame(_HEADERS, _END_HEADERS, _STREAM, block) + _frame(
        _DATA, _END_STREAM, _STREAM, message
    )


def _string(text: str) -> bytes:
    raw = text.encode()
    return _integer(len(raw), 7, 0) + raw


def _integer(value: int, prefix_bits: int, first: int) -> bytes:
    """RFC 7541, 5.1."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def _header_block(flags: int, payload: bytes) -> bytes:
    """A HEADERS frame's header block fragment, without padding and priority fields."""
    start, end = 0, len(payload)
    if flags & _PADDED:
        start, end = 1, len(payload) - payload[0]
    if flags & _PRIORITY:
        start += 5
    return payload[start:end]


def grpc_status(block: bytes) -> int | None:
    """The ``grpc-status`` in an HPACK header block, when it is a literal field written without
    Huffman coding (as gRPC's C++ core writes it on a new connection); None otherwise."""
    position = 0
    try:
        while position < len(block):
            first = block[position]
            if first & 0x80:  # indexed field: a value from a table, never a new grpc-status
                position = _skip_integer(block, position, 7)
                continue
            if first & 0xE0 == 0x20:  # dynamic table size update
                position = _skip_integer(block, position, 5)
                continue
            prefix = 6 if first & 0x40 else 4
            index, position = _read_integer(block, position, prefix)
            name = None
            if index == 0:
                name, position = _read_string(block, position)
            value, position = _read_string(block, position)
            if name == b"grpc-status" and value is not None and value.isdigit():
                return int(value)
    except IndexError:
        return None
    return None


def _read_integer(block: bytes, position: int, prefix_bits: int) -> tuple[int, int]:
    limit = (1 << prefix_bits) - 1
    value = block[position] & limit
    position += 1
    if value < limit:
        return value, position
    shift = 0
    while True:
        byte = block[position]
        position += 1
        value += (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, position


def _skip_integer(block: bytes, position: int, prefix_bits: int) -> int:
    return _read_integer(block, position, prefix_bits)[1]


def _read_string(block: bytes, position: int) -> tuple[bytes | None, int]:
    """A string literal; None for a Huffman-coded one (not decoded: never grpc-status here)."""
    huffman = block[position] & 0x80
    length, position = _read_integer(block, position, 7)
    raw = block[position : position + length]
    if len(raw) < length:
        raise IndexError("header block cut short")
    return (None if huffman else raw), position + length
