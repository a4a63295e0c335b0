"""MindSpore's `.ckpt` files, read and written without MindSpore (only the `protobuf` package).

A `.ckpt` is a serialized protobuf `Checkpoint` message (proto2, MindSpore's `checkpoint.proto`):

    message Checkpoint {
        message Value {
            required string tag = 1;          // the parameter's name
            oneof value { TensorProto tensor = 2; MapTensorProto maptensor = 3; }
        }
        repeated Value value = 1;
    }
    message TensorProto {
        repeated int64 dims = 1;
        required string tensor_type = 2;      // "Float32", "Float16", "Int32", ...
        required bytes tensor_content = 3;    // the values, C order, little endian
    }

MindSpore writes a tensor larger than its slice size as several `Value`s with the same tag, each one message
appended to the file; protobuf merges appended messages into one `value` list, and the slices of a tag are
joined in file order. The schema is built here in Python (no `protoc` at install time); `tensor` is optional
so that a MapTensor entry (field 3, not a plain tensor) is reported instead of failing the whole file.

What MindSpore (2.10) adds to that layout, as its own `load_checkpoint` reads it:
* `save_checkpoint(..., crc_check=True)` appends a trailer after the messages: b"crc_num" and the CRC32 of
  everything before it as 10 big-endian bytes. It is checked and stripped.
* `append_dict` strings are saved as tensors of type "str" (UTF-32 text). They are not weights: they are skipped
  and returned with the reason, so that the caller can report them.
* "BFloat16" tensors (2 bytes: the upper half of a float32) have no numpy dtype: they are read as float32,
  which holds every bfloat16 value exactly.
"""

import zlib
from collections import OrderedDict
from functools import lru_cache
from typing import Dict, Tuple

import numpy as np

__all__ = ["MindSporeCheckpointError", "read_mindspore_checkpoint", "write_mindspore_checkpoint", "NUMPY_DTYPES"]

# MindSpore's tensor_type strings and the numpy dtypes of their bytes (little endian).
NUMPY_DTYPES = {
    "Bool": np.bool_,
    "Int8": np.int8,
    "UInt8": np.uint8,
    "Int16": np.int16,
    "UInt16": np.uint16,
    "Int32": np.int32,
    "UInt32": np.uint32,
    "Int64": np.int64,
    "UInt64": np.uint64,
    "Float16": np.float16,
    "Float32": np.float32,
    "Float64": np.float64,
}
_TENSOR_TYPES = {np.dtype(dtype): name for name, dtype in NUMPY_DTYPES.items()}
_CRC_MARK = b"crc_num"  # MindSpore's crc_check trailer: the mark, then the CRC32 as 10 big-endian bytes
_CRC_TRAILER = len(_CRC_MARK) + 10


class MindSporeCheckpointError(ValueError):
    """The file is not a MindSpore checkpoint this reader understands; the message says why."""


