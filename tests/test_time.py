"""Integer time."""
import pytest

import polyscale as ps
from polyscale.coordinator.time import TICKS_PER_MS, fmt_ms, lcm, to_ms, to_ticks


@pytest.mark.parametrize("ms, ticks", [(0.1, 100_000), (0.025, 25_000), (1000.1, 1_000_100_000),
                                       (1e-6, 1), (3, 3_000_000), (2.0e6, 2_000_000_000_000)])
def test_times_on_the_ns_grid_convert_exactly(ms, ticks):
    assert to_ticks(ms, "t") == ticks and isinstance(to_ticks(ms, "t"), int)


@pytest.mark.parametrize("ms", [1 / 3, 0.1234567891, 1e-7])
def test_times_off_the_ns_grid_are_rejected(ms):
    with pytest.raises(ps.ModelError, match=r"is not a whole number of the base resolution \(1e-06 ms\)"):
        to_ticks(ms, "solver 'x': dt_ms")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "1.0", None, True])
def test_non_numbers_are_rejected(bad):
    with pytest.raises(ps.ModelError, match=r"dt_ms must be a finite number of ms"):
        to_ticks(bad, "dt_ms")


def test_summing_windows_never_drifts():
    # ten thousand 0.1 ms windows end at exactly 1000 ms; the float sum of 0.1 does not
    assert sum([to_ticks(0.1, "w")] * 10_000) == 1000 * TICKS_PER_MS
    assert sum([0.1] * 10_000) != 1000.0


def test_helpers():
    assert lcm([300_000, 200_000]) == 600_000 and lcm([]) == 1
    assert to_ms(1_500_000) == 1.5 and fmt_ms(100_000) == "0.1 ms"
