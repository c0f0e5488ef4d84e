"""The wire protocol of the process transports: a msgpack header frame plus raw array frames.

A message is a list of frames (docs/wire-protocol.md is the reference; ``WIRE_VERSION`` is
checked at the handshake and in every header):

* frame 0, the header: a msgpack map with exactly the keys ``v`` (int, the wire version),
  ``type`` (one of :data:`MESSAGE_TYPES`), ``solver`` (str or nil), ``t0`` / ``t1`` (ticks,
  int >= 0, or nil), ``arrays`` (a list of ``{"name": str, "dtype": str, "shape": [int, ...]}``)
  and ``meta`` (a map with string keys: anything else the message type needs, msgpack types only);
* frames 1..n: one raw buffer per entry of ``arrays``, in order, C-contiguous, little-endian,
  exactly ``prod(shape) * itemsize`` bytes.

The window loop's two messages, ``advance`` and ``result``, have a compact form: the array
layout of each is fixed for a run and sent once, in ``assign`` (:class:`Layout`). Per window
(version 3) a message is a single frame: an 8-byte prefix (``b"PW"``, the version as uint8, the
form as uint8, the header's length as uint32 little-endian), a msgpack *array* header
``[type, t0, t1, rows, compute_s]`` with only the leading dimension (``rows``) of each array,
then the arrays themselves, in the layout's order, each starting at a multiple of 8 bytes: the
offsets follow from ``rows`` and the layout. A message whose arrays hold
:data:`INLINE_MAX_BYTES` or more goes in the *framed* form instead (form 1): the same prefix and
header alone in frame 0, one frame per array after it, so large arrays are sent without a copy.
Version 2 sent every window message framed, with the version inside the msgpack header.

Decoding checks every field, a dtype whitelist and the byte length of every buffer, and a size
limit for the whole message, and raises :class:`ProtocolError` naming the field. Nothing is ever
unpickled: the header is msgpack without extension types, the arrays are raw numbers.

Nothing here knows about sockets, so any transport (zmq, mpi) can reuse the array encoding:
:func:`encode` / :func:`decode` for messages, :func:`signals_to_wire` / :func:`signals_from_wire`
for ``Spikes`` and ``Samples``, :func:`result_to_wire` / :func:`result_from_wire` for a
``WindowResult``.
"""
from __future__ import annotations

import struct
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import msgpack
import numpy as np

try:  # zmq's frame type, read without a conversion (this module needs no zmq otherwise)
    from zmq import Frame as _Frame
except ImportError:  # pragma: no cover - an mpi-only install
    _Frame = None

from ..errors import ProtocolError
from ..signals import Samples, Signal, Spikes, WindowResult

#: version of this protocol; a peer speaking another version is refused at the handshake
#: (2: window messages in the compact form, layouts sent once in ``assign``; 3: a window
#: message is one frame, its arrays inline after the header, unless they are large)
WIRE_VERSION = 3

#: a window message whose arrays together hold fewer bytes goes as one frame (arrays copied
#: after the header); a larger one as a header frame plus one frame per array, not copied
INLINE_MAX_BYTES = 1 << 16

#: the first two bytes of a window message (a msgpack map, the other messages' header, never
#: starts with them: ``P`` is a msgpack positive integer)
WINDOW_MAGIC = b"PW"

#: message types (docs/wire-protocol.md says who sends each and what ``meta`` holds)
MESSAGE_TYPES = ("hello", "assign", "ready", "advance", "result", "error", "heartbeat", "stop", "bye")

#: dtypes allowed on the wire (numpy ``dtype.str``): little-endian numbers and bool only
DTYPES = ("<f8", "<f4", "<i8", "<i4", "<u8", "<u4", "|u1", "|i1", "|b1")

#: the message types that travel in the compact window form (header a msgpack array)
WINDOW_TYPES = ("advance", "result")

#: default limit on a whole message (header + buffers), bytes
MAX_MESSAGE_BYTES = 1 << 30
#: most dimensions an array may have
MAX_NDIM = 8
#: most arrays in one message
MAX_ARRAYS = 1 << 16

