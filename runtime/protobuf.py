"""A bounds-checked reader for an ONNX ModelProto (protobuf wire format), no onnx package: its metadata, and
(for the numpy backend) its graph's nodes and constant tensors. Field numbers are onnx.proto3's."""
import struct
from dataclasses import dataclass

import numpy as np

from .errors import CarolError
from .flatbuffer import MAX_TENSOR_ELEMENTS

# TensorProto.DataType codes -> numpy types, for the types a carolgen file's constants use.
DATA_TYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 5: np.int16, 6: np.int32, 7: np.int64, 10: np.float16}
# TensorProto fields: 1 dims, 2 data_type, 4 float_data, 5 int32_data, 7 int64_data, 8 name, 9 raw_data,
# 14 data_location (1 = external: a carolgen file keeps its weights inside).
TYPED_FIELDS = {1: 4, 6: 5, 3: 5, 2: 5, 5: 5, 10: 5, 7: 7}


@dataclass(frozen=True)
class Node:
    op_type: str
    name: str
    inputs: tuple  # tensor names ('' for an optional input left out)
    outputs: tuple
    ints: dict  # the node's integer attributes (e.g. DequantizeLinear's axis)


class OnnxReader:
    """A bounds-checked walk over the top level of an ONNX ModelProto (protobuf wire format)."""

    GRAPH, METADATA_PROPS = 7, 14

    def __init__(self, data, path):
        self.path = path
        self.fields = list(protobuf_fields(data, path))
        if not any(number == self.GRAPH for number, _ in self.fields):
            raise CarolError(f"{path} is not an ONNX model (no graph)")

    def metadata(self):
        """{key: value bytes} of the model's metadata_props (StringStringEntryProto: key 1, value 2)."""
        entries = {}
        for number, payload in self.fields:
            if number == self.METADATA_PROPS and isinstance(payload, bytes):
                entry = dict(protobuf_fields(payload, self.path))
                entries[entry.get(1, b"").decode("utf-8", "replace")] = entry.get(2, b"")
        return entries

    def graph(self):
        """([Node], {name: constant array}) of the model's graph (GraphProto: 1 node, 5 initializer)."""
        graph = next(payload for number, payload in self.fields if number == self.GRAPH)
        nodes, constants = [], {}
        for number, payload in protobuf_fields(_message(graph, self.path), self.path):
            if number == 1:
                nodes.append(self._node(_message(payload, self.path)))
            elif number == 5:
                name, array = self._initializer(_message(payload, self.path))
                constants[name] = array
        return nodes, constants

    def _node(self, data):
        """NodeProto: 1 input, 2 output, 3 name, 4 op_type, 5 attribute (AttributeProto: 1 name, 3 i)."""
        fields = {1: [], 2: [], 3: [b""], 4: [b""], 5: []}
        for number, payload in protobuf_fields(data, self.path):
            if number in fields and isinstance(payload, bytes):
                fields[number].append(payload)
        ints = {}
        for attribute in fields[5]:
            entry = dict(protobuf_fields(attribute, self.path))
            if isinstance(entry.get(3), int):
                ints[_text(entry.get(1, b""))] = _signed(entry[3])
        return Node(_text(fields[4][-1]), _text(fields[3][-1]), tuple(map(_text, fields[1])),
                    tuple(map(_text, fields[2])), ints)

    def _initializer(self, data):
        dims, values, fields = [], [], {}
        for number, payload in protobuf_fields(data, self.path):
            if number == 1:
                dims += _varints(payload, self.path) if isinstance(payload, bytes) else [payload]
            else:
                fields.setdefault(number, []).append(payload)
        name = _text(fields.get(8, [b""])[-1])
        code = fields.get(2, [0])[-1]
        dtype = DATA_TYPES.get(code)
        dims = [_signed(d) for d in dims]
        count = int(np.prod(dims)) if all(d >= 0 for d in dims) else -1
        if dtype is None or fields.get(14, [0])[-1] == 1 or not 0 <= count <= MAX_TENSOR_ELEMENTS:
            return name, None  # a type, size or storage no carolgen weight has: not a constant the backend uses
        if 9 in fields:
            raw = fields[9][-1]
            if len(raw) != count * np.dtype(dtype).itemsize:
                raise CarolError(f"{self.path} is a damaged ONNX file: constant {name!r} does not hold the "
                                 f"{dims} values its type and shape claim")
            return name, np.frombuffer(raw, dtype=dtype).reshape(dims)
        for payload in fields.get(TYPED_FIELDS[code], []):
            values += _typed_values(payload, code, self.path)
        if len(values) != count:
            raise CarolError(f"{self.path} is a damaged ONNX file: constant {name!r} does not hold the "
                             f"{dims} values its type and shape claim")
        if code == 10:  # float16 values travel as their bits in int32_data
            return name, np.array(values, dtype=np.uint16).view(np.float16).reshape(dims)
        return name, np.array(values, dtype=dtype).reshape(dims)


def _message(payload, path):
    if not isinstance(payload, bytes):
        raise CarolError(f"{path} is a damaged ONNX file (a message field holds a number)")
    return payload


def _text(payload):
    return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""


def _signed(value):
    """A varint read as int64 (protobuf writes negative integers as 64-bit two's complement)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _typed_values(payload, code, path):
    """Values of float_data (packed float32, or one fixed32 field) or of int32_data/int64_data (varints)."""
    if code == 1:
        if len(payload) % 4:
            raise CarolError(f"{path} is a damaged ONNX file (float data of {len(payload)} bytes)")
        return list(struct.unpack(f"<{len(payload) // 4}f", payload))
    return [_signed(v) for v in (_varints(payload, path) if isinstance(payload, bytes) else [payload])]


def _varints(data, path):
    """Every varint of a packed repeated field."""
    values, pos = [], 0
    while pos < len(data):
        value, pos = read_varint(data, pos, path)
        values.append(value)
    return values


def read_varint(data, pos, path):
    """(value, next position) of the varint at `pos`; CarolError if it runs past the end or past 64 bits."""
    value, shift = 0, 0
    while True:
        if pos >= len(data) or shift > 63:
            raise CarolError(f"{path} is a damaged ONNX file (truncated or corrupt protobuf)")
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return value, pos


def protobuf_fields(data, path):
    """Yield (field number, payload) for each field of a protobuf message; payload is bytes or an int."""
    def fail():
        raise CarolError(f"{path} is a damaged ONNX file (truncated or corrupt protobuf)")

    def varint(pos):
        return read_varint(data, pos, path)

    fixed_sizes = {1: 8, 5: 4}
    pos = 0
    while pos < len(data):
        key, pos = varint(pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = varint(pos)
        elif wire == 2:
            length, pos = varint(pos)
            if pos + length > len(data):
                fail()
            value, pos = data[pos:pos + length], pos + length
        elif wire in fixed_sizes and pos + fixed_sizes[wire] <= len(data):
            value, pos = data[pos:pos + fixed_sizes[wire]], pos + fixed_sizes[wire]
        else:
            fail()
        if number == 0:
            fail()
        yield number, value
