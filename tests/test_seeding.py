"""One run seed split by name."""
import subprocess
import sys

import numpy as np

from polyscale.coordinator.seeding import rng_for, stable_hash


def test_streams_depend_on_seed_and_name_only():
    a = rng_for(1, "solver", "cortex").random(5)
    assert np.array_equal(a, rng_for(1, "solver", "cortex").random(5))
    assert not np.array_equal(a, rng_for(2, "solver", "cortex").random(5))
    assert not np.array_equal(a, rng_for(1, "solver", "thalamus").random(5))


def test_stable_hash_is_the_same_in_another_process():
    # Python's own hash() of str is randomised per process; ours must not be
    code = "from polyscale.coordinator.seeding import stable_hash; print(stable_hash('cortex'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "123"})
    assert int(out.stdout) == stable_hash("cortex")
