"""The contract's partitioner is Kafka's default one for keyed records (murmur2)."""

from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from stream.contract.partitioner import murmur2, partition_of, partitions_of

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
    assert _signed(murmur2(key)) == KAFKA_VECTORS[key]


@pytest.mark.parametrize("partitions", [1, 6, 7, 100])
def test_partition_is_the_positive_masked_hash_modulo_the_count(partitions):
    # Java: Utils.toPositive(murmur2) % n, where toPositive masks the sign bit (not abs).
    for key, java_int in KAFKA_VECTORS.items():
        assert partition_of(key, partitions) == (java_int & 0x7FFFFFFF) % partitions
        assert partitions_of([key], partitions) == [(java_int & 0x7FFFFFFF) % partitions]


def test_agrees_with_aiokafkas_murmur2_on_every_length():
    rng = random.Random(25)
    for length in range(70):
        for _ in range(20):
            key = rng.randbytes(length)
            assert murmur2(key) == aiokafka_murmur2(key) & 0xFFFFFFFF, key


def test_a_batch_at_once_equals_one_key_at_a_time():
    rng = random.Random(7)
    keys = [rng.randbytes(rng.choice([0, 1, 3, 16, 32, 32, 32, 33, 64])) for _ in range(2000)]
    keys[5] = keys[900] = None  # no key: left to the decoder
    got = partitions_of(keys, 6)
    assert got == [None if k is None else partition_of(k, 6) for k in keys]
    assert got[5] is None and set(got) - {None} == set(range(6))
    assert partitions_of([], 6) == []


def test_a_batch_of_one_length_takes_the_short_way_to_the_same_answer():
    rng = random.Random(8)
    for length in (0, 1, 5, 32):
        keys = [rng.randbytes(length) for _ in range(300)]
        assert partitions_of(keys, 7) == [partition_of(k, 7) for k in keys]
