"""A bounds-checked reader for TFLite flatbuffers: no flatbuffers package, no interpreter.

An interpreter handed a damaged flatbuffer may crash the process instead of raising, so the runtime walks
the file first: every offset is checked before it is followed. Fields are read by their index in
TFLite's schema.fbs (Model: 1 operator_codes, 2 subgraphs, 4 buffers, 6 metadata). `graph()` gives the
first subgraph's tensors (with their constant data) and operators, for the numpy backend.
"""
import struct
from dataclasses import dataclass

import numpy as np

from .errors import CarolError

# TensorType codes of the integer types TFLite quantises (UINT8 3, INT16 7, INT8 9), and the range of a scale
# a real model has (the converter's scales here are ~1e-6 to ~1).
QUANTISED_TYPES = {3, 7, 9}
MIN_SCALE, MAX_SCALE = 1e-20, 1e20
# The most elements one tensor may claim: 2^26 (256 MB of float32). A carolgen graph's largest tensor is a few
# hundred thousand elements at batch 1024; a flipped bit in a shape claimed 134,217,729 x 33 and held
# ai-edge-litert's allocation for more than 20 s (carol-fuzz).
MAX_TENSOR_ELEMENTS = 1 << 26
# TensorType codes -> numpy types, for the types a carolgen file's constants use.
TENSOR_TYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 7: np.int16, 9: np.int8}


@dataclass(frozen=True)
class Tensor:
    """One tensor of a graph: `data` is its constant value (None for an activation); quantised constants keep
    their integers, with `scales`, `zero_points` and the per-channel `axis`."""

    name: str
    data: np.ndarray | None
    scales: tuple = ()
    zero_points: tuple = ()
    axis: int = 0


