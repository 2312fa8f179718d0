"""A bounds-checked reader for TFLite flatbuffers: no flatbuffers package, no interpreter.

An interpreter handed a damaged flatbuffer may crash the process instead of raising, so the runtime walks
the file first: every offset is checked before it is followed. Fields are read by their index in
TFLite's schema.fbs (Model: 1 operator_codes, 2 subgraphs, 4 buffers, 6 metadata).
"""
import struct

from .errors import CarolError


class TfliteReader:
    """A bounds-checked walk over a TFLite flatbuffer (schema fields by index, as in schema.fbs)."""

    def __init__(self, data, path):
        self.data, self.path = data, path
        self.model = self._offset(0)
        self.buffers = self._tables(self.model, 4)
        self.subgraphs = self._tables(self.model, 2)
        self.opcodes = self._tables(self.model, 1)
        self._check_graph()

    def _fail(self):
        raise CarolError(f"{self.path} is a damaged TFLite file (truncated or corrupt flatbuffer)")

    def _read(self, fmt, pos):
        if pos < 0 or pos + struct.calcsize(fmt) > len(self.data):
            self._fail()
        return struct.unpack_from(fmt, self.data, pos)[0]

    def _offset(self, pos):
        return pos + self._read("<I", pos)

    def _field(self, table, index):
        """Position of field `index` of the table at `table`, or None when absent."""
        vtable = table - self._read("<i", table)
        if index * 2 + 4 >= self._read("<H", vtable):
            return None
        offset = self._read("<H", vtable + 4 + index * 2)
        return table + offset if offset else None

    def _scalar(self, table, index, fmt, default=0):
        pos = self._field(table, index)
        return default if pos is None else self._read(fmt, pos)

    def _vector(self, table, index, item_size):
        """(start, length) of a vector field, bounds-checked; (0, 0) when absent."""
        pos = self._field(table, index)
        if pos is None:
            return 0, 0
        start = self._offset(pos)
        length = self._read("<I", start)
        if start + 4 + length * item_size > len(self.data):
            self._fail()
        return start + 4, length

    def _tables(self, table, index):
        start, length = self._vector(table, index, 4)
        return [self._offset(start + 4 * i) for i in range(length)]

    def _ints(self, table, index):
        start, length = self._vector(table, index, 4)
        return [self._read("<i", start + 4 * i) for i in range(length)]

    def _bytes(self, table, index):
        start, length = self._vector(table, index, 1)
        return self.data[start:start + length]

    def _check_graph(self):
        if not self.subgraphs:
            self._fail()
        for subgraph in self.subgraphs:
            tensors = self._tables(subgraph, 0)
            for tensor in tensors:
                self._ints(tensor, 0)
                if self._scalar(tensor, 2, "<I") >= max(len(self.buffers), 1):
                    self._fail()
            for operator in self._tables(subgraph, 3):
                if self._scalar(operator, 0, "<I") >= len(self.opcodes):
                    self._fail()
                if any(not -1 <= t < len(tensors) for t in self._ints(operator, 1) + self._ints(operator, 2)):
                    self._fail()
        for buffer in self.buffers:
            self._bytes(buffer, 0)
            offset, size = self._scalar(buffer, 1, "<Q"), self._scalar(buffer, 2, "<Q")
            if offset > 1 and offset + size > len(self.data):
                self._fail()

    def operators(self):
        """Every operator code as (builtin code, version, custom code or '')."""
        codes = []
        for opcode in self.opcodes:
            code = max(self._scalar(opcode, 0, "<b"), self._scalar(opcode, 3, "<i"))
            custom = self._bytes(opcode, 1).decode("utf-8", "replace")
            codes.append((code, self._scalar(opcode, 2, "<i", default=1), custom))
        return codes

    def metadata(self):
        """{name: bytes} of the model's metadata entries."""
        entries = {}
        for entry in self._tables(self.model, 6):
            name = self._bytes(entry, 0).decode("utf-8", "replace")
            index = self._scalar(entry, 1, "<I")
            if index >= len(self.buffers):
                self._fail()
            entries[name] = self._bytes(self.buffers[index], 0)
        return entries