_HEADER_KEYS = ("v", "type", "solver", "t0", "t1", "arrays", "meta")
_ARRAY_KEYS = ("name", "dtype", "shape")
# the checks run on every message of every window: constant sets and dtypes built once
_HEADER_SET = frozenset(_HEADER_KEYS)
_ARRAY_SET = frozenset(_ARRAY_KEYS)
_TYPE_SET = frozenset(MESSAGE_TYPES)
_DTYPE_OF = {d: np.dtype(d) for d in DTYPES}
_MAX_DIM = 1 << 62


@dataclass(slots=True)
class Message:
    """A decoded message. ``arrays`` are read-only views on the received frames.

    A window message (compact form) has its arrays in ``data``, in its layout's order, or
    ``data`` empty when it carries none (the first ``advance``); ``compute_s`` holds the
    seconds each solver of a ``result`` spent in ``advance``."""

    type: str
    solver: str | None = None
    t0: int | None = None
    t1: int | None = None
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    data: list = field(default_factory=list)
    compute_s: list = field(default_factory=list)


@dataclass(frozen=True)
class Layout:
    """The arrays of one kind of window message, fixed for a run: for each, its name, dtype
    (numpy ``dtype.str``) and ``row`` shape (the shape without its leading dimension, which
    alone varies from window to window)."""

    names: tuple[str, ...]
    dtypes: tuple[str, ...]
    rows: tuple[tuple[int, ...], ...]

    def __post_init__(self):
        # bytes per row of each array, and numpy dtypes: what decoding a window needs
        object.__setattr__(self, "_row_bytes", tuple(_DTYPE_OF[d].itemsize * int(np.prod(r, dtype=np.int64))
                                                     for d, r in zip(self.dtypes, self.rows)))
        object.__setattr__(self, "_np", tuple(_DTYPE_OF[d] for d in self.dtypes))
        object.__setattr__(self, "_n", len(self.names))

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def of(cls, entries: Sequence[tuple[str, str, Sequence[int]]]) -> "Layout":
        """From ``(name, dtype, row shape)`` entries."""
        return cls(tuple(e[0] for e in entries), tuple(e[1] for e in entries),
                   tuple(tuple(int(d) for d in e[2]) for e in entries))

    def to_wire(self) -> list[dict]:
        """As ``assign`` carries it: a list of ``{"name", "dtype", "shape"}`` (row shapes)."""
        return [{"name": n, "dtype": d, "shape": list(r)} for n, d, r in zip(self.names, self.dtypes, self.rows)]

    @classmethod
    def from_wire(cls, obj: Any, field: str) -> "Layout":
        """Inverse of :meth:`to_wire`, checked like a header's ``arrays`` (ProtocolError naming
        ``field``)."""
        if type(obj) is not list or len(obj) > MAX_ARRAYS:
            raise ProtocolError(f"{field}: must be a list of at most {MAX_ARRAYS} array descriptions")
        entries, seen = [], set()
        for i, s in enumerate(obj):
            if type(s) is not dict or s.keys() != _ARRAY_SET:
                raise ProtocolError(f"{field}[{i}]: must be a map with exactly the keys {', '.join(_ARRAY_KEYS)}")
            name, dtype, shape = s["name"], s["dtype"], s["shape"]
            if type(name) is not str or not name or name in seen:
                raise ProtocolError(f"{field}[{i}].name: must be a non-empty string, unique (got {name!r})")
            seen.add(name)
            if type(dtype) is not str or dtype not in _DTYPE_OF:
                raise ProtocolError(f"{field}[{i}].dtype: {dtype!r} is not allowed (allowed: {', '.join(DTYPES)})")
            if (type(shape) is not list or len(shape) >= MAX_NDIM
                    or any(type(d) is not int or not 0 <= d < 1 << 31 for d in shape)):
                raise ProtocolError(f"{field}[{i}].shape: must be a list of at most {MAX_NDIM - 1} integers "
                                    f"in [0, 2**31) (got {shape!r})")
            entries.append((name, dtype, shape))
        return cls.of(entries)


