"""Calcium imaging probe: spike -> calcium kernel, Hill saturation, frames, noise, neuropil."""
import math

import numpy as np
import pytest

import polyscale as ps
from polyscale.probes.calcium import INDICATORS


def _run(times_ms, t_stop_ms, *, ids=None, size=1, transport="inproc", **kw):
    m = ps.Model(t_stop_ms=t_stop_ms)
    m.solver("st", ps.solvers.SpikeTrain(times_ms=list(times_ms), ids=ids, size=size, dt_ms=0.1))
    m.probe("ca", ps.probes.Calcium(spikes=kw.pop("spikes", "st.spikes"), **kw))
    return ps.run(m, transport=transport).probe("ca")


def _hill(ca, p):
    # Chen et al. 2013's fit written out: F = F_free (1 + (R - 1) [Ca]^n / ([Ca]^n + Kd^n))
    return 1.0 + (p["dynamic_range"] - 1.0) * ca ** p["hill_n"] / (ca ** p["hill_n"] + p["kd_nM"] ** p["hill_n"])


@pytest.mark.parametrize("indicator", sorted(INDICATORS))
def test_single_spike_peaks_at_tau_r_ln_1_plus_tau_d_over_tau_r(indicator):
    """One spike at 100 ms, frames every 0.1 ms: the transient peaks at
    t* = tau_r ln(1 + tau_d / tau_r) after the spike, the maximum of (1 - e^-t/tau_r) e^-t/tau_d."""
    p = INDICATORS[indicator]
    rec = _run([100.0], 100.0 + 6 * p["tau_decay_ms"], indicator=indicator, frame_rate_hz=10000.0)
    t_star = p["tau_rise_ms"] * math.log(1.0 + p["tau_decay_ms"] / p["tau_rise_ms"])
    # the frame grid is 0.1 ms, and the curve is flat at its peak: half a frame
    assert rec.time[np.argmax(rec.data[:, 0])] - 100.0 == pytest.approx(t_star, abs=0.05)


def test_trace_is_the_hill_curve_of_the_closed_form_calcium():
    """The whole dF/F trace of one spike, against the model written out in the test."""
    spec = dict(indicator="GCaMP6f", ca_rest_nM=60.0, ca_per_spike_nM=80.0, frame_rate_hz=200.0)
    rec = _run([20.0], 1500.0, **spec)
    p = INDICATORS["GCaMP6f"]
    t = rec.time - 20.0
    k = np.where(t > 0, (1 - np.exp(-t / p["tau_rise_ms"])) * np.exp(-t / p["tau_decay_ms"]), 0.0)
    want = _hill(60.0 + 80.0 * k, p) / _hill(60.0, p) - 1.0
    np.testing.assert_allclose(rec.time, np.arange(300) * 5.0)
    # float64 sums of exponentials, carried between windows: rounding only
    np.testing.assert_allclose(rec.data[:, 0], want, rtol=1e-10, atol=1e-13)
    assert rec.units == "dF/F" and rec.modality == "calcium"


def test_response_is_linear_in_rate_at_low_rates():
    """Sparse regular firing with small transients: the mean dF/F is the Hill slope at rest
    times the mean calcium, A * rate * integral of the kernel = A r (tau_d - tau_d tau_r /
    (tau_r + tau_d)), and doubling the rate doubles it."""
    p = INDICATORS["GCaMP6f"]
    a = 0.5   # nM per spike: far below Kd, so the Hill curve is close to its tangent
    means = []
    for rate in (2.0, 4.0):
        times = np.arange(0.0, 20000.0, 1000.0 / rate) + 0.05
        rec = _run(times, 20000.0, ca_per_spike_nM=a, frame_rate_hz=100.0)
        means.append(rec.data[rec.time >= 2000.0, 0].mean())   # after the first 5 tau_d
        area = p["tau_decay_ms"] - p["tau_decay_ms"] * p["tau_rise_ms"] / (p["tau_rise_ms"] + p["tau_decay_ms"])
        ca_mean = a * rate * 1e-3 * area
        h = 1e-6
        slope = (_hill(50.0 + h, p) - _hill(50.0 - h, p)) / (2 * h) / _hill(50.0, p)
        # curvature of the Hill curve over the ~1 nM swing, and the finite frame grid: < 1 %
        assert means[-1] == pytest.approx(slope * ca_mean, rel=0.01)
    assert means[1] / means[0] == pytest.approx(2.0, rel=0.005)


def test_high_rates_saturate_at_the_dynamic_range():
    """At 200 Hz with large transients the indicator is bound: dF/F tends to R / F_rest - 1, and
    doubling the rate adds under 1 %."""
    p = INDICATORS["GCaMP6s"]
    sat = p["dynamic_range"] / _hill(50.0, p) - 1.0
    means = []
    for rate in (200.0, 400.0):
        times = np.arange(0.0, 8000.0, 1000.0 / rate)
        rec = _run(times, 8000.0, indicator="GCaMP6s", ca_per_spike_nM=200.0, frame_rate_hz=30.0)
        means.append(rec.data[rec.time >= 6000.0, 0].mean())
    # mean calcium ~ 200 nM * 200 Hz * 1.1 s = 44 uM, 300 Kd: bound fraction 1 - 1e-7
    assert means[0] == pytest.approx(sat, rel=1e-4)
    assert means[1] / means[0] < 1.01