@lru_cache(maxsize=None)
def _checkpoint_message_class():
    """The `Checkpoint` protobuf class, from a schema built with descriptor_pb2 in a private pool."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    field = descriptor_pb2.FieldDescriptorProto
    schema = descriptor_pb2.FileDescriptorProto(name="sed_mindspore_checkpoint.proto", syntax="proto2")

    tensor = schema.message_type.add(name="TensorProto")
    tensor.field.add(name="dims", number=1, label=field.LABEL_REPEATED, type=field.TYPE_INT64)
    tensor.field.add(name="tensor_type", number=2, label=field.LABEL_REQUIRED, type=field.TYPE_STRING)
    tensor.field.add(name="tensor_content", number=3, label=field.LABEL_REQUIRED, type=field.TYPE_BYTES)

    checkpoint = schema.message_type.add(name="Checkpoint")
    value = checkpoint.nested_type.add(name="Value")
    value.field.add(name="tag", number=1, label=field.LABEL_REQUIRED, type=field.TYPE_STRING)
    value.field.add(
        name="tensor", number=2, label=field.LABEL_OPTIONAL, type=field.TYPE_MESSAGE, type_name=".TensorProto"
    )
    checkpoint.field.add(
        name="value", number=1, label=field.LABEL_REPEATED, type=field.TYPE_MESSAGE, type_name=".Checkpoint.Value"
    )

    pool = descriptor_pool.DescriptorPool()
    pool.Add(schema)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("Checkpoint"))


def _strip_crc_trailer(path, data: bytes) -> bytes:
    """The protobuf messages of a file saved with crc_check=True, their CRC32 checked; other files unchanged."""
    if data[-_CRC_TRAILER:-10] != _CRC_MARK:
        return data
    data, stored = data[:-_CRC_TRAILER], int.from_bytes(data[-10:], "big")
    if zlib.crc32(data) != stored:
        raise MindSporeCheckpointError(
            f"{path}: the CRC32 saved with the checkpoint ({stored:#010x}) does not match "
            f"its contents ({zlib.crc32(data):#010x}): the file is damaged; download or "
            "copy it again."
        )
    return data


def _bfloat16_to_float32(content: bytes) -> np.ndarray:
    """Little-endian bfloat16 values -> float32 (exact: bfloat16 is the upper half of a float32)."""
    upper = np.frombuffer(content, dtype=np.dtype(np.uint16).newbyteorder("<")).astype(np.uint32)
    return (upper << 16).view(np.float32)


def read_mindspore_checkpoint(path: str) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    """The tensors of a MindSpore `.ckpt` file, and the entries that are not tensors.

    Returns:
        ({tag: array} in file order, with the dims stored and the stored dtype (BFloat16 as float32),
         {tag: what it is} of the entries skipped: strings saved by `append_dict`).
    Raises:
        FileNotFoundError: no such file.
        MindSporeCheckpointError: not a protobuf Checkpoint (e.g. an encrypted or a PyTorch file), a CRC trailer
            that does not match, a tensor type without a numpy equivalent, or contents that do not fill the
            stored dims.
    """
    from google.protobuf.message import DecodeError

    with open(path, "rb") as f:
        data = _strip_crc_trailer(path, f.read())
    checkpoint = _checkpoint_message_class()()
    try:
        checkpoint.ParseFromString(data)
    except DecodeError as e:
        raise MindSporeCheckpointError(
            f"{path} is not a MindSpore checkpoint (protobuf Checkpoint message): {e}. Encrypted .ckpt files must "
            "be decrypted with MindSpore first; PyTorch .pth files need no conversion."
        ) from e
    if data and not checkpoint.value:
        raise MindSporeCheckpointError(f"{path} holds no tensor: it is not a MindSpore checkpoint.")
    chunks, shapes, skipped = OrderedDict(), {}, OrderedDict()
    for value in checkpoint.value:
        if not value.HasField("tensor"):
            raise MindSporeCheckpointError(
                f"{path}: entry {value.tag!r} is not a plain tensor (a MapTensor?); "
                "only dense tensors can be converted."
            )
        tensor = value.tensor
        if tensor.tensor_type == "str":
            skipped[value.tag] = f"string {tensor.tensor_content.decode('utf-32-le', 'replace')!r}"
            continue
        if tensor.tensor_type not in NUMPY_DTYPES and tensor.tensor_type != "BFloat16":
            raise MindSporeCheckpointError(
                f"{path}: tensor {value.tag!r} has type {tensor.tensor_type!r}; "
                f"known types: {', '.join(NUMPY_DTYPES)}, BFloat16."
            )
        chunks.setdefault(value.tag, []).append(tensor.tensor_content)
        shapes[value.tag] = (tuple(tensor.dims), tensor.tensor_type)
    tensors = OrderedDict()
    for tag, parts in chunks.items():
        dims, tensor_type = shapes[tag]
        if tensor_type == "BFloat16":
            array = _bfloat16_to_float32(b"".join(parts))
        else:
            array = np.frombuffer(b"".join(parts), dtype=np.dtype(NUMPY_DTYPES[tensor_type]).newbyteorder("<"))
        if array.size != int(np.prod(dims)):
            raise MindSporeCheckpointError(
                f"{path}: tensor {tag!r} has {array.size} values for dims {list(dims)}: "
                "the file is truncated or damaged."
            )
        tensors[tag] = array.astype(array.dtype.newbyteorder("="), copy=True).reshape(dims)
    return tensors, skipped


def write_mindspore_checkpoint(path: str, tensors: Dict[str, np.ndarray]) -> None:
    """Writes {tag: array} as a MindSpore `.ckpt` (one Value per tensor, in the dict's order)."""
    checkpoint = _checkpoint_message_class()()
    for tag, array in tensors.items():
        array = np.asarray(array)
        if array.dtype not in _TENSOR_TYPES:
            raise MindSporeCheckpointError(f"tensor {tag!r}: dtype {array.dtype} has no MindSpore tensor type.")
        value = checkpoint.value.add(tag=tag)
        value.tensor.dims.extend(array.shape)
        value.tensor.tensor_type = _TENSOR_TYPES[array.dtype]
        value.tensor.tensor_content = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    with open(path, "wb") as f:
        f.write(checkpoint.SerializeToString())
