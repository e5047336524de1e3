"""The PIDs a bulk load has taken so far, each with the person id it was numbered with.

A PID is twelve digits, so it is held as a 64-bit number: 16 bytes a person with its id, where a
Python dictionary from text to id took about 120 and made a Python object of each PID on its way
in and each relative's PID on its way to a lookup. Here whole Arrow arrays go in and come out, and
the work is numpy's: sorted runs, searched by bisection.

The runs are merged as a log-structured merge tree merges them: after a batch is added, the last run
is merged into the one before it while that one is at most twice its size. A load of N people in
batches of B keeps at most about log2(N / B) runs, and each entry is moved about log2(N / B) times.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

PID_DIGITS = r"^\d{12}$"  # the only PIDs held; the import rejects any other


class LoadedPids:
    """PID -> person id, for PIDs of twelve digits (see the module's notes). Ids are positive."""

    def __init__(self) -> None:
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []  # (PIDs as numbers, sorted; their ids)

    @staticmethod
    def _numbers(pids: pa.Array) -> np.ndarray:
        """Each PID as a number; -1 for a null (no PID is negative)."""
        return pc.fill_null(pc.cast(pids, pa.int64()), -1).to_numpy(zero_copy_only=False)

    def add(self, pids: pa.Array, ids: np.ndarray) -> None:
        """Hold ``pids`` (twelve digits each, none held before) numbered ``ids``."""
        keys = self._numbers(pids)
        if not len(keys):
            return
        order = np.argsort(keys, kind="stable")
        self._runs.append((keys[order], np.asarray(ids, dtype=np.int64)[order]))
        while len(self._runs) > 1 and len(self._runs[-2][0]) <= 2 * len(self._runs[-1][0]):
            (keys_a, ids_a), (keys_b, ids_b) = self._runs[-2:]
            keys = np.concatenate([keys_a, keys_b])
            order = np.argsort(keys, kind="stable")
            self._runs[-2:] = [(keys[order], np.concatenate([ids_a, ids_b])[order])]

    def find(self, pids: pa.Array) -> pa.Array:
        """The person id of each PID, null where it is not held (or null)."""
        asked = self._numbers(pids)
        order = np.argsort(asked)  # searched in order, each search starts where the last ended
        wanted = asked[order]
        found = np.zeros(len(wanted), dtype=np.int64)
        for keys, ids in self._runs:
            at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
            hit = keys[at] == wanted
            found[hit] = ids[at[hit]]
        answer = np.empty_like(found)
        answer[order] = found
        return pa.array(answer, pa.int64(), mask=answer == 0)

    def __len__(self) -> int:
        return sum(len(keys) for keys, _ in self._runs)