@dataclass(frozen=True)
class Operator:
    code: int  # TFLite's BuiltinOperator number
    inputs: tuple  # tensor indices, -1 for an optional input left out
    outputs: tuple


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
        for buffer in self.buffers:
            self._bytes(buffer, 0)
            offset, size = self._scalar(buffer, 1, "<Q"), self._scalar(buffer, 2, "<Q")
            if offset > 1 and offset + size > len(self.data):
                self._fail()
        for subgraph in self.subgraphs:
            tensors = self._tables(subgraph, 0)
            for tensor in tensors:
                self._check_shape(self._ints(tensor, 0))
                if self._scalar(tensor, 2, "<I") >= max(len(self.buffers), 1):
                    self._fail()
                self._check_quantisation(tensor)
            written = set(self._ints(subgraph, 1))  # the graph's inputs, then every operator's outputs
            for operator in self._tables(subgraph, 3):
                if self._scalar(operator, 0, "<I") >= len(self.opcodes):
                    self._fail()
                if any(not -1 <= t < len(tensors) for t in self._ints(operator, 1) + self._ints(operator, 2)):
                    self._fail()
                written.update(self._ints(operator, 2))
            self._check_written(tensors, written)

    def _check_written(self, tensors, written):
        """A tensor the graph writes (an input, an operator's output) must not hold constant data: the
        interpreter maps constants read-only, and writing one crashed ai-edge-litert (carol-fuzz: a flipped
        bit pointed a BATCH_MATMUL output at a weight's buffer)."""
        for index in written:
            if not 0 <= index < len(tensors):
                self._fail()
            if self._buffer_data(self.buffers[self._scalar(tensors[index], 2, "<I")]):
                raise CarolError(f"{self.path} is a damaged TFLite file: tensor {index}, which the graph writes, "
                                 "claims constant data")

    def _check_shape(self, shape):
        elements = 1
        for size in shape:
            elements *= size
        if any(size < 0 for size in shape) or elements > MAX_TENSOR_ELEMENTS:
            raise CarolError(f"{self.path} is a damaged TFLite file: a tensor claims the shape {shape}, "
                             f"{'a negative size' if elements < 0 else f'more than {MAX_TENSOR_ELEMENTS:,} elements'}")

    def _floats(self, table, index):
        start, length = self._vector(table, index, 4)
        return [self._read("<f", start + 4 * i) for i in range(length)]

    def _check_quantisation(self, tensor):
        """An integer tensor's scales must be usable numbers, one zero point per scale, and a per-channel
        dimension that exists: interpreters abort (a native crash, not an error) on a scale of 1e-43, a
        missing one, or a channel count that does not match."""
        if self._scalar(tensor, 1, "<b") not in QUANTISED_TYPES:
            return
        quantisation = self._field(tensor, 4)
        if quantisation is None:
            self._fail_quantisation("no quantisation parameters")
        table = self._offset(quantisation)
        scales = self._floats(table, 2)
        zero_points = self._vector(table, 3, 8)[1]
        if not scales or zero_points != len(scales):
            self._fail_quantisation("scales missing or not one zero point per scale")
        if not all(MIN_SCALE <= s <= MAX_SCALE for s in scales):  # NaN fails too
            self._fail_quantisation(f"a scale outside {MIN_SCALE:g}-{MAX_SCALE:g}")
        shape = self._ints(tensor, 0)
        dimension = self._scalar(table, 6, "<i")
        if len(scales) > 1 and not (0 <= dimension < len(shape) and shape[dimension] == len(scales)):
            self._fail_quantisation("per-channel scales that do not match the tensor's shape")

    def _fail_quantisation(self, what):
        raise CarolError(f"{self.path} is a damaged TFLite file: a quantised tensor has {what}")

    def operators(self):
        """Every operator code as (builtin code, version, custom code or '')."""
        codes = []
        for opcode in self.opcodes:
            code = max(self._scalar(opcode, 0, "<b"), self._scalar(opcode, 3, "<i"))
            custom = self._bytes(opcode, 1).decode("utf-8", "replace")
            codes.append((code, self._scalar(opcode, 2, "<i", default=1), custom))
        return codes

    def graph(self):
        """([Tensor], [Operator]) of the first subgraph (the model's)."""
        subgraph = self.subgraphs[0]
        tensors = [self._tensor(t) for t in self._tables(subgraph, 0)]
        builtin = [code for code, _, _ in self.operators()]
        operators = [Operator(builtin[self._scalar(op, 0, "<I")], tuple(self._ints(op, 1)), tuple(self._ints(op, 2)))
                     for op in self._tables(subgraph, 3)]
        return tensors, operators

    def _tensor(self, table):
        """Tensor fields: 0 shape, 1 type, 2 buffer, 3 name, 4 quantisation (all bounds-checked at open)."""
        name = self._bytes(table, 3).decode("utf-8", "replace")
        data = self._buffer_data(self.buffers[self._scalar(table, 2, "<I")])
        array = None
        if data:
            dtype = TENSOR_TYPES.get(self._scalar(table, 1, "<b"))
            shape = self._ints(table, 0)
            if dtype is None or len(data) != int(np.prod(shape)) * np.dtype(dtype).itemsize:
                raise CarolError(f"{self.path} is a damaged TFLite file: constant {name!r} does not hold "
                                 f"the {shape} values its type and shape claim")
            array = np.frombuffer(data, dtype=dtype).reshape(shape)
        quantisation = self._field(table, 4)
        if quantisation is None:
            return Tensor(name, array)
        params = self._offset(quantisation)
        start, count = self._vector(params, 3, 8)
        zero_points = tuple(self._read("<q", start + 8 * i) for i in range(count))
        return Tensor(name, array, tuple(self._floats(params, 2)), zero_points, self._scalar(params, 6, "<i"))

    def _buffer_data(self, buffer):
        """A buffer's bytes: inline (field 0), or at an offset into the file (fields 1, 2: files over 2 GB)."""
        offset, size = self._scalar(buffer, 1, "<Q"), self._scalar(buffer, 2, "<Q")
        return self.data[offset:offset + size] if offset > 1 else self._bytes(buffer, 0)

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
