"""The contract's partitioner is Kafka's default one for keyed records (murmur2).

Both implementations are held to Kafka's vectors and to each other: the compiled one
(``_murmur2.c``, what the worker uses) and the pure-Python fallback.
"""

from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from stream.contract import partitioner
from stream.contract.partitioner import (
    murmur2,
    murmur2_python,
    partition_of,
    partitions_of,
    partitions_of_python,
)
from tests import tools


def _compiled():
    """The compiled murmur2; fails (never skips) when ``make install`` did not build it."""
    tools.require("gcc")
    tools.require("python3.11-config")
    if not partitioner.COMPILED:
        pytest.fail("the compiled murmur2 is not built: `touch setup.py && make install` "
                    "(gcc and Python's headers were missing when it last ran)")
    from stream.contract import _murmur2
    return _murmur2

#: Kafka's own vectors (clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java,
#: ``testMurmur2``): Java ints, signed.
KAFKA_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def _signed(h: int) -> int:
    return h - (1 << 32) if h >= 1 << 31 else h


@pytest.mark.parametrize("key", KAFKA_VECTORS, ids=lambda k: k.decode())
def test_murmur2_gives_kafkas_values(key):
    assert _signed(murmur2_python(key)) == KAFKA_VECTORS[key]
    assert _signed(_compiled().murmur2(key)) == KAFKA_VECTORS[key]
    assert murmur2 is _compiled().murmur2  # the worker hashes with the compiled one


def test_the_worker_checks_with_the_compiled_partitioner():
    assert partitions_of is _compiled().partitions_of


@pytest.mark.parametrize("partitions", [1, 6, 7, 100])
def test_partition_is_the_positive_masked_hash_modulo_the_count(partitions):
    # Java: Utils.toPositive(murmur2) % n, where toPositive masks the sign bit (not abs).
    for key, java_int in KAFKA_VECTORS.items():
        assert partition_of(key, partitions) == (java_int & 0x7FFFFFFF) % partitions
        assert partitions_of([key], partitions) == [(java_int & 0x7FFFFFFF) % partitions]
        assert partitions_of_python([key], partitions) == [(java_int & 0x7FFFFFFF) % partitions]


def test_agrees_with_aiokafkas_murmur2_on_every_length():
    rng = random.Random(25)
    for length in range(70):
        for _ in range(20):
            key = rng.randbytes(length)
            assert murmur2_python(key) == aiokafka_murmur2(key) & 0xFFFFFFFF, key


def test_a_batch_at_once_equals_one_key_at_a_time():
    rng = random.Random(7)
    keys = [rng.randbytes(rng.choice([0, 1, 3, 16, 32, 32, 32, 33, 64])) for _ in range(2000)]
    keys[5] = keys[900] = None  # no key: left to the decoder
    got = partitions_of_python(keys, 6)
    assert got == [None if k is None else partition_of(k, 6) for k in keys]
    assert got[5] is None and set(got) - {None} == set(range(6))
    assert partitions_of_python([], 6) == []


def test_a_batch_of_one_length_takes_the_short_way_to_the_same_answer():
    rng = random.Random(8)
    for length in (0, 1, 5, 32):
        keys = [rng.randbytes(length) for _ in range(300)]
        assert partitions_of_python(keys, 7) == [partition_of(k, 7) for k in keys]


def test_compiled_equals_python_on_random_keys_of_every_length():
    fast, rng = _compiled(), random.Random(2025)
    for length in range(65):
        keys = [rng.randbytes(length) for _ in range(200)]
        keys += [rng.randbytes(length // 2).hex().encode()[:length] for _ in range(50)]
        assert [fast.murmur2(k) for k in keys] == [murmur2_python(k) for k in keys], length
        for partitions in (1, 6, 7, 24, 2**31 - 1):
            assert fast.partitions_of(keys, partitions) == \
                partitions_of_python(keys, partitions), (length, partitions)


def test_compiled_takes_a_mixed_batch_and_any_bytes_like_key():
    fast, rng = _compiled(), random.Random(9)
    keys = [None if rng.random() < 0.05 else rng.randbytes(rng.randrange(65))
            for _ in range(3000)]
    assert fast.partitions_of(keys, 12) == partitions_of_python(keys, 12)
    assert fast.partitions_of(tuple(keys), 12) == partitions_of_python(keys, 12)
    assert fast.partitions_of([], 12) == []
    key = rng.randbytes(33)
    assert fast.murmur2(bytearray(key)) == fast.murmur2(memoryview(key)) == murmur2_python(key)


def test_compiled_refuses_what_is_not_a_key_batch():
    fast = _compiled()
    with pytest.raises(TypeError):
        fast.partitions_of([b"ab", "text"], 6)
    with pytest.raises(TypeError):
        fast.partitions_of(5, 6)
    with pytest.raises(ValueError, match="positive"):
        fast.partitions_of([b"ab"], 0)
