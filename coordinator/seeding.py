"""One run seed, split by name: every solver and adapter gets its own reproducible stream.

``rng_for(seed, "cortex")`` is the same Generator on any host and in any process, and independent
of which other solvers exist, because it depends only on the seed and the name (not on Python's
randomised ``hash`` nor on the order solvers were built).
"""
from __future__ import annotations

import hashlib

import numpy as np


def stable_hash(name: str) -> int:
    """A 64-bit hash of ``name`` that is the same in every process and Python version."""
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "little")


def seed_sequence(seed: int, *names: str) -> np.random.SeedSequence:
    return np.random.SeedSequence([int(seed), *(stable_hash(n) for n in names)])


def rng_for(seed: int, *names: str) -> np.random.Generator:
    """PCG64 Generator for the stream named by ``names`` under run seed ``seed``."""
    return np.random.Generator(np.random.PCG64(seed_sequence(seed, *names)))
