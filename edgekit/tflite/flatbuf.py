"""A bounds-checked reader of flatbuffer tables.

The `flatbuffers` package trusts its input: a corrupt offset reads past the end or loops, and a corrupt
vector length asks for gigabytes. Every access here is checked against the buffer, so a damaged .tflite
file gives `FlatbufferError` and nothing worse. Memory stays bounded because a vector may never claim
more elements than the buffer has bytes for.
"""

import struct

import numpy as np

_SIZES = {"b": 1, "B": 1, "?": 1, "h": 2, "H": 2, "i": 4, "I": 4, "q": 8, "Q": 8, "f": 4, "d": 8}
_NUMPY = {"b": "<i1", "B": "<u1", "?": "<u1", "h": "<i2", "H": "<u2", "i": "<i4", "I": "<u4",
          "q": "<i8", "Q": "<u8", "f": "<f4", "d": "<f8"}


class FlatbufferError(ValueError):
    """The bytes do not hold a well-formed flatbuffer where one was expected."""


def _unpack(buf, fmt, pos):
    size = _SIZES[fmt]
    if pos < 0 or pos + size > len(buf):
        raise FlatbufferError(f"offset {pos} is outside the {len(buf)}-byte buffer")
    return struct.unpack_from("<" + fmt, buf, pos)[0]


class Table:
    """One flatbuffer table at `pos` in `buf` (bytes or memoryview)."""

    __slots__ = ("buf", "pos", "_vtable", "_vtable_size")

    def __init__(self, buf, pos):
        self.buf = buf
        self.pos = pos
        vtable = pos - _unpack(buf, "i", pos)
        self._vtable_size = _unpack(buf, "H", vtable)
        if self._vtable_size < 4 or self._vtable_size % 2 or vtable + self._vtable_size > len(buf):
            raise FlatbufferError(f"table at {pos} has a corrupt vtable")
        self._vtable = vtable

    @classmethod
    def root(cls, buf):
        return cls(buf, _unpack(buf, "I", 0))

    def _field_pos(self, field_id):
        slot = 4 + 2 * field_id
        if slot >= self._vtable_size:
            return 0
        offset = _unpack(self.buf, "H", self._vtable + slot)
        return self.pos + offset if offset else 0

    def has(self, field_id):
        return self._field_pos(field_id) != 0

    def scalar(self, field_id, fmt, default=0):
        pos = self._field_pos(field_id)
        return _unpack(self.buf, fmt, pos) if pos else default

    def _indirect(self, field_id):
        pos = self._field_pos(field_id)
        return pos + _unpack(self.buf, "I", pos) if pos else 0

    def table(self, field_id):
        pos = self._indirect(field_id)
        return Table(self.buf, pos) if pos else None

    def _vector(self, field_id, element_size):
        """(start, count) of a vector field, or (0, 0) when absent; checked to fit the buffer."""
        pos = self._indirect(field_id)
        if not pos:
            return 0, 0
        count = _unpack(self.buf, "I", pos)
        start = pos + 4
        if start + count * element_size > len(self.buf):
            raise FlatbufferError(f"vector at {pos} claims {count} elements, more than the buffer holds")
        return start, count

    def vector_length(self, field_id):
        return self._vector(field_id, 1)[1]

    def tables(self, field_id):
        start, count = self._vector(field_id, 4)
        return [Table(self.buf, start + 4 * i + _unpack(self.buf, "I", start + 4 * i)) for i in range(count)]

    def strings(self, field_id):
        return [bytes(b).decode("utf-8", "replace") for b in self.strings_bytes(field_id)]

    def strings_bytes(self, field_id):
        """A [string] vector as raw memoryviews (flatbuffers nested in strings are bytes, not text)."""
        start, count = self._vector(field_id, 4)
        return [_string_bytes(self.buf, start + 4 * i + _unpack(self.buf, "I", start + 4 * i))
                for i in range(count)]

    def array(self, field_id, fmt):
        """A vector of scalars as a numpy array (a copy, so the buffer can be released)."""
        start, count = self._vector(field_id, _SIZES[fmt])
        if not count:
            return np.zeros(0, _NUMPY[fmt])
        return np.frombuffer(self.buf, _NUMPY[fmt], count, start).copy()

    def bytes(self, field_id):
        """A [ubyte] vector as a memoryview into the buffer (no copy)."""
        start, count = self._vector(field_id, 1)
        return memoryview(self.buf)[start:start + count]

    def string(self, field_id, default=""):
        pos = self._indirect(field_id)
        return bytes(_string_bytes(self.buf, pos)).decode("utf-8", "replace") if pos else default


def _string_bytes(buf, pos):
    count = _unpack(buf, "I", pos)
    if pos + 4 + count > len(buf):
        raise FlatbufferError(f"string at {pos} runs past the end of the buffer")
    return memoryview(buf)[pos + 4:pos + 4 + count]


def file_identifier(buf):
    """The 4-byte identifier after the root offset, or b'' when the buffer is too short."""
    return bytes(buf[4:8]) if len(buf) >= 8 else b""
