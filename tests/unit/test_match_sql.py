"""The per-row rules of batch matching, on DuckDB alone (no register): one row per rule."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from dinhdanh.exchange import matching

SNAP = pa.table({"pid": ["001085000001", "001085000009"], "former": [False, True],
                 "r_mk": ["nguyễn văn an"] * 2, "r_fk": ["nguyen van an"] * 2,
                 "r_dob": ["1985-03-04"] * 2, "r_sex": ["male"] * 2, "person_id": [1, 1],
                 "a_province": ["01"] * 2, "a_commune": ["00070"] * 2, "a_temp_province": [None] * 2,
                 "a_temp_commune": [None] * 2},
                schema=matching.SNAPSHOT_SCHEMA)


def run(rows: list[tuple], sex: bool = True) -> list[dict]:
    cols = ["pid", "full_name", "date_of_birth", *(["sex"] if sex else [])]
    table = pa.table({c: pa.array([r[i] for r in rows], pa.string()) for i, c in enumerate(cols)})
    chunk = matching._prepare(table, 100)
    con = duckdb.connect()
    con.register("snap", SNAP)
    con.register("chunk", chunk)
    out = con.sql(f"SELECT * FROM ({matching._result_sql(False, sex)}) ORDER BY rn").to_arrow_table()
    return out.to_pylist()


@pytest.mark.parametrize("row,expect", [
    (("001085000001", "Nguyễn Văn An", "1985-03-04", "m"), ("match", "match", "match", "match", None)),
    (("001085000001", "nguyen van an", "1985-03-04", "NỮ"),
     ("match_folded", "match", "mismatch", "mismatch", "full_name matches only without diacritics; sex differs")),
    (("001085000001", "Nguyễn Văn An", " 1985-03-04 ", None), ("match", "match", "missing", "mismatch",
                                                              "sex is missing")),
    (("001085000001", "Nguyễn Văn An", "1985-02-29", "male"), (None, None, None, "invalid",
                                                              "date_of_birth is not a date (YYYY-MM-DD)")),
    (("001085000001", "Nguyễn Văn An", "1985-3-4", "male"), (None, None, None, "invalid",
                                                            "date_of_birth is not a date (YYYY-MM-DD)")),
    ((None, "Nguyễn Văn An", "1985-03-04", "male"), (None, None, None, "invalid", "pid is missing")),
    (("001085000009", "Nguyễn Văn An", "1985-03-04", "male"),
     ("match", "match", "match", "match", "pid is a former number of this person")),
    (("001085000002", "Nguyễn Văn An", "1985-03-04", "male"),
     (None, None, None, "not_found", "no person holds or held this pid")),
    (("001085000001", None, None, "male"),
     ("missing", "missing", "match", "mismatch", "full_name is missing; date_of_birth is missing")),
])
def test_rules(row, expect):
    got = run([row])[0]
    assert (got["full_name_result"], got["date_of_birth_result"], got["sex_result"], got["outcome"],
            got["reason"]) == expect
    assert got["rn"] == 100


def test_order_is_kept():
    rows = [(f"0010850000{i % 10:02d}", "x", "1985-03-04", "male") for i in range(50)]
    assert [r["rn"] for r in run(rows)] == list(range(100, 150))