def encode_window(type: str, t0: int, t1: int, arrays: Sequence[np.ndarray],
                  compute_s: Sequence[float] = ()) -> list[Any]:
    """Frames of a window message in the compact form (version 3): one frame, the prefix, the
    header ``[type, t0, t1, rows, compute_s]`` and each array's bytes at the next multiple of
    8 bytes; or, when the arrays hold :data:`INLINE_MAX_BYTES` or more, the prefix and header
    alone followed by one frame per array (not copied). ``arrays`` follow the message's
    :class:`Layout` and must already be C-contiguous little-endian arrays of its dtypes (the
    receiver checks the byte counts); an empty ``arrays`` sends no array at all."""
    rows = []
    total = 0
    for a in arrays:
        rows.append(a.shape[0])
        total += a.nbytes
    header = _packer().pack([type, t0, t1, rows, compute_s if type_(compute_s) is list else list(compute_s)])
    n = len(header)
    if total >= INLINE_MAX_BYTES:
        return [_PREFIX_FRAMED + n.to_bytes(4, "little") + header,
                *[a.data if a.size else b"" for a in arrays]]
    parts = [_PREFIX_INLINE, n.to_bytes(4, "little"), header]
    pad = -n & 7
    if pad:
        parts.append(_ZEROS[:pad])
    for a in arrays:
        nb = a.nbytes
        if nb:
            parts.append(a.data)
            if nb & 7:
                parts.append(_ZEROS[:-nb & 7])
    return [b"".join(parts)]


_PREFIX_INLINE = WINDOW_MAGIC + bytes([WIRE_VERSION, 0])
_PREFIX_FRAMED = WINDOW_MAGIC + bytes([WIRE_VERSION, 1])
_ZEROS = bytes(8)
_PREFIX = struct.Struct("<2sBBI")   # magic, version, form, header length


_local = threading.local()


def _packer() -> msgpack.Packer:
    """This thread's msgpack packer (one per thread: a packer keeps a buffer between calls,
    which costs less than packb's new packer per message)."""
    try:
        return _local.packer
    except AttributeError:
        _local.packer = msgpack.Packer()
        return _local.packer


def _no_ext(code: int, data: bytes) -> Any:
    raise ProtocolError(f"header: msgpack extension type {code} is not allowed")


def _as_buffer(frame: Any) -> memoryview:
    if type(frame) is bytes:
        return memoryview(frame)
    buf = getattr(frame, "buffer", None)  # zmq.Frame
    m = memoryview(buf if buf is not None else frame)
    return m if m.format == "B" and m.ndim == 1 else m.cast("B")


def encode(type: str, *, solver: str | None = None, t0: int | None = None, t1: int | None = None,
           arrays: Mapping[str, np.ndarray] | None = None, meta: Mapping[str, Any] | None = None,
           ) -> list[Any]:
    """Frames of one message: the msgpack header, then each array's buffer (not copied when the
    array is already C-contiguous and little-endian)."""
    if type not in _TYPE_SET:
        raise ProtocolError(f"type: {type!r} is not a message type (allowed: {', '.join(MESSAGE_TYPES)})")
    specs, bufs = [], []
    if arrays:
        for name, a in arrays.items():
            # the usual case (a C-contiguous little-endian ndarray) costs no conversion: it runs
            # for every array of every window
            if type_(a) is not np.ndarray or a.dtype.str not in _DTYPE_OF or not a.flags.c_contiguous:
                a = _wire_array(name, a)
            specs.append({"name": name, "dtype": a.dtype.str, "shape": list(a.shape)})
            bufs.append(a.data if a.size else b"")
    header = {"v": WIRE_VERSION, "type": type, "solver": solver,
              "t0": None if t0 is None else int(t0), "t1": None if t1 is None else int(t1),
              "arrays": specs, "meta": {} if meta is None else meta if type_(meta) is dict else dict(meta)}
    return [msgpack.packb(header, use_bin_type=True), *bufs]


type_ = type  # ``encode`` takes an argument named ``type``


def _wire_array(name: str, a: Any) -> np.ndarray:
    """``a`` as a C-contiguous little-endian array of an allowed dtype, or ProtocolError."""
    a = np.asarray(a)
    dt = a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype
    if dt.str not in DTYPES:
        raise ProtocolError(f"arrays[{name!r}].dtype: {a.dtype.str!r} cannot go on the wire "
                            f"(allowed: {', '.join(DTYPES)})")
    return np.ascontiguousarray(a, dtype=dt)


