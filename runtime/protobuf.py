"""A bounds-checked reader for the top level of an ONNX ModelProto (protobuf wire format), no onnx package."""
from .errors import CarolError


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
