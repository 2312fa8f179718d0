"""Read and verify a model file without TensorFlow: .tflite, .onnx or a .keras checkpoint.

The bytes are checked before any interpreter sees them, because an interpreter handed a damaged flatbuffer
may crash the process instead of raising. The TFLite and ONNX readers below walk just enough of each format
(every offset bounds-checked) to find the carolgen metadata and to prove the structure is whole.
"""
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CarolError
from .metadata import METADATA_KEY, ModelInfo, parse_metadata

TFLITE_IDENTIFIER = b"TFL3"
KERAS_METADATA_ENTRY = "carolgen.json"


@dataclass
class ModelFile:
    """A verified model file: its kind, its metadata, and (TFLite) its operators as (code, version)."""

    path: Path
    kind: str
    info: ModelInfo
    operators: list = field(default_factory=list)


def read_model_file(path):
    """Verify `path` and read its carolgen metadata; CarolError with one clear line if anything is off."""
    path = Path(path)
    if not path.is_file():
        raise CarolError(f"model file not found: {path}")
    data = path.read_bytes()
    kind = sniff_kind(data, path)
    if kind == "keras":
        return ModelFile(path, kind, _keras_metadata(path))
    reader = TfliteReader(data, path) if kind == "tflite" else OnnxReader(data, path)
    text = reader.metadata().get(METADATA_KEY)
    if text is None:
        raise CarolError(f"{path} has no carolgen metadata: export it with carol-export, which embeds the "
                         "vocabulary the runtime needs")
    return ModelFile(path, kind, parse_metadata(text, path), getattr(reader, "operators", lambda: [])())


def sniff_kind(data, path):
    """'tflite', 'onnx' or 'keras', from the bytes rather than the file name."""
    if len(data) < 16:
        raise CarolError(f"{path} is too short to be a model file ({len(data)} bytes)")
    if data[4:8] == TFLITE_IDENTIFIER:
        return "tflite"
    if data[:4] == b"PK\x03\x04":
        return "keras"
    if data[:1] == b"\x08":  # ONNX ModelProto starts with field 1 (ir_version), a varint.
        return "onnx"
    raise CarolError(f"{path} is not a TFLite, ONNX or .keras model file")


def _keras_metadata(path):
    try:
        with zipfile.ZipFile(path) as archive:
            text = archive.read(KERAS_METADATA_ENTRY)
    except KeyError:
        raise CarolError(f"{path} is a Keras file without carolgen metadata: train it with carol-train") from None
    except (zipfile.BadZipFile, OSError, EOFError):
        raise CarolError(f"{path} is a damaged .keras file (not a readable zip archive)") from None
    return parse_metadata(text, path)


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


def protobuf_fields(data, path):
    """Yield (field number, payload) for each field of a protobuf message; payload is bytes or an int."""
    def fail():
        raise CarolError(f"{path} is a damaged ONNX file (truncated or corrupt protobuf)")

    def varint(pos):
        value, shift = 0, 0
        while True:
            if pos >= len(data) or shift > 63:
                fail()
            byte = data[pos]
            value |= (byte & 0x7F) << shift
            pos, shift = pos + 1, shift + 7
            if not byte & 0x80:
                return value, pos

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
