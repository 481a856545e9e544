"""Caffe's message classes, built at import time from caffe_pb.proto.

The .proto is read by a small parser for the proto2 subset it uses (package, messages with nested
enums, top-level enums, optional/repeated/required fields with ``default`` and ``packed``), turned
into a FileDescriptorProto and handed to protobuf's message factory. No protoc, no generated code,
so any protobuf runtime from 4.21 on works.
"""
import re
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PROTO_FILE = Path(__file__).with_name("caffe_pb.proto")

_FIELD = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
    "double": _FIELD.TYPE_DOUBLE, "float": _FIELD.TYPE_FLOAT, "int64": _FIELD.TYPE_INT64,
    "uint64": _FIELD.TYPE_UINT64, "int32": _FIELD.TYPE_INT32, "uint32": _FIELD.TYPE_UINT32,
    "bool": _FIELD.TYPE_BOOL, "string": _FIELD.TYPE_STRING, "bytes": _FIELD.TYPE_BYTES,
}
_LABELS = {"optional": _FIELD.LABEL_OPTIONAL, "repeated": _FIELD.LABEL_REPEATED,
           "required": _FIELD.LABEL_REQUIRED}
_TOKEN = re.compile(r'\s*(?:(//[^\n]*)|("[^"]*")|([-\w.]+)|([{}\[\]=;,]))')


def _tokens(text: str) -> list:
    tokens, position = [], 0
    while position < len(text.rstrip()):
        match = _TOKEN.match(text, position)
        if not match:
            raise ValueError(f"{PROTO_FILE.name}: cannot read schema at offset {position}")
        position = match.end()
        if not match.group(1):
            tokens.append(match.group(2) or match.group(3) or match.group(4))
    return tokens


class _Reader:
    """Walks the token list, building DescriptorProtos."""

    def __init__(self, tokens: list):
        self.tokens, self.index = tokens, 0

    def next(self) -> str:
        self.index += 1
        return self.tokens[self.index - 1]

    def expect(self, token: str) -> None:
        found = self.next()
        if found != token:
            raise ValueError(f"{PROTO_FILE.name}: expected {token!r}, found {found!r}")

    def enum(self, target) -> None:
        target.name = self.next()
        self.expect("{")
        while (name := self.next()) != "}":
            self.expect("=")
            target.value.add(name=name, number=int(self.next()))
            self.expect(";")

    def message(self, target) -> None:
        target.name = self.next()
        self.expect("{")
        while (word := self.next()) != "}":
            if word == "enum":
                self.enum(target.enum_type.add())
            else:
                self.field(target.field.add(), word)

    def field(self, target, label: str) -> None:
        type_name, target.name = self.next(), self.next()
        target.label = _LABELS[label]
        self.expect("=")
        target.number = int(self.next())
        if type_name in _SCALARS:
            target.type = _SCALARS[type_name]
        else:
            target.type_name = type_name  # resolved to message or enum once all are known
        if self.next() == "[":
            while True:
                option = self.next()
                self.expect("=")
                value = self.next()
                if option == "default":
                    target.default_value = value.strip('"')
                elif option == "packed":
                    target.options.packed = value == "true"
                if self.next() == "]":
                    break
            self.expect(";")


def _resolve_types(file_proto) -> None:
    """Name each non-scalar field's type in full: a nested enum of its message, or a top-level type."""
    package = "." + file_proto.package
    top_enums = {e.name for e in file_proto.enum_type}
    for message in file_proto.message_type:
        nested = {e.name for e in message.enum_type}
        for field in message.field:
            if not field.type_name:
                continue
            name = field.type_name
            if name in nested:
                field.type, field.type_name = _FIELD.TYPE_ENUM, f"{package}.{message.name}.{name}"
            elif name in top_enums:
                field.type, field.type_name = _FIELD.TYPE_ENUM, f"{package}.{name}"
            else:
                field.type, field.type_name = _FIELD.TYPE_MESSAGE, f"{package}.{name}"


def file_descriptor_proto(text: str) -> descriptor_pb2.FileDescriptorProto:
    """The FileDescriptorProto of a proto2 schema in the subset caffe_pb.proto uses."""
    file_proto = descriptor_pb2.FileDescriptorProto(name="deepvis_caffe_pb.proto", syntax="proto2")
    reader = _Reader(_tokens(text))
    while reader.index < len(reader.tokens):
        word = reader.next()
        if word == "syntax":
            reader.expect("=")
            reader.next()
            reader.expect(";")
        elif word == "package":
            file_proto.package = reader.next()
            reader.expect(";")
        elif word == "enum":
            reader.enum(file_proto.enum_type.add())
        elif word == "message":
            reader.message(file_proto.message_type.add())
        else:
            raise ValueError(f"{PROTO_FILE.name}: unexpected {word!r}")
    _resolve_types(file_proto)
    return file_proto


def _message_classes() -> dict:
    file_proto = file_descriptor_proto(PROTO_FILE.read_text())
    pool = descriptor_pool.DescriptorPool()  # private pool: never clashes with another caffe.proto
    pool.Add(file_proto)
    classes = {}
    for message in file_proto.message_type:
        descriptor = pool.FindMessageTypeByName(f"{file_proto.package}.{message.name}")
        if hasattr(message_factory, "GetMessageClass"):
            classes[message.name] = message_factory.GetMessageClass(descriptor)
        else:  # protobuf < 4.22
            classes[message.name] = message_factory.MessageFactory(pool).GetPrototype(descriptor)
    return classes


_CLASSES = _message_classes()
NetParameter = _CLASSES["NetParameter"]
LayerParameter = _CLASSES["LayerParameter"]
V1LayerParameter = _CLASSES["V1LayerParameter"]
BlobProto = _CLASSES["BlobProto"]
FloatBlobProto = _CLASSES["FloatBlobProto"]
BlobShape = _CLASSES["BlobShape"]
