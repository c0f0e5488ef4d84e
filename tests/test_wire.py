"""The wire protocol: exact round trips, every header check, and a fuzzed decoder."""
from __future__ import annotations

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polyscale.coordinator.errors import ProtocolError
from polyscale.coordinator.signals import Samples, Spikes, WindowResult
from polyscale.coordinator.transports import wire


def header(**override):
    h = {"v": wire.WIRE_VERSION, "type": "advance", "solver": "a", "t0": 0, "t1": 10,
         "arrays": [], "meta": {}}
    h.update(override)
    return msgpack.packb(h)


def test_arrays_round_trip_bit_for_bit_without_copying_the_send_side():
    rng = np.random.default_rng(1)
    data = rng.standard_normal((7, 3))
    ids = np.arange(5, dtype=np.int64)
    frames = wire.encode("result", solver="s", t0=5, t1=9, arrays={"d": data, "i": ids},
                         meta={"k": [1, "x"]})
    assert frames[1].obj is data  # a view on the array itself: no copy on the send side
    msg = wire.decode(frames)
    assert (msg.type, msg.solver, msg.t0, msg.t1, msg.meta) == ("result", "s", 5, 9, {"k": [1, "x"]})
    assert np.array_equal(msg.arrays["d"], data) and msg.arrays["d"].dtype == np.float64
    assert np.array_equal(msg.arrays["i"], ids) and msg.arrays["i"].dtype == np.int64


def test_big_endian_and_strided_arrays_arrive_as_the_same_numbers():
    a = np.arange(12, dtype=">f8").reshape(3, 4)[:, ::2]
    msg = wire.decode(wire.encode("result", arrays={"a": a}))
    assert msg.arrays["a"].dtype.str == "<f8" and np.array_equal(msg.arrays["a"], a)


def test_window_result_round_trip_keeps_spikes_samples_weights_and_probe_parts():
    res = WindowResult(
        outputs={"spk": Spikes(np.array([3, 4, 4], np.int64), np.array([0, 2, 1], np.int64)),
                 "w": Spikes(np.array([1], np.int64), np.array([0], np.int64), np.array([0.5])),
                 "x": Samples(100, 25, np.arange(8.0).reshape(4, 2)),
                 "none": Spikes.empty()},
        probe_parts={"lfp": np.ones((4, 1))})
    meta, arrays = wire.result_to_wire("s/", res)
    msg = wire.decode(wire.encode("result", arrays=arrays, meta={"r": meta}))
    back = wire.result_from_wire("s/", msg.meta["r"], msg.arrays)
    assert back.outputs["spk"].weights is None and back.outputs["w"].weights.tolist() == [0.5]
    for k in ("spk", "w", "none"):
        assert np.array_equal(back.outputs[k].ticks, res.outputs[k].ticks)
        assert np.array_equal(back.outputs[k].ids, res.outputs[k].ids)
    x = back.outputs["x"]
    assert (x.t0, x.period) == (100, 25) and np.array_equal(x.data, res.outputs["x"].data)
    assert np.array_equal(back.probe_parts["lfp"], np.ones((4, 1)))


