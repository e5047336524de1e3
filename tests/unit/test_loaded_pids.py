"""The bulk load's PID -> person id index (population.loaded_pids) against a dictionary."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from dinhdanh.population.loaded_pids import LoadedPids

pid = st.integers(0, 10**12 - 1).map(lambda n: f"{n:012d}")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(pid, max_size=40, unique=True), max_size=12), st.lists(st.one_of(st.none(), pid), max_size=30))
def test_it_answers_as_a_dictionary_would(batches, asked):
    index, reference, next_id = LoadedPids(), {}, 1
    for batch in batches:
        batch = [p for p in batch if p not in reference]  # a PID is held once
        ids = np.arange(next_id, next_id + len(batch), dtype=np.int64)[::-1]  # any order of ids
        next_id += len(batch)
        index.add(pa.array(batch, pa.string()), ids)
        reference.update(zip(batch, ids.tolist()))
        held = list(reference)[:: max(1, len(reference) // 7)]
        assert index.find(pa.array(held + asked, pa.string())).to_pylist() == [
            reference.get(p) for p in held + asked]
    assert len(index) == len(reference)


def test_runs_stay_few_and_leading_zeros_count():
    index = LoadedPids()
    for start in range(0, 64_000, 1_000):
        index.add(pa.array([f"{n:012d}" for n in range(start, start + 1_000)]), np.arange(start + 1, start + 1_001))
    assert len(index._runs) <= 7  # log2(64) + 1
    assert index.find(pa.array(["000000000000", "000000063999", "000000064000", None])).to_pylist() == [
        1, 64_000, None, None]
    # "001090000011" and "1090000011" are not the same PID; only the first has twelve digits and is held
    index.add(pa.array(["001090000011"]), np.array([70_000]))
    assert index.find(pa.array(["001090000011", "011090000011"])).to_pylist() == [70_000, None]