def test_frames_at_30_hz_and_neurons_from_two_solvers_keep_their_columns(transport):
    """Two spike sources, the second imaged on neurons 1 and 2 only: columns follow the spec's
    order; frames every 1/30 s (rounded to the ns), slower than the window."""
    m = ps.Model(t_stop_ms=1000.0)
    m.solver("a", ps.solvers.SpikeTrain(times_ms=[10.0], size=1, dt_ms=0.1))
    m.solver("b", ps.solvers.SpikeTrain(times_ms=[400.0, 500.0], ids=[2, 0], size=3, dt_ms=0.1))
    m.probe("ca", ps.probes.Calcium(spikes=("a.spikes", "b.spikes[1:3]")))
    rec = ps.run(m, transport=transport).probe("ca")
    np.testing.assert_allclose(rec.time, np.arange(31) * 33.333333)   # 30 x 33.333333 < 1000
    assert rec.data.shape == (31, 3)
    first = lambda col: rec.time[np.argmax(rec.data[:, col] > 0)]
    assert first(0) == pytest.approx(33.333333)   # spike at 10 ms, first frame after it
    assert not rec.data[:, 1].any()                   # b's neuron 1 is silent
    # b's neuron 2 fires at 400 ms: frame 12 (399.999996 ms) is before it, frame 13 after
    assert first(2) == pytest.approx(13 * 33.333333)
    assert (rec.data[:13, 2] == 0).all()


def test_any_split_into_windows_gives_the_same_trace():
    """Windows of 0.1, 0.7 and 50 ms: the traces carried between windows decay by products of
    exponentials instead of one, so they agree to rounding (1e-12)."""
    times = [3.3, 3.3, 17.0, 48.9, 120.0, 121.4, 300.0]
    outs = []
    for w in (0.1, 0.7, 50.0):
        m = ps.Model(t_stop_ms=700.0, window_ms=w)
        m.solver("st", ps.solvers.SpikeTrain(times_ms=times, ids=[0, 1, 0, 1, 1, 0, 1], size=2, dt_ms=0.1))
        m.probe("ca", ps.probes.Calcium(spikes="st.spikes", frame_rate_hz=200.0, photons_at_rest=80.0, seed=4))
        outs.append(ps.run(m).probe("ca").data)
    # photon noise with a fixed seed: the Poisson draws see the same means (rounded at 1e-12,
    # far from any count boundary), so even the noisy traces agree
    for o in outs[1:]:
        np.testing.assert_allclose(o, outs[0], rtol=0, atol=1e-12)


def test_shot_noise_is_poisson_and_seeded():
    """A silent cell imaged with N photons per frame: dF/F has mean 0 and variance 1/N (Poisson
    counts / N); the same seed gives the same trace, another seed another."""
    kw = dict(photons_at_rest=50.0, frame_rate_hz=1000.0)
    a = _run([], 4000.0, size=5, seed=1, **kw).data
    b = _run([], 4000.0, size=5, seed=1, **kw).data
    c = _run([], 4000.0, size=5, seed=2, **kw).data
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # 20000 samples: the sample variance is within 3 % of 1/50 (4 standard errors), the mean
    # within 4 standard errors sqrt(1/50/20000)
    assert a.var() == pytest.approx(1 / 50.0, rel=0.04)
    assert abs(a.mean()) < 4 * math.sqrt(1 / 50.0 / a.size)


def test_neuropil_contamination_adds_r_times_the_mean_cell():
    """Cell 0 fires, cell 1 is silent. With r = 0.7, F_measured = (F_i + r F_np) / (1 + r) in
    units of the resting F (F_np the mean cell), so the silent cell shows r/(1+r) of the mean,
    and the subtraction F(1 + r) - r F_np gives back each cell."""
    clean = _run([50.0], 1000.0, size=2, frame_rate_hz=100.0).data
    dirty = _run([50.0], 1000.0, size=2, frame_rate_hz=100.0, neuropil_r=0.7).data
    np_mean = clean.mean(axis=1)
    np.testing.assert_allclose(dirty[:, 1], 0.7 / 1.7 * np_mean, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dirty * 1.7 - 0.7 * np_mean[:, None], clean, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kw, match", [
    pytest.param({"indicator": "GCaMP7"}, r"'indicator' must be one of 'GCaMP6f', 'GCaMP6s' \(got 'GCaMP7'\)", id="indicator"),
    pytest.param({"tau_rise_ms": 500.0}, r"'tau_rise_ms' \(500\) must be shorter than 'tau_decay_ms' \(400\)", id="rise-after-decay"),
    pytest.param({"frame_rate_hz": 0.0}, r"'frame_rate_hz' must be a finite number > 0 \(got 0\.0\)", id="frame-rate"),
    pytest.param({"dynamic_range": 0.5}, r"'dynamic_range' must be > 1 \(got 0\.5\)", id="range"),
    pytest.param({"spikes": ()}, r"'spikes' must name at least one spike port", id="no-source"),
])
def test_bad_parameters_are_rejected(kw, match):
    args = {"spikes": "st.spikes"} | kw
    with pytest.raises(ps.ModelError, match=match):
        ps.probes.Calcium(**args)


def test_a_neuron_imaged_twice_is_rejected():
    m = ps.Model(t_stop_ms=10.0)
    m.solver("st", ps.solvers.SpikeTrain(times_ms=[], size=3, dt_ms=0.1))
    m.probe("ca", ps.probes.Calcium(spikes="st.spikes[1, 1]"))
    with pytest.raises(ps.ModelError, match=r"'st\.spikes\[1, 1\]' images a neuron twice"):
        m.check()


def test_a_sampled_port_is_not_a_spike_source():
    m = ps.Model(t_stop_ms=10.0)
    m.solver("lin", ps.solvers.LinearSystem(a=[[0.0]], dt_ms=0.1))
    m.probe("ca", ps.probes.Calcium(spikes="lin.x"))
    with pytest.raises(ps.ModelError, match=r"solver 'lin' has no spike output port 'x' \(has: none\)"):
        m.check()