def _check_int(h: dict, key: str) -> int | None:
    v = h[key]
    if v is None:
        return None
    if type(v) is not int or v < 0 or v >= 1 << 63:  # bool is not int here
        raise ProtocolError(f"header.{key}: must be an integer tick in [0, 2**63) or nil (got {v!r})")
    return v


def decode(frames: Sequence[Any], *, max_bytes: int = MAX_MESSAGE_BYTES,
           layouts: Mapping[str, Layout] | None = None) -> Message:
    """Decode and check one message (``frames`` as bytes, memoryviews or zmq Frames).

    ``layouts`` (message type -> :class:`Layout`) are the window messages this side accepts in
    the compact form; without one for its type such a message is refused.

    Raises
    ------
    ProtocolError naming the offending field (header key, ``arrays[i].<key>``, ``frame i``).
    """
    if not isinstance(frames, (list, tuple)) or len(frames) == 0:
        raise ProtocolError("message: no frames (expected a non-empty list of frames)")
    bufs = []
    total = 0
    for f in frames:
        # a zmq frame's buffer is already a flat memoryview of bytes: the usual case, first
        b = f.buffer if type(f) is _Frame else _as_buffer(f)
        total += b.nbytes
        bufs.append(b)
    if total > max_bytes:
        raise ProtocolError(f"message: {total} bytes is over the limit of {max_bytes} bytes")
    b0 = bufs[0]
    if b0.nbytes >= 2 and b0[0] == 0x50 and b0[1] == 0x57:   # WINDOW_MAGIC, without a slice
        return _decode_window(bufs, layouts)
    try:
        h = msgpack.unpackb(bufs[0], raw=False, strict_map_key=True, ext_hook=_no_ext)
    except ProtocolError:
        raise
    except Exception as exc:
        raise ProtocolError(f"header: not valid msgpack ({type(exc).__name__}: {exc})") from None
    if type(h) is list:   # a version 2 window message: [v, type, t0, t1, rows, compute_s]
        v = h[0] if h else None
        raise ProtocolError(f"header.v: wire version {v!r} is not supported (this side speaks "
                            f"{WIRE_VERSION}: its window messages start with {WINDOW_MAGIC!r})")
    if type(h) is not dict:
        raise ProtocolError(f"header: must be a map or, for a window message, an array "
                            f"(got {type(h).__name__})")
    if h.keys() != _HEADER_SET:
        keys = set(h)
        missing, extra = sorted(set(_HEADER_KEYS) - keys), sorted(map(str, keys - set(_HEADER_KEYS)))
        raise ProtocolError(f"header: keys must be {', '.join(_HEADER_KEYS)} (missing: {missing}, "
                            f"unexpected: {extra})")
    v = h["v"]
    if type(v) is not int or v != WIRE_VERSION:
        raise ProtocolError(f"header.v: wire version {v!r} is not supported (this side speaks "
                            f"{WIRE_VERSION})")
    mtype = h["type"]
    if type(mtype) is not str or mtype not in _TYPE_SET:
        raise ProtocolError(f"header.type: {mtype!r} is not a message type "
                            f"(allowed: {', '.join(MESSAGE_TYPES)})")
    solver = h["solver"]
    if solver is not None and type(solver) is not str:
        raise ProtocolError(f"header.solver: must be a string or nil (got {solver!r})")
    t0, t1 = _check_int(h, "t0"), _check_int(h, "t1")
    if t0 is not None and t1 is not None and t1 < t0:
        raise ProtocolError(f"header.t1: {t1} is before t0 = {t0}")
    meta = h["meta"]
    if type(meta) is not dict:
        raise ProtocolError(f"header.meta: must be a map (got {type(meta).__name__})")
    specs = h["arrays"]
    if type(specs) is not list or len(specs) > MAX_ARRAYS:
        raise ProtocolError(f"header.arrays: must be a list of at most {MAX_ARRAYS} array descriptions")
    if len(specs) != len(bufs) - 1:
        raise ProtocolError(f"header.arrays: describes {len(specs)} arrays but the message has "
                            f"{len(bufs) - 1} buffer frames")
    arrays: dict[str, np.ndarray] = {}
    for i, s in enumerate(specs):
        buf = bufs[i + 1]
        if type(s) is not dict or s.keys() != _ARRAY_SET:
            raise ProtocolError(f"header.arrays[{i}]: must be a map with exactly the keys {', '.join(_ARRAY_KEYS)}")
        name, dtype, shape = s["name"], s["dtype"], s["shape"]
        if type(name) is not str or not name:
            raise ProtocolError(f"header.arrays[{i}].name: must be a non-empty string (got {name!r})")
        if name in arrays:
            raise ProtocolError(f"header.arrays[{i}].name: {name!r} appears twice")
        dt = _DTYPE_OF.get(dtype) if type(dtype) is str else None
        if dt is None:
            raise ProtocolError(f"header.arrays[{i}].dtype: {dtype!r} is not allowed (allowed: {', '.join(DTYPES)})")
        ok = type(shape) is list and len(shape) <= MAX_NDIM
        n = dt.itemsize
        if ok:
            for d in shape:
                if type(d) is not int or not 0 <= d < _MAX_DIM:
                    ok = False
                    break
                n *= d
        if not ok:
            raise ProtocolError(f"header.arrays[{i}].shape: must be a list of at most {MAX_NDIM} integers "
                                f">= 0 (got {shape!r})")
        if n != buf.nbytes:
            raise ProtocolError(f"header.arrays[{i}].shape: {shape} of {dtype} needs {n} bytes but frame "
                                f"{i + 1} has {buf.nbytes}")
        arrays[name] = np.frombuffer(buf, dtype=dt).reshape(shape) if n else np.zeros(shape, dt)
    return Message(mtype, solver, t0, t1, arrays, meta)