@pytest.mark.parametrize("frames, field", [
    ([], "message: no frames"),
    ([b"\xc1"], r"header: not valid msgpack"),
    ([msgpack.packb("x")], r"header: must be a map or, for a window message, an array"),
    ([msgpack.packb([2, "result", 0, 10, [], []])],
     r"header.v: wire version 2 is not supported \(this side speaks 3: its window messages start with b'PW'\)"),
    ([msgpack.packb({"v": 1})], r"header: keys must be v, type, solver, t0, t1, arrays, meta"),
    ([header(v=2)], r"header.v: wire version 2 is not supported \(this side speaks 3\)"),
    ([header(v=True)], r"header.v: wire version True"),
    ([header(type="pickle")], r"header.type: 'pickle' is not a message type"),
    ([header(solver=3)], r"header.solver: must be a string or nil \(got 3\)"),
    ([header(t0=-1)], r"header.t0: must be an integer tick"),
    ([header(t1=2.5)], r"header.t1: must be an integer tick"),
    ([header(t0=5, t1=4)], r"header.t1: 4 is before t0 = 5"),
    ([header(meta=[])], r"header.meta: must be a map"),
    ([header(), b"x"], r"header.arrays: describes 0 arrays but the message has 1 buffer frames"),
    ([header(arrays=[{"name": "a"}]), b""], r"header.arrays\[0\]: must be a map with exactly the keys"),
    ([header(arrays=[{"name": "", "dtype": "<f8", "shape": []}]), b""], r"header.arrays\[0\].name"),
    ([header(arrays=[{"name": "a", "dtype": "|O", "shape": [1]}]), b"12345678"],
     r"header.arrays\[0\].dtype: '\|O' is not allowed"),
    ([header(arrays=[{"name": "a", "dtype": "<f8", "shape": [-1]}]), b""], r"header.arrays\[0\].shape"),
    ([header(arrays=[{"name": "a", "dtype": "<f8", "shape": [2, 3]}]), b"0" * 40],
     r"header.arrays\[0\].shape: \[2, 3\] of <f8 needs 48 bytes but frame 1 has 40"),
    ([header(arrays=[{"name": "a", "dtype": "<i8", "shape": [0]}] * 2), b"", b""],
     r"header.arrays\[1\].name: 'a' appears twice"),
])
def test_every_malformed_header_is_refused_naming_the_field(frames, field):
    with pytest.raises(ProtocolError, match=field):
        wire.decode(frames)


def test_extension_types_are_refused_so_nothing_can_be_unpickled():
    bad = msgpack.packb({"v": 1, "type": "hello", "solver": None, "t0": None, "t1": None,
                         "arrays": [], "meta": {"x": msgpack.ExtType(42, b"\x80\x04")}})
    with pytest.raises(ProtocolError, match="msgpack extension type 42 is not allowed"):
        wire.decode([bad])


def test_oversized_messages_are_refused_before_decoding():
    frames = wire.encode("result", arrays={"a": np.zeros(1000)})
    with pytest.raises(ProtocolError, match=r"message: 8\d+ bytes is over the limit of 4096 bytes"):
        wire.decode(frames, max_bytes=4096)


def test_signal_meta_is_checked_against_the_arrays():
    arrays = {"o/s/ticks": np.zeros(2, np.int64), "o/s/ids": np.zeros(3, np.int64)}
    with pytest.raises(ProtocolError, match=r"arrays\['o/s/ids'\]: shape \(3,\) differs from ticks"):
        wire.signals_from_wire("o/", {"s": {"kind": "spikes"}}, arrays)
    with pytest.raises(ProtocolError, match=r"arrays: 'o/x/data' is missing"):
        wire.signals_from_wire("o/", {"x": {"kind": "samples", "t0": 0, "period": 1}}, {})
    with pytest.raises(ProtocolError, match=r"meta\['o/x'\].period: must be an integer >= 1"):
        wire.signals_from_wire("o/", {"x": {"kind": "samples", "t0": 0, "period": 0}}, {})
    with pytest.raises(ProtocolError, match=r"arrays\['o/x/data'\]: must be 2-D <f8 \(got 1-D <i8\)"):
        wire.signals_from_wire("o/", {"x": {"kind": "samples", "t0": 0, "period": 1}},
                               {"o/x/data": np.zeros(2, np.int64)})


def test_encoder_refuses_object_arrays():
    with pytest.raises(ProtocolError, match=r"arrays\['a'\].dtype: '\|O' cannot go on the wire"):
        wire.encode("result", arrays={"a": np.array([object()])})