def _decode_window(bufs: list, layouts: Mapping[str, Layout] | None) -> Message:
    """The compact form (version 3): prefix, header ``[type, t0, t1, rows, compute_s]`` and the
    arrays, inline in frame 0 (form 0) or one frame each after it (form 1)."""
    # every window of every worker passes here: the checks are ordered so that a good message
    # takes the fewest (and each error names its field)
    b0 = bufs[0]
    if b0.nbytes < 8:
        raise ProtocolError(f"prefix: a window message starts with 8 bytes (magic, version, form, "
                            f"header length) (got {b0.nbytes})")
    _, v, form, hlen = _PREFIX.unpack_from(b0)
    if v != WIRE_VERSION:
        raise ProtocolError(f"header.v: wire version {v!r} is not supported (this side speaks "
                            f"{WIRE_VERSION})")
    if form > 1:
        raise ProtocolError(f"prefix.form: {form} is not a window message form (allowed: 0 inline, 1 framed)")
    if hlen > b0.nbytes - 8:
        raise ProtocolError(f"prefix.header_bytes: {hlen} bytes of header but the frame has "
                            f"{b0.nbytes - 8} after the prefix")
    try:
        h = msgpack.unpackb(b0[8:8 + hlen], raw=False, strict_map_key=True, ext_hook=_no_ext)
    except ProtocolError:
        raise
    except Exception as exc:
        raise ProtocolError(f"header: not valid msgpack ({type(exc).__name__}: {exc})") from None
    if type(h) is not list or len(h) != 5:
        raise ProtocolError(f"header: a window header is [type, t0, t1, rows, compute_s] "
                            f"(got {h!r:.80})")
    mtype, t0, t1, rows, compute = h
    layout = layouts.get(mtype) if layouts is not None and type(mtype) is str else None
    if layout is None:
        raise ProtocolError(f"header.type: {mtype!r} is not a window message this side takes "
                            f"(takes: {', '.join(layouts or ()) or 'none'})")
    if type(t0) is not int or type(t1) is not int or not 0 <= t0 <= t1 < 1 << 63:
        raise ProtocolError(f"header.t0, header.t1: must be integer ticks with 0 <= t0 <= t1 < 2**63 "
                            f"(got {t0!r}, {t1!r})")
    ok = type(compute) is list and len(compute) <= MAX_ARRAYS
    if ok:
        for c in compute:
            if type(c) is not float:
                ok = False
                break
    if not ok:
        raise ProtocolError(f"header.compute_s: must be a list of floats (seconds) (got {compute!r:.80})")
    n_rows = len(rows) if type(rows) is list else -1
    if n_rows < 0 or (n_rows and n_rows != layout._n):
        raise ProtocolError(f"header.rows: must list the rows of each of the {layout._n} arrays of "
                            f"a {mtype!r} (or none) (got {rows!r:.80})")
    framed = form == 1
    if framed:
        if n_rows != len(bufs) - 1 or hlen != b0.nbytes - 8:
            raise ProtocolError(f"header.rows: describes {n_rows} arrays but the message has "
                                f"{len(bufs) - 1} array frames (framed form: the header alone in frame 0)")
    elif len(bufs) != 1:
        raise ProtocolError(f"message: a window message in the inline form is one frame (got {len(bufs)})")
    if not n_rows:
        extra = b0.nbytes - ((8 + hlen + 7) & ~7)
        if not framed and extra > 0:
            raise ProtocolError(f"header.rows: no arrays, but frame 0 has {extra} bytes after the "
                                f"header and its padding")
        return Message(mtype, None, t0, t1, _NO_ARRAYS, _NO_META, [], compute)
    data = []
    ndarray = np.ndarray
    pos = (8 + hlen + 7) & ~7
    size = b0.nbytes
    i = 0
    for n, row_bytes, dt, shape in zip(rows, layout._row_bytes, layout._np, layout.rows):
        if type(n) is not int or not 0 <= n < 1 << 62:
            raise ProtocolError(f"header.rows[{i}]: must be an integer >= 0 (got {n!r})")
        nb = n * row_bytes
        if framed:
            buf = bufs[i + 1]
            if nb != buf.nbytes:
                raise ProtocolError(f"header.rows[{i}]: {n} rows of {layout.names[i]!r} ({row_bytes} bytes "
                                    f"each) need {nb} bytes but frame {i + 1} has {buf.nbytes}")
            # an array over the frame's memory, no copy
            data.append(ndarray((n, *shape), dt, buf))
        else:
            if pos + nb > size:
                raise ProtocolError(f"header.rows[{i}]: {n} rows of {layout.names[i]!r} ({row_bytes} bytes "
                                    f"each) need {nb} bytes at offset {pos} but frame 0 has {size}")
            # an array over the frame's memory at its offset, no copy
            data.append(ndarray((n, *shape), dt, b0, pos))
            pos += (nb + 7) & ~7
        i += 1
    if not framed and pos != (size + 7) & ~7:
        raise ProtocolError(f"header.rows: the arrays end at byte {pos} but frame 0 has {size} bytes")
    return Message(mtype, None, t0, t1, _NO_ARRAYS, _NO_META, data, compute)


#: what a window message has in place of named arrays and meta (read-only: shared by all)
_NO_ARRAYS: Mapping[str, np.ndarray] = MappingProxyType({})
_NO_META: Mapping[str, Any] = MappingProxyType({})


# -- signals -----------------------------------------------------------------------------------
def signals_to_wire(prefix: str, signals: Mapping[str, Signal]) -> tuple[dict, dict[str, np.ndarray]]:
    """``(meta, arrays)`` describing ``signals`` (key -> Spikes or Samples) under ``prefix``.

    Spikes go as ``<prefix><key>/ticks`` and ``/ids`` (int64, (n,)) and, when set, ``/weights``
    (float64, (n,)); Samples as ``<prefix><key>/data`` (float64, (n_samples, size)) with
    ``t0`` and ``period`` (ticks) in the meta entry.
    """
    meta: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    for key, sig in signals.items():
        p = f"{prefix}{key}"
        if isinstance(sig, Spikes):
            meta[key] = {"kind": "spikes", "weights": sig.weights is not None}
            arrays[f"{p}/ticks"] = np.asarray(sig.ticks, dtype=np.int64)
            arrays[f"{p}/ids"] = np.asarray(sig.ids, dtype=np.int64)
            if sig.weights is not None:
                arrays[f"{p}/weights"] = np.asarray(sig.weights, dtype=np.float64)
        elif isinstance(sig, Samples):
            meta[key] = {"kind": "samples", "t0": int(sig.t0), "period": int(sig.period)}
            arrays[f"{p}/data"] = np.asarray(sig.data, dtype=np.float64)
        else:
            raise ProtocolError(f"signal {key!r}: expected Spikes or Samples (got {type(sig).__name__})")
    return meta, arrays