# -- window messages in the compact form (v3): layout once, rows per window, one frame -------------
LAYOUT = wire.Layout.of([("l/0/ticks", "<i8", ()), ("l/0/ids", "<i8", ()), ("l/1/data", "<f8", (3,))])
LAYOUTS = {"result": LAYOUT}


def window(v=wire.WIRE_VERSION, type="result", t0=0, t1=10, rows=(2, 2, 1), compute=(0.5,), form=0,
           body=b"", hlen=None):
    """A window message's frame 0 written by hand from docs/wire-protocol.md (not by the encoder)."""
    h = msgpack.packb([type, t0, t1, *(list(x) if isinstance(x, tuple) else x for x in (rows, compute))])
    n = len(h) if hlen is None else hlen
    head = b"PW" + bytes([v, form]) + n.to_bytes(4, "little") + h
    if form == 0:
        head += bytes(-len(head) & 7)
    return head + body


def test_window_messages_round_trip_bit_for_bit_against_their_layout():
    rng = np.random.default_rng(2)
    ticks, ids, data = np.array([3, 7], np.int64), np.array([0, 4], np.int64), rng.standard_normal((5, 3))
    frames = wire.encode_window("result", 100, 200, [ticks, ids, data], [0.25])
    assert len(frames) == 1  # small arrays: one frame, inline after the header
    # the documented layout: prefix, header, then each array at a multiple of 8 bytes
    assert frames[0] == window(t0=100, t1=200, rows=(2, 2, 5), compute=(0.25,),
                               body=ticks.tobytes() + ids.tobytes() + data.tobytes())
    msg = wire.decode(frames, layouts=LAYOUTS)
    assert (msg.type, msg.t0, msg.t1, msg.compute_s) == ("result", 100, 200, [0.25])
    assert [a.dtype.str for a in msg.data] == ["<i8", "<i8", "<f8"] and msg.data[2].shape == (5, 3)
    for a, b in zip(msg.data, (ticks, ids, data)):
        assert np.array_equal(a, b)
    empty = wire.decode(wire.encode_window("result", 0, 10, [np.zeros(0, np.int64)] * 2 + [np.zeros((0, 3))]),
                        layouts=LAYOUTS)
    assert [a.shape for a in empty.data] == [(0,), (0,), (0, 3)]
    # no arrays at all (the first advance) is allowed; the receiver decides whether it expects some
    assert wire.decode(wire.encode_window("result", 0, 10, []), layouts=LAYOUTS).data == []


def test_arrays_of_odd_byte_counts_start_at_multiples_of_8_bytes():
    layout = wire.Layout.of([("a", "|u1", ()), ("b", "<f8", (2,)), ("c", "<i4", ())])
    a, b, c = np.arange(3, dtype=np.uint8), np.arange(6.0).reshape(3, 2), np.array([-1, 5, 9], np.int32)
    frames = wire.encode_window("advance", 0, 10, [a, b, c])
    assert frames[0] == window(type="advance", rows=(3, 3, 3), compute=(),
                               body=a.tobytes() + bytes(5) + b.tobytes() + c.tobytes() + bytes(4))
    msg = wire.decode(frames, layouts={"advance": layout})
    assert all(np.array_equal(x, y) and x.dtype == y.dtype for x, y in zip(msg.data, (a, b, c)))