def _array(arrays: Mapping[str, np.ndarray], name: str, dtype: str, ndim: int) -> np.ndarray:
    a = arrays.get(name)
    if a is None:
        raise ProtocolError(f"arrays: {name!r} is missing")
    if a.dtype.str != dtype or a.ndim != ndim:
        raise ProtocolError(f"arrays[{name!r}]: must be {ndim}-D {dtype} (got {a.ndim}-D {a.dtype.str})")
    return a


def signals_from_wire(prefix: str, meta: Any, arrays: Mapping[str, np.ndarray]) -> dict[str, Signal]:
    """Inverse of :func:`signals_to_wire`; checks kinds, dtypes and shapes."""
    if not isinstance(meta, dict):
        raise ProtocolError(f"meta for {prefix!r}: must be a map (got {type(meta).__name__})")
    out: dict[str, Signal] = {}
    for key, m in meta.items():
        p = f"{prefix}{key}"
        if not isinstance(m, dict) or m.get("kind") not in ("spikes", "samples"):
            raise ProtocolError(f"meta[{p!r}].kind: must be 'spikes' or 'samples' (got {m!r})")
        if m["kind"] == "spikes":
            ticks = _array(arrays, f"{p}/ticks", "<i8", 1)
            ids = _array(arrays, f"{p}/ids", "<i8", 1)
            if ids.shape != ticks.shape:
                raise ProtocolError(f"arrays[{p + '/ids'!r}]: shape {ids.shape} differs from ticks {ticks.shape}")
            weights = None
            if m.get("weights") is True:
                weights = _array(arrays, f"{p}/weights", "<f8", 1)
                if weights.shape != ticks.shape:
                    raise ProtocolError(f"arrays[{p + '/weights'!r}]: shape {weights.shape} differs "
                                        f"from ticks {ticks.shape}")
            out[key] = Spikes(ticks, ids, weights)
        else:
            t0, period = m.get("t0"), m.get("period")
            if isinstance(t0, bool) or not isinstance(t0, int) or t0 < 0:
                raise ProtocolError(f"meta[{p!r}].t0: must be an integer tick >= 0 (got {t0!r})")
            if isinstance(period, bool) or not isinstance(period, int) or period < 1:
                raise ProtocolError(f"meta[{p!r}].period: must be an integer >= 1 tick (got {period!r})")
            out[key] = Samples(t0, period, _array(arrays, f"{p}/data", "<f8", 2))
    return out


def result_to_wire(prefix: str, result: WindowResult) -> tuple[dict, dict[str, np.ndarray]]:
    """``(meta, arrays)`` for a WindowResult: outputs under ``<prefix>o/``, probe parts as
    ``<prefix>p/<probe>`` (float64, 2-D)."""
    ometa, arrays = signals_to_wire(f"{prefix}o/", result.outputs)
    for name, part in result.probe_parts.items():
        arrays[f"{prefix}p/{name}"] = np.asarray(part, dtype=np.float64)
    return {"outputs": ometa, "probes": list(result.probe_parts)}, arrays


def result_from_wire(prefix: str, meta: Any, arrays: Mapping[str, np.ndarray]) -> WindowResult:
    """Inverse of :func:`result_to_wire`."""
    if not isinstance(meta, dict) or not isinstance(meta.get("probes"), list):
        raise ProtocolError(f"meta for result {prefix!r}: must be a map with 'outputs' and 'probes'")
    outputs = signals_from_wire(f"{prefix}o/", meta.get("outputs"), arrays)
    parts = {}
    for name in meta["probes"]:
        if not isinstance(name, str):
            raise ProtocolError(f"meta for result {prefix!r}.probes: names must be strings (got {name!r})")
        parts[name] = _array(arrays, f"{prefix}p/{name}", "<f8", 2)
    return WindowResult(outputs=outputs, probe_parts=parts)


__all__ = ["WIRE_VERSION", "INLINE_MAX_BYTES", "MESSAGE_TYPES", "WINDOW_TYPES", "DTYPES", "MAX_MESSAGE_BYTES", "Message", "Layout",
           "encode", "encode_window", "decode",
           "signals_to_wire", "signals_from_wire", "result_to_wire", "result_from_wire"]