def test_large_window_messages_go_framed_without_copying_the_send_side():
    data = np.arange(3.0 * (wire.INLINE_MAX_BYTES // 24 + 1)).reshape(-1, 3)
    ticks, ids = np.array([1], np.int64), np.array([2], np.int64)
    frames = wire.encode_window("result", 0, 10, [ticks, ids, data], [0.1])
    assert len(frames) == 4 and frames[3].obj is data  # the array's own buffer
    assert frames[0] == window(t0=0, t1=10, rows=(1, 1, len(data)), compute=(0.1,), form=1)
    msg = wire.decode(frames, layouts=LAYOUTS)
    assert np.array_equal(msg.data[2], data) and np.array_equal(msg.data[0], ticks)


def test_layouts_travel_as_plain_data_and_are_checked():
    assert wire.Layout.from_wire(LAYOUT.to_wire(), "meta.layout") == LAYOUT
    for bad, field in [({"name": "a"}, r"meta.layout\[0\]: must be a map"),
                       ({"name": "", "dtype": "<f8", "shape": []}, r"meta.layout\[0\].name"),
                       ({"name": "a", "dtype": "|O", "shape": []}, r"meta.layout\[0\].dtype: '\|O'"),
                       ({"name": "a", "dtype": "<f8", "shape": [-1]}, r"meta.layout\[0\].shape")]:
        with pytest.raises(ProtocolError, match=field):
            wire.Layout.from_wire([bad], "meta.layout")
    with pytest.raises(ProtocolError, match=r"meta.layout: must be a list"):
        wire.Layout.from_wire({"a": 1}, "meta.layout")


@pytest.mark.parametrize("frames, field", [
    ([window()], r"header.rows\[0\]: 2 rows of 'l/0/ticks' \(8 bytes each\) need 16 bytes at offset \d+ but frame 0"),
    ([b"PW\x03"], r"prefix: a window message starts with 8 bytes"),
    ([window(v=2)], r"header.v: wire version 2 is not supported \(this side speaks 3\)"),
    ([window(v=9, form=1)], r"header.v: wire version 9 is not supported \(this side speaks 3\)"),
    ([window(form=2)], r"prefix.form: 2 is not a window message form"),
    ([window(hlen=900)], r"prefix.header_bytes: 900 bytes of header but the frame has"),
    ([b"PW\x03\x00\x02\x00\x00\x00\xc1\xc1"], r"header: not valid msgpack"),
    ([b"PW\x03\x00\x01\x00\x00\x00\x01"], r"header: a window header is \[type, t0, t1, rows, compute_s\]"),
    ([window(type="advance")], r"header.type: 'advance' is not a window message this side takes \(takes: result\)"),
    ([window(type=3)], r"header.type: 3 is not a window message"),
    ([window(t0=-1)], r"header.t0, header.t1: must be integer ticks"),
    ([window(t0=5, t1=4)], r"header.t0, header.t1: must be integer ticks with 0 <= t0 <= t1"),
    ([window(t1=None)], r"header.t0, header.t1"),
    ([window(compute=[1])], r"header.compute_s: must be a list of floats"),
    ([window(rows=(1, 1))], r"header.rows: must list the rows of each of the 3 arrays"),
    ([window(rows=(1, -1, 0), body=b"0" * 8)], r"header.rows\[1\]: must be an integer >= 0"),
    ([window(rows=(1, 1, 1), body=b"0" * 32)],
     r"header.rows\[2\]: 1 rows of 'l/1/data' \(24 bytes each\) need 24 bytes at offset \d+ but frame 0 has"),
    ([window(rows=(1, 1, 0), body=b"0" * 24)], r"header.rows: the arrays end at byte \d+ but frame 0 has"),
    ([window(rows=(), body=b"0" * 8)], r"header.rows: no arrays, but frame 0 has 8 bytes after the header"),
    ([window(rows=(1, 1, 1)), b"0" * 8], r"message: a window message in the inline form is one frame \(got 2\)"),
    ([window(form=1, rows=(1, 1, 1)), b"0" * 8, b"0" * 8, b"0" * 16],
     r"header.rows\[2\]: 1 rows of 'l/1/data' \(24 bytes each\) need 24 bytes but frame 3 has 16"),
    ([window(form=1, rows=(1, 1, 1)), b"0" * 8],
     r"header.rows: describes 3 arrays but the message has 1 array frames"),
])
def test_every_malformed_window_header_is_refused_naming_the_field(frames, field):
    with pytest.raises(ProtocolError, match=field):
        wire.decode(frames, layouts=LAYOUTS)


def test_window_messages_without_a_layout_are_refused():
    with pytest.raises(ProtocolError, match=r"header.type: 'result' is not a window message this side takes"):
        wire.decode([window(rows=())])


# -- fuzzing: whatever arrives, decode either returns a checked Message or raises ProtocolError --
def _check_decodes_or_refuses(frames):
    try:
        msg = wire.decode(frames, max_bytes=1 << 16, layouts=LAYOUTS)
    except ProtocolError:
        return
    assert msg.type in wire.MESSAGE_TYPES
    for a in msg.arrays.values():
        assert a.dtype.str in wire.DTYPES
    if msg.data:  # a window message: exactly its layout's arrays, dtypes and row shapes
        assert [(a.dtype.str, a.shape[1:]) for a in msg.data] == list(zip(LAYOUT.dtypes, LAYOUT.rows))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=64), min_size=0, max_size=4))
def test_fuzz_random_bytes(frames):
    _check_decodes_or_refuses(frames)


msgpack_ints = st.integers(-2**63, 2**64 - 1)
msgpack_values = st.recursive(
    st.none() | st.booleans() | msgpack_ints
    | st.floats() | st.text(max_size=8) | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12)
array_specs = st.fixed_dictionaries({
    "name": st.text(max_size=4), "dtype": st.sampled_from(list(wire.DTYPES) + ["|O", "<c16", ">f8", 3]),
    "shape": st.lists(st.integers(-2, 5), max_size=3) | msgpack_values})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(v=st.sampled_from([2, 2, 2, 0, 1, "2"]), type=st.sampled_from(list(wire.MESSAGE_TYPES) + ["x"]),
       solver=st.none() | st.text(max_size=3) | msgpack_ints,
       t0=st.none() | st.integers(-3, 2**64 - 1), t1=st.none() | st.integers(-3, 100),
       arrays=st.lists(array_specs, max_size=3) | msgpack_values,
       meta=msgpack_values, extra=st.lists(st.binary(max_size=48), max_size=4))
def test_fuzz_structured_headers(v, type, solver, t0, t1, arrays, meta, extra):
    h = msgpack.packb({"v": v, "type": type, "solver": solver, "t0": t0, "t1": t1, "arrays": arrays,
                       "meta": meta})
    _check_decodes_or_refuses([h, *extra])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(v=st.sampled_from([3, 3, 3, 2, 255]), form=st.sampled_from([0, 0, 1, 7]),
       type=st.sampled_from(["result", "result", "advance", "x", 1]),
       t0=st.integers(-3, 2**64 - 1) | msgpack_values, t1=st.integers(-3, 100) | msgpack_values,
       rows=st.lists(st.integers(-2, 4), max_size=4) | msgpack_values,
       compute=st.lists(st.floats() | msgpack_ints, max_size=2) | msgpack_values,
       hlen=st.none() | st.integers(0, 2**32 - 1), body=st.binary(max_size=96),
       extra=st.lists(st.binary(max_size=48), max_size=4))
def test_fuzz_window_headers(v, form, type, t0, t1, rows, compute, hlen, body, extra):
    _check_decodes_or_refuses([window(v=v, type=type, t0=t0, t1=t1, rows=rows, compute=compute, form=form,
                                      hlen=hlen, body=body), *extra])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.tuples(st.integers(0, 5), st.integers(0, 5)), compute=st.lists(st.floats(), max_size=2),
       cut=st.integers(0, 200))
def test_fuzz_truncated_window_messages(rows, compute, cut):
    """A good message cut anywhere is refused (or, cut only in its last padding, still exact)."""
    ticks = np.arange(rows[0], dtype=np.int64)
    frames = wire.encode_window("result", 0, 10, [ticks, ticks, np.ones((rows[1], 3))], compute)
    _check_decodes_or_refuses([frames[0][:max(0, len(frames[0]) - cut)]])
