"""A realistic, reproducible synthetic population of Vietnam, one row per person.

``generate(count, seed)`` gives the same table for the same arguments, and ``write`` the same bytes.
Everything is drawn with one ``numpy`` generator, a column at a time (no loop over people).

How it is built:

1. Household skeletons: ages, sexes, marital states and family links of a pool of households of
   seven kinds (one person, couple, couple with children, lone parent, three generations with the
   head's parents, three generations with a married child, siblings). Ages follow from the
   mother's age at each birth and the spouses' age gap, so families are coherent by construction.
2. List balancing (iterative proportional updating): households get weights so that the weighted
   pool matches the 2024 age-sex pyramid and the household-size distribution at once; the
   households of the output are drawn by those weights until exactly ``count`` people.
3. Places: a 2025 province by population and a real commune of it; the pre-2025 province the
   commune lies in (or, for migrant households, the province they came from) sets ethnic group,
   religion, surname mix, and the place where people's births were registered.
4. Names, dates of birth, PIDs (consistent with sex, year and registration place), blood types
   inherited from parents, old CMND numbers, phones, e-mails, addresses, household numbers.

"Today" is fixed at 1 July 2025 (``REFERENCE_DATE``) so that the output never depends on the clock.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from dinhdanh import places
from dinhdanh.ids import names
from dinhdanh.ids import pid as pid_mod
from dinhdanh.population import demography as demo

__all__ = ["CHUNK_ROWS", "COLUMNS", "REFERENCE_DATE", "generate", "generate_chunks", "part_sizes", "write",
           "write_chunks"]

REFERENCE_DATE = np.datetime64("2025-07-01", "D")
_REFERENCE_YEAR = int(REFERENCE_DATE.astype("datetime64[Y]").astype(np.int64)) + 1970

COLUMNS: tuple[str, ...] = (
    "pid", "full_name", "surname", "middle_name", "given_name", "date_of_birth", "sex",
    "place_of_birth", "birth_registration_code", "hometown", "ethnicity", "religion", "nationality",
    "blood_type", "old_id_number", "father_pid", "mother_pid", "spouse_pid", "household_number",
    "relation_to_head", "province_code", "commune_code", "address", "marital_status", "status",
    "phone", "email",
)

RELATIONS = ("head", "spouse", "child", "parent", "grandchild", "sibling", "other")
R_HEAD, R_SPOUSE, R_CHILD, R_PARENT, R_GRANDCHILD, R_SIBLING, R_OTHER = range(7)
MARITAL_STATUSES = ("single", "married", "divorced", "widowed")
SINGLE, MARRIED, DIVORCED, WIDOWED = range(4)
BLOOD_TYPES = ("O+", "A+", "B+", "AB+", "O-", "A-", "B-", "AB-")
_KINH = demo.ETHNIC_GROUPS.index("Kinh")

# Household kinds and their shares in the pool (list balancing corrects them afterwards).
ALONE, COUPLE, NUCLEAR, LONE_PARENT, WITH_PARENTS, WITH_MARRIED_CHILD, SIBLINGS = range(7)
_KIND_SHARES = (0.12, 0.15, 0.40, 0.07, 0.12, 0.11, 0.03)

# Member slots of a household skeleton, in the order members are listed.
HEAD, SPOUSE, FATHER, MOTHER = 0, 1, 2, 3  # FATHER/MOTHER: the head's parents
CHILDREN = range(4, 10)  # the head's children; the first is the married one in WITH_MARRIED_CHILD
CHILD_SPOUSE = 10
GRANDCHILDREN = range(11, 14)  # children of slots 4 and 10
SIBLING_SLOTS = range(14, 16)
_SLOTS = 16
_SLOT_RELATION = np.array(
    [R_HEAD, R_SPOUSE, R_PARENT, R_PARENT] + [R_CHILD] * len(CHILDREN) + [R_OTHER]
    + [R_GRANDCHILD] * len(GRANDCHILDREN) + [R_SIBLING] * len(SIBLING_SLOTS), dtype=np.int8)

# Households in the skeleton pool: enough variety for the balancing even for tiny outputs, and
# capped because beyond that more skeletons add cost, not realism (all other traits are drawn anew).
_POOL = (4000, 250_000)
_BALANCE_ROUNDS = 12


# --------------------------------------------------------------------------------- small helpers


def _cumulative(weights) -> np.ndarray:
    """Normalised cumulative weights along the last axis, ending exactly at 1."""
    cum = np.cumsum(np.asarray(weights, dtype=float), axis=-1)
    cum /= cum[..., -1:]
    cum[..., -1] = 1.0
    return cum


def _draw(rng: np.random.Generator, cum: np.ndarray, rows: np.ndarray | None = None, n: int = 0) -> np.ndarray:
    """Category indices from a cumulative table: one row for all, or row ``rows[i]`` for draw i."""
    if cum.ndim == 1:
        return np.minimum(np.searchsorted(cum, rng.random(n), side="right"), len(cum) - 1)
    n_rows, k = cum.shape
    flat = (cum + np.arange(n_rows)[:, None]).ravel()
    found = np.searchsorted(flat, rows + rng.random(len(rows)), side="right") - rows * k
    return np.minimum(found, k - 1)


@dataclass(frozen=True)
class _Groups:
    """Items sorted by group, with weights, to draw one item of a given group per request."""

    keys: np.ndarray  # group index + cumulative weight within the group
    last: np.ndarray  # index of each group's last item

    @classmethod
    def build(cls, group: np.ndarray, weight: np.ndarray, n_groups: int) -> _Groups:
        totals = np.bincount(group, weights=weight, minlength=n_groups)
        cum = np.cumsum(weight) - np.concatenate(([0.0], np.cumsum(totals)))[group]
        keys = group + cum / totals[group]
        last = np.searchsorted(group, np.arange(n_groups), side="right") - 1
        keys[last] = np.arange(n_groups) + 1.0
        return cls(keys=keys, last=last)

    def draw(self, rng: np.random.Generator, groups: np.ndarray) -> np.ndarray:
        found = np.searchsorted(self.keys, groups + rng.random(len(groups)), side="right")
        return np.minimum(found, self.last[groups])


def _repeats(keys: np.ndarray) -> np.ndarray:
    """Positions holding a value that an earlier position already holds."""
    ordered = np.sort(keys)
    clashing = ordered[1:][ordered[1:] == ordered[:-1]]
    if len(clashing) == 0:
        return clashing
    suspects = np.flatnonzero(np.isin(keys, clashing))
    _, first = np.unique(keys[suspects], return_index=True)
    return np.delete(suspects, first)


def _unique_keys(rng: np.random.Generator, base: np.ndarray, space) -> np.ndarray:
    """``base + random(0, space)`` for each item, redrawing the random part until all are distinct."""
    keys = base + rng.integers(0, space, size=len(base))
    while len(repeated := _repeats(keys)):
        keys[repeated] = base[repeated] + rng.integers(0, space if np.isscalar(space) else space[repeated],
                                                       size=len(repeated))
    return keys


def _digits(values: np.ndarray, width: int, valid: np.ndarray | None = None) -> pa.Array:
    """Numbers as text, zero-padded to ``width``; null where ``valid`` is False."""
    mask = None if valid is None else ~valid
    return pc.utf8_lpad(pa.array(values, pa.int64(), mask=mask).cast(pa.string()), width, "0")


def _take(vocabulary, index: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Strings of ``vocabulary`` at ``index``; null where ``valid`` is False."""
    vocab = vocabulary if isinstance(vocabulary, pa.Array) else pa.array(list(vocabulary), pa.string())
    mask = None if valid is None else ~valid
    return vocab.take(pa.array(index, pa.int32(), mask=mask))


def _inherit(values: np.ndarray, source: np.ndarray, generations: int = 3) -> np.ndarray:
    """Copy each person's value from ``source`` (a parent's row, or -1) down the generations."""
    has = source >= 0
    out = values.copy()
    for _ in range(generations):
        out = np.where(has, out[np.where(has, source, 0)], values)
    return out


# ----------------------------------------------------------------------------------- data tables


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _province_title(p: places.Province) -> str:
    """"Thành phố Hà Nội", "Tỉnh Phú Thọ": the package leaves "Tỉnh" out of province names."""
    return p.name if p.name != p.short_name else f"Tỉnh {p.short_name}"


@dataclass(frozen=True)
class _Tables:
    province_codes: list[str]  # the 34 of 2025
    province_cum: np.ndarray  # by population
    old_codes: list[str]  # the 63 pre-2025
    old_successor: np.ndarray  # old index -> 2025 province index
    old_within_new: np.ndarray  # [2025 province, old] cumulative, by population
    origin_cum: np.ndarray  # where migrants come from
    in_migration: np.ndarray  # by 2025 province
    commune_codes: pa.Array
    commune_labels: pa.Array  # "Xã ..., Tỉnh ..."
    commune_old: np.ndarray
    commune_is_ward: np.ndarray
    communes_by_province: _Groups
    communes_by_old: _CommunesByOld
    south: np.ndarray  # by 2025 province: southern surname mix
    hamlets: np.ndarray  # by 2025 province: rural "ấp", town alleys numbered "123/45"
    mountain: np.ndarray  # by 2025 province: villages are "bản"
    ethnic_cum: np.ndarray  # [old, group]
    religion_cum: np.ndarray  # [old * groups + group, religion]
    surnames: list[str]
    surname_cum: np.ndarray  # [north/south, surname]
    minority_surname_cum: dict[int, np.ndarray]  # group -> cumulative over ``surnames``
    middle_names: list[str]
    middle_cum: np.ndarray  # [male, female]
    thi: int
    van: int
    given_names: list[str]
    given_cum: np.ndarray  # [female old, female new, male old, male new]
    surname_as_given: np.ndarray  # the given-name index of the same word, or -1
    middle_last_as_given: np.ndarray  # the given-name index of the middle name's last word, or -1
    old_code_numbers: np.ndarray
    province_numbers: np.ndarray
    cmnd_prefix: np.ndarray  # by old province
    cmnd_space: np.ndarray
    phone_prefix: np.ndarray
    phone_cum: np.ndarray


@cache
def _tables() -> _Tables:
    province_codes = sorted(places.PROVINCES)
    old_codes = sorted(places.OLD_PROVINCES)
    old_index = {c: i for i, c in enumerate(old_codes)}
    prov_index = {c: i for i, c in enumerate(province_codes)}
    old_pop = np.array([demo.OLD_PROVINCE_POPULATION[c] for c in old_codes], float)
    old_successor = np.array([prov_index[places.OLD_PROVINCES[c].successor] for c in old_codes])
    province_pop = np.bincount(old_successor, weights=old_pop, minlength=len(province_codes))
    within = np.zeros((len(province_codes), len(old_codes)))
    within[old_successor, np.arange(len(old_codes))] = old_pop
    origin = old_pop * np.array([demo.OUT_MIGRATION.get(c, 1.0) for c in old_codes])

    communes = sorted(places.COMMUNES.values(), key=lambda c: (c.province_code, int(c.code)))
    starts = demo.OLD_WARD_CODE_START

    def old_of(c: places.Commune) -> int:
        preds = sorted(places.SUCCESSION[c.province_code], key=starts.__getitem__)
        below = [p for p in preds if starts[p] <= int(c.code)]
        return old_index[below[-1] if below else preds[0]]

    c_prov = np.array([prov_index[c.province_code] for c in communes])
    c_old = np.array([old_of(c) for c in communes])
    is_ward = np.array([c.kind == "phường" for c in communes])
    # Wards are denser than rural communes; each old province keeps its share of the population.
    urban = np.where(is_ward, 2.0, 1.0)
    per_old = np.bincount(c_old, weights=urban, minlength=len(old_codes))
    weight = old_pop[c_old] * urban / per_old[c_old]
    by_old = np.lexsort((np.arange(len(communes)), c_old))
    if not np.array_equal(np.unique(c_old), np.arange(len(old_codes))):
        raise RuntimeError("a pre-2025 province has no 2025 commune: check OLD_WARD_CODE_START")

    groups = demo.ETHNIC_GROUPS
    g_index = {g: i for i, g in enumerate(groups)}
    ethnic = np.zeros((len(old_codes), len(groups)))
    for i, code in enumerate(old_codes):
        mix = demo.ETHNIC_MIX.get(code, {})
        for g, share in mix.items():
            ethnic[i, g_index[g]] = share
        ethnic[i, _KINH] = 100.0 - sum(mix.values())
    religions = demo.RELIGIONS
    r_index = {r: i for i, r in enumerate(religions)}

    def religion_row(shares: dict[str, float]) -> np.ndarray:
        row = np.zeros(len(religions))
        for r, share in shares.items():
            row[r_index[r]] = share
        row[0] = 100.0 - sum(shares.values())
        return row

    religion = np.zeros((len(old_codes), len(groups), len(religions)))
    for i, code in enumerate(old_codes):
        for g in groups:
            religion[i, g_index[g]] = religion_row(
                demo.KINH_RELIGION.get(code, demo.KINH_RELIGION_DEFAULT) if g == "Kinh"
                else demo.MINORITY_RELIGION.get(g, demo.MINORITY_RELIGION_DEFAULT))

    surnames = [_nfc(s) for s, _, _ in demo.SURNAMES]
    for table in demo.MINORITY_SURNAMES.values():
        surnames += [_nfc(s) for s, _ in table if _nfc(s) not in surnames]
    s_index = {s: i for i, s in enumerate(surnames)}
    general = np.zeros((2, len(surnames)))
    general[0, : len(demo.SURNAMES)] = [n for _, n, _ in demo.SURNAMES]
    general[1, : len(demo.SURNAMES)] = [s for _, _, s in demo.SURNAMES]
    minority = {}
    for g, table in demo.MINORITY_SURNAMES.items():
        w = np.zeros(len(surnames))
        for s, share in table:
            w[s_index[_nfc(s)]] = share
        minority[g_index[g]] = _cumulative(w)

    middle = ["Thị", "Văn"]
    for s, _ in demo.FEMALE_MIDDLE_NAMES + demo.MALE_MIDDLE_NAMES:
        if _nfc(s) not in middle:
            middle.append(_nfc(s))
    m_index = {s: i for i, s in enumerate(middle)}

    def middle_cum(tables) -> np.ndarray:
        w = np.zeros((len(tables), len(middle)))
        for row, table in enumerate(tables):
            for s, share in table:
                w[row, m_index[_nfc(s)]] = share
        return _cumulative(w)

    given = []
    for s, _, _ in demo.FEMALE_GIVEN_NAMES + demo.MALE_GIVEN_NAMES:
        if _nfc(s) not in given:
            given.append(_nfc(s))
    gi = {s: i for i, s in enumerate(given)}
    given_w = np.zeros((4, len(given)))
    for row, table in ((0, demo.FEMALE_GIVEN_NAMES), (2, demo.MALE_GIVEN_NAMES)):
        for s, old, new in table:
            given_w[row, gi[_nfc(s)]] = old
            given_w[row + 1, gi[_nfc(s)]] = new

    prefixes = [demo.CMND_PREFIXES[c] for c in old_codes]
    space = np.array([10 ** (9 - len(p)) for p in prefixes], np.int64)
    return _Tables(
        province_codes=province_codes,
        province_cum=_cumulative(province_pop),
        old_codes=old_codes,
        old_successor=old_successor,
        old_within_new=_cumulative(within),
        origin_cum=_cumulative(origin),
        in_migration=np.array([demo.IN_MIGRATION.get(c, demo.DEFAULT_IN_MIGRATION) for c in province_codes]),
        commune_codes=pa.array([c.code for c in communes], pa.string()),
        commune_labels=pa.array([f"{c.name}, {_province_title(places.PROVINCES[c.province_code])}" for c in communes]),
        commune_old=c_old,
        commune_is_ward=is_ward,
        communes_by_province=_Groups.build(c_prov, weight, len(province_codes)),
        communes_by_old=_CommunesByOld(by_old, _Groups.build(c_old[by_old], urban[by_old], len(old_codes))),
        south=np.array([c in demo.SOUTHERN_PROVINCES for c in province_codes]),
        hamlets=np.array([c in demo.HAMLET_PROVINCES for c in province_codes]),
        mountain=np.array([c in demo.MOUNTAIN_PROVINCES for c in province_codes]),
        ethnic_cum=_cumulative(ethnic),
        religion_cum=_cumulative(religion.reshape(len(old_codes) * len(groups), len(religions))),
        surnames=surnames,
        surname_cum=_cumulative(general),
        minority_surname_cum=minority,
        middle_names=middle,
        middle_cum=middle_cum((demo.MALE_MIDDLE_NAMES, demo.FEMALE_MIDDLE_NAMES)),
        thi=m_index["Thị"],
        van=m_index["Văn"],
        given_names=given,
        given_cum=_cumulative(given_w),
        surname_as_given=np.array([gi.get(x, -1) for x in surnames]),
        middle_last_as_given=np.array([gi.get(x.split()[-1], -1) for x in middle]),
        old_code_numbers=np.array([int(c) for c in old_codes], np.int64),
        province_numbers=np.array([int(c) for c in province_codes], np.int64),
        cmnd_prefix=np.array([int(p) for p in prefixes], np.int64) * space,
        cmnd_space=space,
        phone_prefix=np.array([int(p) for p, _ in demo.PHONE_PREFIXES], np.int64),
        phone_cum=_cumulative([w for _, w in demo.PHONE_PREFIXES]),
    )


@dataclass(frozen=True)
class _CommunesByOld:
    """Communes grouped by the pre-2025 province they lie in."""

    order: np.ndarray  # commune indices sorted by old province
    groups: _Groups

    def draw(self, rng: np.random.Generator, old: np.ndarray) -> np.ndarray:
        return self.order[self.groups.draw(rng, old)]


# ---------------------------------------------------------------------------- household skeletons


@dataclass(frozen=True)
class _Skeletons:
    """The members of a pool of households, listed household by household."""

    household: np.ndarray
    slot: np.ndarray
    age: np.ndarray  # whole years on the reference date
    female: np.ndarray
    marital: np.ndarray
    father: np.ndarray  # position of the member's father within the household, -1 if not in it
    mother: np.ndarray
    spouse: np.ndarray
    start: np.ndarray  # position of each household's first member
    size: np.ndarray


def _female_at_birth(rng: np.random.Generator, birth_year: np.ndarray) -> np.ndarray:
    boys_per_girl = np.interp(birth_year, *zip(*demo.SEX_RATIO_AT_BIRTH))
    return rng.random(birth_year.shape) < 1.0 / (1.0 + boys_per_girl)


def _first_birth_age(rng: np.random.Generator, n: int) -> np.ndarray:
    """Mother's age at her first child: 19 to 39, most often about 24."""
    return 19 + np.minimum(np.rint(rng.gamma(2.0, 2.8, n)), 20).astype(np.int64)


def _children(rng: np.random.Generator, mother: np.ndarray, father: np.ndarray, first: np.ndarray,
              slots: int) -> np.ndarray:
    """Ages of up to ``slots`` children of a couple now aged ``mother`` and ``father``; -1: none.

    Births come every few years from the mother's ``first`` on; she is 19-44 at each birth and
    the father at least 20; the number of children follows the mother's generation.
    """
    n = len(mother)
    spacing = 1 + np.rint(rng.gamma(2.2, 1.3, (n, slots)))
    spacing[:, 0] = 0
    at_birth = first[:, None] + np.cumsum(spacing, axis=1).astype(np.int64)
    age = mother[:, None] - at_birth
    fertility = np.interp(_REFERENCE_YEAR - mother, *zip(*demo.FERTILITY_BY_COHORT))
    born = 1 + rng.poisson(np.maximum(fertility - 1.0, 0.0))
    ok = (np.arange(slots) < born[:, None]) & (age >= 0) & (at_birth <= 44) & (father[:, None] - age >= 20)
    return np.where(ok, age, -1)


def _skeletons(rng: np.random.Generator, n: int) -> _Skeletons:
    """``n`` households of the seven kinds: each member's age, sex, marital state and slot."""
    kind = rng.choice(len(_KIND_SHARES), size=n, p=_KIND_SHARES)
    age = np.full((n, _SLOTS), -1, np.int32)  # -1: no such member
    female = np.zeros((n, _SLOTS), bool)
    marital = np.zeros((n, _SLOTS), np.int8)
    family = ~np.isin(kind, (ALONE, SIBLINGS))
    extended = kind == WITH_MARRIED_CHILD

    # The head's couple: the woman's age, and the man's from the usual gap of about 3.5 years.
    first = _first_birth_age(rng, n)
    married_child = np.minimum(22 + np.rint(rng.gamma(2.0, 4.0, n)), 50).astype(np.int64)
    woman = np.select(
        [kind == COUPLE, kind == LONE_PARENT, extended],
        [np.where(rng.random(n) < 0.35, rng.integers(19, 35, n), rng.integers(48, 89, n)),
         rng.integers(24, 63, n), married_child + first],
        rng.integers(20, 59, n),
    )
    man = np.maximum(woman + np.clip(np.rint(rng.normal(3.5, 3.5, n)), -3, 15).astype(np.int64), 20)
    man = np.where(extended, np.maximum(man, married_child + 20), man)

    # Lone parents are mostly mothers; an old couple living with a married child may be widowed.
    woman_here, man_here = family.copy(), family.copy()
    lone = kind == LONE_PARENT
    lone_mother = rng.random(n) < 0.82
    man_here[lone & lone_mother] = False
    woman_here[lone & ~lone_mother] = False
    bereaved = extended & (rng.random(n) < 0.35)
    widow = rng.random(n) < 0.75
    man_here[bereaved & widow] = False
    woman_here[bereaved & ~widow] = False

    head_is_man = man_here & (~woman_here | (rng.random(n) < 0.8))
    both = man_here & woman_here
    age[family, HEAD] = np.where(head_is_man, man, woman)[family]
    female[:, HEAD] = ~head_is_man
    age[both, SPOUSE] = np.where(head_is_man, woman, man)[both]
    female[:, SPOUSE] = head_is_man
    marital[both, HEAD] = marital[both, SPOUSE] = MARRIED
    lone_status = np.where(rng.random(n) < 0.08, SINGLE,
                           np.where((woman >= 45) & (rng.random(n) < 0.6), WIDOWED, DIVORCED))
    marital[lone, HEAD] = lone_status[lone]
    marital[bereaved, HEAD] = WIDOWED

    # People living alone: young never-married, divorced, and (mostly) widowed elders.
    alone = kind == ALONE
    sort = rng.choice(3, size=n, p=(0.38, 0.12, 0.50))
    alone_age = np.select([sort == 0, sort == 1], [rng.integers(20, 40, n), rng.integers(30, 65, n)],
                          rng.integers(55, 100, n))
    age[alone, HEAD] = alone_age[alone]
    female[alone, HEAD] = (rng.random(n) < np.array([0.44, 0.55, 0.78])[sort])[alone]
    marital[alone, HEAD] = np.array([SINGLE, DIVORCED, WIDOWED], np.int8)[sort][alone]

    # Brothers and sisters sharing a home, typically students or young workers.
    siblings = kind == SIBLINGS
    eldest = rng.integers(18, 35, n)
    age[siblings, HEAD] = eldest[siblings]
    female[siblings, HEAD] = rng.random(n)[siblings] < 0.5
    n_siblings = 1 + (rng.random(n) < 0.3)
    for j, slot in enumerate(SIBLING_SLOTS):
        here = siblings & (n_siblings > j)
        age[here, slot] = np.clip(eldest + rng.integers(-6, 7, n), 15, 40)[here]
        female[:, slot] = rng.random(n) < 0.5

    # The head's children still at home (grown ones leave); in WITH_MARRIED_CHILD the first stays
    # with a spouse and children of their own.
    kids = _children(rng, woman, man, first, len(CHILDREN))
    kids = np.where(kids <= 18 + np.rint(rng.gamma(2.0, 3.0, kids.shape)), kids, -1)
    kids[extended, 0] = married_child[extended]
    kids[~np.isin(kind, (NUCLEAR, LONE_PARENT, WITH_PARENTS, WITH_MARRIED_CHILD))] = -1
    age[:, CHILDREN.start:CHILDREN.stop] = kids
    female[:, CHILDREN.start:CHILDREN.stop] = _female_at_birth(rng, _REFERENCE_YEAR - kids)

    daughter = rng.random(n) < 0.25  # the married child is usually a son, with his wife
    female[extended, CHILDREN.start] = daughter[extended]
    in_law_gap = np.clip(np.rint(rng.normal(3.5, 3.0, n)), -3, 15).astype(np.int64)
    in_law = np.where(daughter, np.maximum(married_child + in_law_gap, 20), np.maximum(married_child - in_law_gap, 18))
    age[extended, CHILD_SPOUSE] = in_law[extended]
    female[:, CHILD_SPOUSE] = ~daughter
    marital[extended, CHILDREN.start] = marital[extended, CHILD_SPOUSE] = MARRIED
    grand = _children(rng, np.where(daughter, married_child, in_law), np.where(daughter, in_law, married_child),
                      _first_birth_age(rng, n), len(GRANDCHILDREN))
    grand[~extended] = -1
    age[:, GRANDCHILDREN.start:GRANDCHILDREN.stop] = grand
    female[:, GRANDCHILDREN.start:GRANDCHILDREN.stop] = _female_at_birth(rng, _REFERENCE_YEAR - grand)

    # The head's parents (WITH_PARENTS): both, or a widowed mother or father.
    with_parents = kind == WITH_PARENTS
    head_age = age[:, HEAD]
    p_mother = head_age + np.minimum(19 + np.rint(rng.gamma(2.0, 3.5, n)), 44).astype(np.int64)
    p_father = np.maximum(p_mother + np.clip(np.rint(rng.normal(3.5, 3.5, n)), -3, 15).astype(np.int64),
                          head_age + 20)
    which = rng.choice(3, size=n, p=(0.5, 0.38, 0.12))  # both, mother only, father only
    mother_here = with_parents & (which != 2) & (p_mother <= demo.MAX_AGE)
    father_here = with_parents & (which != 1) & (p_father <= demo.MAX_AGE)
    age[mother_here, MOTHER] = p_mother[mother_here]
    age[father_here, FATHER] = p_father[father_here]
    female[:, MOTHER] = True
    marital[:, FATHER] = np.where(mother_here & father_here, MARRIED, WIDOWED)
    marital[:, MOTHER] = marital[:, FATHER]

    return _flatten(age, female, marital)


def _flatten(age: np.ndarray, female: np.ndarray, marital: np.ndarray) -> _Skeletons:
    """Turn slot arrays into a member list, with family links as positions within the household."""
    n = len(age)
    exists = age >= 0
    position = (np.cumsum(exists, axis=1) - 1).astype(np.int8)
    head_man = ~female[:, HEAD]
    child_man = ~female[:, CHILDREN.start]
    father = np.full((n, _SLOTS), -1, np.int8)
    mother = np.full((n, _SLOTS), -1, np.int8)
    spouse = np.full((n, _SLOTS), -1, np.int8)
    father[:, HEAD], mother[:, HEAD] = FATHER, MOTHER
    father[:, CHILDREN.start:CHILDREN.stop] = np.where(head_man, HEAD, SPOUSE)[:, None]
    mother[:, CHILDREN.start:CHILDREN.stop] = np.where(head_man, SPOUSE, HEAD)[:, None]
    father[:, GRANDCHILDREN.start:GRANDCHILDREN.stop] = np.where(child_man, CHILDREN.start, CHILD_SPOUSE)[:, None]
    mother[:, GRANDCHILDREN.start:GRANDCHILDREN.stop] = np.where(child_man, CHILD_SPOUSE, CHILDREN.start)[:, None]
    for a, b in ((HEAD, SPOUSE), (FATHER, MOTHER), (CHILDREN.start, CHILD_SPOUSE)):
        spouse[:, a], spouse[:, b] = b, a

    rows, slots = np.nonzero(exists)

    def local(link: np.ndarray) -> np.ndarray:
        target = link[rows, slots]
        safe = np.maximum(target, 0)
        return np.where((target >= 0) & exists[rows, safe], position[rows, safe], -1)

    size = exists.sum(axis=1)
    return _Skeletons(
        household=rows, slot=slots, age=age[rows, slots].astype(np.int64), female=female[rows, slots],
        marital=marital[rows, slots], father=local(father), mother=local(mother), spouse=local(spouse),
        start=np.cumsum(size) - size, size=size,
    )


def _balance(pool: _Skeletons) -> np.ndarray:
    """Household weights matching the age-sex pyramid and the household sizes (list balancing).

    Iterative proportional updating: each constraint in turn scales the weights of the households
    that contribute to it so that their weighted total hits the target.
    """
    pyramid = np.array(demo.AGE_PYRAMID, float)
    people = len(pool.age)
    target = pyramid[:, 1:].ravel() * people / pyramid[:, 1:].sum()  # by group * 2 + female
    category = np.minimum(pool.age // 5, len(pyramid) - 1) * 2 + pool.female
    sizes = np.array(demo.HOUSEHOLD_SIZES)
    size_class = np.minimum(pool.size, len(sizes)) - 1
    class_mean = np.bincount(size_class, weights=pool.size, minlength=len(sizes)) / np.maximum(
        np.bincount(size_class, minlength=len(sizes)), 1)
    household_target = sizes * people / (sizes * class_mean).sum()
    constraints = [(pool.household[category == k], goal) for k, goal in enumerate(target)]
    constraints += [(np.flatnonzero(size_class == k), goal) for k, goal in enumerate(household_target)]
    weight = np.ones(len(pool.size))
    for _ in range(_BALANCE_ROUNDS):
        for members, goal in constraints:
            if len(members):
                weight[members] *= goal / weight[members].sum()
    return weight


def _pick_households(rng: np.random.Generator, weight: np.ndarray, size: np.ndarray, count: int) -> np.ndarray:
    """Households drawn by weight until exactly ``count`` people (the last ones chosen to fit)."""
    p = weight / weight.sum()
    mean = float(p @ size)
    chosen = rng.choice(len(p), size=int(count / mean * 1.05) + 8, p=p)
    while size[chosen].sum() < count:
        chosen = np.concatenate([chosen, rng.choice(len(p), size=int(count / mean * 0.1) + 8, p=p)])
    cum = np.cumsum(size[chosen])
    keep = int(np.searchsorted(cum, count, side="right"))
    parts = [chosen[:keep]]
    gap = count - (int(cum[keep - 1]) if keep else 0)
    while gap:
        fits = np.flatnonzero(size <= gap)
        pick = rng.choice(fits, p=p[fits] / p[fits].sum())
        parts.append(np.array([pick]))
        gap -= int(size[pick])
    return np.concatenate(parts)


# ---------------------------------------------------------------------------------- homes, people


@dataclass(frozen=True)
class _Homes:
    """Where each household lives and where its family comes from."""

    province: np.ndarray  # 2025 province index
    commune: np.ndarray
    old: np.ndarray  # pre-2025 province the commune lies in
    migrant: np.ndarray  # the adults came from another province
    origin: np.ndarray  # the pre-2025 province migrants came from
    ethnic: np.ndarray
    religion: np.ndarray
    south: np.ndarray  # the family's roots are in the south (surname mix)


def _homes(rng: np.random.Generator, t: _Tables, n: int) -> _Homes:
    province = _draw(rng, t.province_cum, n=n)
    commune = t.communes_by_province.draw(rng, province)
    old = t.commune_old[commune]
    origin = _draw(rng, t.origin_cum, n=n)
    migrant = (rng.random(n) < t.in_migration[province]) & (t.old_successor[origin] != province)
    roots = np.where(migrant, origin, old)
    ethnic = _draw(rng, t.ethnic_cum, rows=roots)
    # Ethnic minorities move between provinces far less than the Kinh do.
    ethnic[migrant & (ethnic != _KINH) & (rng.random(n) < 0.7)] = _KINH
    religion = _draw(rng, t.religion_cum, rows=roots * len(demo.ETHNIC_GROUPS) + ethnic)
    return _Homes(province=province, commune=commune, old=old, migrant=migrant, origin=origin,
                  ethnic=ethnic, religion=religion, south=t.south[t.old_successor[roots]])


def _anniversaries(years_back: np.ndarray) -> np.ndarray:
    """The reference date's day and month, ``years_back`` years before it."""
    month = REFERENCE_DATE.astype("datetime64[M]")
    in_year = month - month.astype("datetime64[Y]").astype("datetime64[M]")
    year = (_REFERENCE_YEAR - years_back - 1970).astype("datetime64[Y]")
    return (year.astype("datetime64[M]") + in_year).astype("datetime64[D]") + (REFERENCE_DATE - month)


def _dates_of_birth(rng: np.random.Generator, age: np.ndarray) -> np.ndarray:
    """A calendar date (leap days included) for each age in whole years on the reference date."""
    first = _anniversaries(age + 1) + 1
    days = (_anniversaries(age) - first).astype(np.int64) + 1
    return first + (rng.random(len(age)) * days).astype(np.int64)


def _names(rng: np.random.Generator, t: _Tables, female: np.ndarray, year: np.ndarray, ethnic: np.ndarray,
           south: np.ndarray, lineage: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Surname, middle and given name indices; surnames pass down ``lineage`` (usually the father)."""
    n = len(female)
    surname = _draw(rng, t.surname_cum, rows=south.astype(np.int64))
    own_group = rng.random(n) < demo.MINORITY_SURNAME_SHARE
    for group, cum in t.minority_surname_cum.items():
        chosen = np.flatnonzero(own_group & (ethnic == group))
        surname[chosen] = _draw(rng, cum, n=len(chosen))
    surname = _inherit(surname, lineage)

    traditional = rng.random(n) < np.where(female, np.interp(year, *zip(*demo.THI_SHARE_BY_BIRTH_YEAR)),
                                           np.interp(year, *zip(*demo.VAN_SHARE_BY_BIRTH_YEAR)))
    other = _draw(rng, t.middle_cum, rows=female.astype(np.int64))
    middle = np.where(traditional, np.where(female, t.thi, t.van), other)

    modern = rng.random(n) < np.clip((year - demo.MODERN_NAMES_FROM + 20) / 20, 0.0, 1.0)
    table = np.where(female, 0, 2) + modern
    given = _draw(rng, t.given_cum, rows=table)
    for _ in range(4):  # no "Nguyễn Thị Thu Thu", no "Hà Văn Hà"
        clash = np.flatnonzero((t.middle_last_as_given[middle] == given) | (t.surname_as_given[surname] == given))
        given[clash] = _draw(rng, t.given_cum, rows=table[clash])
    return surname, middle, given


def _births(rng: np.random.Generator, t: _Tables, homes: _Homes, household: np.ndarray, age: np.ndarray,
            relation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pre-2025 province where each birth was registered, and the commune of birth.

    Migrant households' adults were mostly born where the family came from, their young children
    here; a few spouses elsewhere married in. Everyone else was born in the province they live
    in, mostly in the part of it where their commune lies.
    """
    n = len(age)
    adult = age >= 18
    u = rng.random(n)
    incomers = np.isin(relation, (R_HEAD, R_SPOUSE, R_PARENT, R_SIBLING, R_OTHER))
    from_origin = homes.migrant[household] & adult & (u < np.where(incomers, 0.85, 0.35))
    married_in = ~homes.migrant[household] & adult & np.isin(relation, (R_SPOUSE, R_OTHER)) & (u < 0.06)
    old = homes.old[household]
    nearby = np.flatnonzero(rng.random(n) >= 0.9)  # another part of the same 2025 province
    old[nearby] = _draw(rng, t.old_within_new, rows=homes.province[household[nearby]])
    old[married_in] = _draw(rng, t.origin_cum, n=int(married_in.sum()))
    old[from_origin] = homes.origin[household[from_origin]]
    commune = homes.commune[household]
    elsewhere = np.flatnonzero((old != homes.old[household]) | (rng.random(n) >= np.where(age < 18, 0.6, 0.35)))
    commune[elsewhere] = t.communes_by_old.draw(rng, old[elsewhere])
    return old, commune


def _pids(rng: np.random.Generator, t: _Tables, birth_old: np.ndarray, female: np.ndarray,
          year: np.ndarray, part: _Part) -> pa.Array:
    """``PPP G YY RRRRRR`` with a random serial from the part's slice, distinct across the population."""
    digit = np.array([[pid_mod.century_sex_digit(sex, century) for century in (1900, 2000)]
                      for sex in pid_mod.SEXES])
    g = digit[female.astype(np.int64), year // 100 - 19]
    base = ((t.old_code_numbers[birth_old] * 10 + g) * 100 + year % 100) * 1_000_000
    offset, width = part.slice(1_000_000)
    return _digits(_unique_keys(rng, base + offset, width), 12)


def _blood_types(rng: np.random.Generator, father: np.ndarray, mother: np.ndarray) -> pa.Array:
    """ABO and Rh phenotypes from alleles inherited from the parents in the table."""
    n = len(father)
    own_abo = _draw(rng, _cumulative([f for _, f in demo.ABO_ALLELES]), n=2 * n).reshape(n, 2)  # O, A, B
    own_rh = rng.random((n, 2)) < demo.RH_NEGATIVE_ALLELE
    passed = rng.integers(0, 2, (n, 2))  # which of each parent's two alleles the child got
    abo, rh = own_abo.copy(), own_rh.copy()
    for _ in range(3):  # enough for the generations one household holds
        for side, parent in enumerate((father, mother)):
            has, safe = parent >= 0, np.maximum(parent, 0)
            abo[:, side] = np.where(has, abo[safe, passed[:, side]], own_abo[:, side])
            rh[:, side] = np.where(has, rh[safe, passed[:, side]], own_rh[:, side])
    has_a, has_b = (abo == 1).any(axis=1), (abo == 2).any(axis=1)
    phenotype = has_a * 1 + has_b * 2 + rh.all(axis=1) * 4  # index into BLOOD_TYPES
    return _take(BLOOD_TYPES, phenotype, rng.random(n) >= demo.BLOOD_TYPE_UNKNOWN)


def _old_ids(rng: np.random.Generator, t: _Tables, age: np.ndarray, birth_old: np.ndarray, part: _Part) -> pa.Array:
    """9-digit CMND numbers, issued until 2016-2021 to people then 14 or older, often not recorded."""
    n = len(age)
    held = rng.random(n) < np.select([age >= 24, age >= 20], [0.6, 0.2], 0.0)
    chosen = np.flatnonzero(held)
    values = np.zeros(n, np.int64)
    space = t.cmnd_space[birth_old[chosen]]
    width = space // part.parts
    values[chosen] = _unique_keys(rng, t.cmnd_prefix[birth_old[chosen]] + part.index * width,
                                  width)
    return _digits(values, 9, held)


def _phones(rng: np.random.Generator, t: _Tables, age: np.ndarray, part: _Part) -> pa.Array:
    n = len(age)
    held = rng.random(n) < np.select([age < 15, age < 18, age < 60, age < 75], [0.0, 0.75, 0.96, 0.85], 0.55)
    chosen = np.flatnonzero(held)
    prefix = t.phone_prefix[_draw(rng, t.phone_cum, n=len(chosen))]
    values = np.zeros(n, np.int64)
    offset, width = part.slice(10_000_000)
    values[chosen] = _unique_keys(rng, prefix * 10_000_000 + offset, width)
    return _digits(values, 10, held)


def _emails(rng: np.random.Generator, t: _Tables, age: np.ndarray, year: np.ndarray, surname: np.ndarray,
            middle: np.ndarray, given: np.ndarray, part: _Part) -> pa.Array:
    """Addresses made the usual ways from the folded name and birth year, distinct across the table."""
    n = len(age)
    held = rng.random(n) < np.select([age < 18, age < 30, age < 45, age < 60], [0.0, 0.70, 0.55, 0.30], 0.08)
    chosen = np.flatnonzero(held)
    folded_surnames = [names.fold(x) for x in t.surnames]
    folded_middles = [names.fold(x).split() for x in t.middle_names]
    s = _take(folded_surnames, surname[chosen])
    s1 = _take([x[0] for x in folded_surnames], surname[chosen])
    m = _take(["".join(x) for x in folded_middles], middle[chosen])
    m1 = _take(["".join(w[0] for w in x) for x in folded_middles], middle[chosen])
    g = _take([names.fold(x) for x in t.given_names], given[chosen])
    yy = _digits(year[chosen] % 100, 2)
    yyyy = _digits(year[chosen], 4)
    number = pa.array(rng.integers(1, 1000, len(chosen))).cast(pa.string())

    def join(*parts) -> pa.Array:
        return pc.binary_join_element_wise(*parts, "")

    pattern = pa.array(rng.integers(0, 4, len(chosen)), pa.int8())
    local = pc.choose(pattern, join(g, s, yy), join(g, ".", s, number), join(s, m, g, yy), join(g, s1, m1, yyyy))
    domains = _take([d for d, _ in demo.EMAIL_DOMAINS],
                    _draw(rng, _cumulative([w for _, w in demo.EMAIL_DOMAINS]), n=len(chosen)))
    def clashes() -> np.ndarray:  # within the part, then with the parts before it
        within = _repeats(pc.dictionary_encode(local).indices.to_numpy())
        if len(within) or part.emails is None:
            return within
        return np.flatnonzero(part.emails.holds(join(local, "@", domains)))

    while len(repeated := clashes()):
        more = _digits(rng.integers(0, 100, len(repeated)), 2)  # namesakes of the same year
        mask = np.zeros(len(local), bool)
        mask[repeated] = True
        local = pc.replace_with_mask(local, pa.array(mask), join(local.take(pa.array(repeated)), more))
    full = join(local, "@", domains)
    if part.emails is not None:
        part.emails.add(full)
    position = np.cumsum(held) - 1
    return full.take(pa.array(position, mask=~held))


def _addresses(rng: np.random.Generator, t: _Tables, homes: _Homes) -> pa.Array:
    """House number and street (towns) or village or hamlet (countryside), commune, province."""
    n = len(homes.province)
    ward = t.commune_is_ward[homes.commune]
    southern = t.hamlets[homes.province]
    mountain = t.mountain[homes.province]
    def number(high: int):
        values = rng.integers(1, high, n)
        return lambda rows: _digits(values[rows], 1)

    def word(vocabulary):
        values = rng.integers(0, len(vocabulary), n)
        return lambda rows: _take(vocabulary, values[rows])

    def join(*parts) -> pa.Array:
        return pc.binary_join_element_wise(*parts, "")

    house, lane, unit = number(300), number(150), number(20)
    street, village = word(demo.STREETS), word(demo.VILLAGE_NAMES)
    hamlet, hill_village = word(demo.HAMLET_NAMES), word(demo.MOUNTAIN_VILLAGE_NAMES)
    forms = (  # each builds the lines of the households (rows) that use it
        lambda r: join("Số ", house(r), " ", street(r)),  # towns, north and centre
        lambda r: join("Số ", house(r), " ngõ ", lane(r), " ", street(r)),
        lambda r: join("Số ", house(r), ", Tổ dân phố ", unit(r)),
        lambda r: join(house(r), " ", street(r)),  # towns, south: 123/45 is house 45 in alley 123
        lambda r: join(lane(r), "/", house(r), " ", street(r)),
        lambda r: join("Số ", house(r), ", Thôn ", unit(r)),  # countryside, north and centre
        lambda r: join("Số ", house(r), ", Thôn ", village(r)),
        lambda r: join("Số ", house(r), ", Xóm ", unit(r)),
        lambda r: join("Số ", house(r), ", Bản ", hill_village(r)),  # northern mountains
        lambda r: join("Số ", house(r), ", Ấp ", unit(r)),  # countryside, south
        lambda r: join("Số ", house(r), ", Ấp ", hamlet(r)),
    )
    pick3, pick2 = rng.integers(0, 3, n), rng.integers(0, 2, n)
    form = np.select(
        [ward & ~southern, ward & southern, mountain & ~ward & (pick2 == 0), ~ward & southern],
        [pick3, 3 + pick2, np.full(n, 8), 9 + pick2],
        5 + pick3,
    )
    order = np.argsort(form, kind="stable")
    bounds = np.searchsorted(form[order], np.arange(len(forms) + 1))
    lines = pa.concat_arrays([build(order[a:b]) for build, a, b in zip(forms, bounds[:-1], bounds[1:])])
    lines = lines.take(pa.array(np.argsort(order)))
    return join(lines, ", ", t.commune_labels.take(pa.array(homes.commune)))


# ----------------------------------------------------------------------------------------- public


def _check(count, seed) -> None:
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise ValueError(f"count must be a whole number of at least 1, not {count!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a whole number of at least 0, not {seed!r}")


def generate(count: int, seed: int) -> pa.Table:
    """``count`` people living in households; the same ``count`` and ``seed`` give the same table.

    The whole table is built at once (about 0.9 GB a million people): for large populations use
    ``generate_chunks`` or ``write_chunks``.
    """
    _check(count, seed)
    count = int(count)
    return _generate(np.random.default_rng(seed), count, _Part(0, 1), int(np.clip(count // 4, *_POOL)))


# A national population is made in parts of about this many people, each part a whole number of
# households with its own random stream, its own household skeletons, and its own slice of every
# serial number space (PIDs, household numbers, CMND, phones): parts cannot collide, and the peak
# memory is that of one part whatever the count.
CHUNK_ROWS = 500_000
# Each part draws its households from a pool of about one skeleton per person (some 3.6 per
# household), so that a template is rarely used twice (see ``template_reuse``).
_PART_POOL_PER_PERSON = 1.0


class _SeenEmails:
    """64-bit digests of the e-mail addresses of the parts already made (8 bytes an address)."""

    def __init__(self):
        self.digests = np.zeros(0, np.uint64)

    @staticmethod
    def _digest(emails: pa.Array) -> np.ndarray:
        return np.array([int.from_bytes(hashlib.blake2b(e.encode(), digest_size=8).digest(), "little")
                         for e in emails.to_pylist()], np.uint64)

    def holds(self, emails: pa.Array) -> np.ndarray:
        if len(self.digests) == 0:
            return np.zeros(len(emails), bool)
        d = self._digest(emails)
        at = np.minimum(np.searchsorted(self.digests, d), len(self.digests) - 1)
        return self.digests[at] == d

    def add(self, emails: pa.Array) -> None:
        self.digests = np.union1d(self.digests, self._digest(emails))


@dataclass
class _Part:
    """Which part of how many: sets the slice of each serial space the part draws from."""

    index: int
    parts: int
    emails: _SeenEmails | None = None  # addresses of the earlier parts (None: a single part)
    reuse: list = field(default_factory=list)  # (households, households sharing their skeleton)

    def slice(self, space: int) -> tuple[int, int]:
        width = space // self.parts
        return self.index * width, width


def part_sizes(count: int, chunk_rows: int = CHUNK_ROWS) -> list[int]:
    """People in each part: ``count`` split evenly into parts of at most ``chunk_rows``."""
    parts = -(-count // chunk_rows)
    bounds = [count * k // parts for k in range(parts + 1)]
    return [b - a for a, b in zip(bounds[:-1], bounds[1:])]


def generate_chunks(count: int, seed: int, chunk_rows: int = CHUNK_ROWS,
                    reuse: list | None = None) -> Iterator[pa.Table]:
    """The population of ``count`` people, part by part (tables of at most ``chunk_rows`` rows).

    A part holds whole households (relatives point at rows of the same part), and its PIDs,
    household numbers, CMND and phone numbers come from its own slice of each number space, so
    no two parts can hold the same one; e-mail addresses are checked against the earlier parts'.
    One part: exactly ``generate(count, seed)``. The same ``count``, ``seed`` and ``chunk_rows``
    give the same tables. ``reuse``, when given, receives for each part (households, households
    whose skeleton another household of the part also got).
    """
    _check(count, seed)
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 10_000:
        raise ValueError(f"chunk_rows must be a whole number of at least 10,000, not {chunk_rows!r}")
    sizes = part_sizes(int(count), int(chunk_rows))
    if len(sizes) == 1:
        yield generate(count, seed)
        return
    if len(sizes) > 1000:
        raise ValueError(f"{count:,} people in parts of {chunk_rows:,} make more than 1,000 parts: raise chunk_rows")
    seen = _SeenEmails()
    for k, n in enumerate(sizes):
        part = _Part(k, len(sizes), seen)
        yield _generate(np.random.default_rng([seed, k]), n, part, int(n * _PART_POOL_PER_PERSON))
        if reuse is not None:
            reuse.extend(part.reuse)


def write_chunks(count: int, seed: int, path: str | Path, chunk_rows: int = CHUNK_ROWS,
                 reuse: list | None = None) -> int:
    """Write the population part by part to Parquet or CSV; returns the rows written.

    Peak memory is one part's, whatever ``count``. Written to ``path`` + ".partial" and renamed
    when complete, so an interrupted run never leaves a file that looks finished.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise ValueError(f"cannot write {path}: unsupported extension {path.suffix!r}: use .parquet or .csv")
    partial = path.with_name(path.name + ".partial")
    schema = pa.schema([(name, pa.string()) for name in COLUMNS])
    rows = 0
    writer = (pq.ParquetWriter(partial, schema) if suffix == ".parquet"
              else pacsv.CSVWriter(partial, schema))
    try:
        for table in generate_chunks(count, seed, chunk_rows, reuse):
            writer.write_table(table.cast(schema))
            rows += table.num_rows
    finally:
        writer.close()
    partial.replace(path)
    return rows


def _vary_copies(rng: np.random.Generator, chosen: np.ndarray, household: np.ndarray, age: np.ndarray,
                 female: np.ndarray, relation: np.ndarray, marital: np.ndarray, part: _Part
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Make the second and later households drawn from the same skeleton differ from the first.

    The balancing weights some skeletons heavily, so a part of ~150,000 households drawn from
    ~500,000 skeletons still gives about a third of them a twin. Each copy after the first is
    moved 1 or 2 years older or younger as a whole (gaps between members, so the family's
    coherence, are kept; the move never makes a married member younger than 18 or anyone
    younger than 0 or older than the oldest age) and its unmarried children and grandchildren
    get their sexes drawn anew (same odds as at birth). ``part.reuse`` receives (households,
    households whose skeleton another household of the part got).
    """
    order = np.argsort(chosen, kind="stable")
    ordered = chosen[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    rank = np.empty(len(chosen), np.int64)
    rank[order] = np.arange(len(chosen)) - np.repeat(starts, np.diff(np.r_[starts, len(chosen)]))
    uses = np.bincount(chosen)
    part.reuse.append((len(chosen), int((uses[chosen] > 1).sum())))

    copy = rank > 0
    shift = rng.choice(np.array([-2, -1, 1, 2]), len(chosen)) * copy
    n_households = len(chosen)
    youngest = np.full(n_households, 1 << 30)
    np.minimum.at(youngest, household, age)
    youngest_married = np.full(n_households, 1 << 30)
    married = marital == MARRIED
    np.minimum.at(youngest_married, household[married], age[married])
    oldest = np.zeros(n_households, np.int64)
    np.maximum.at(oldest, household, age)

    def fits(s):
        return (youngest + s >= 0) & (youngest_married + s >= 18) & (oldest + s <= demo.MAX_AGE)

    shift = np.where(fits(shift), shift, np.where(fits(-shift), -shift, 0))
    age = age + shift[household]
    redraw = copy[household] & np.isin(relation, (R_CHILD, R_GRANDCHILD)) & ~married
    female = female.copy()
    female[redraw] = _female_at_birth(rng, _REFERENCE_YEAR - age[redraw])
    return age, female


def _generate(rng: np.random.Generator, count: int, part: _Part, pool_size: int) -> pa.Table:
    """``count`` people in households, drawn from ``rng``, numbered within ``part``'s slices."""
    t = _tables()

    pool = _skeletons(rng, max(pool_size, _POOL[0]))
    chosen = _pick_households(rng, _balance(pool), pool.size, count)
    sizes = pool.size[chosen]
    first_row = np.cumsum(sizes) - sizes
    household = np.repeat(np.arange(len(chosen)), sizes)
    member = np.repeat(pool.start[chosen] - first_row, sizes) + np.arange(count)

    def to_rows(links: np.ndarray) -> np.ndarray:
        local = links[member]
        return np.where(local >= 0, first_row[household] + local, -1)

    father, mother, spouse = to_rows(pool.father), to_rows(pool.mother), to_rows(pool.spouse)
    age, female = pool.age[member], pool.female[member]
    relation, marital = _SLOT_RELATION[pool.slot[member]], pool.marital[member]
    if part.parts > 1:
        age, female = _vary_copies(rng, chosen, household, age, female, relation, marital, part)
    dob = _dates_of_birth(rng, age)
    year = dob.astype("datetime64[Y]").astype(np.int64) + 1970

    homes = _homes(rng, t, len(chosen))
    # Spouses who married in may be of another group; children take their father's.
    ethnic = homes.ethnic[household]
    married_in = np.flatnonzero(np.isin(relation, (R_SPOUSE, R_OTHER)) & (rng.random(count) < 0.3))
    ethnic[married_in] = _draw(rng, t.ethnic_cum, rows=homes.old[household[married_in]])
    ethnic = _inherit(ethnic, father)
    # The surname comes from the father, now and then from the mother; the hometown likewise.
    u = rng.random(count)
    from_mother = (mother >= 0) & (((father >= 0) & (u < 0.03)) | ((father < 0) & (u < 0.15)))
    lineage = np.where(from_mother, mother, father)
    surname, middle, given = _names(rng, t, female, year, ethnic, homes.south[household], lineage)
    birth_old, birth_commune = _births(rng, t, homes, household, age, relation)
    # Hometown (quê quán) passes down from the father, or the mother; the others' is mostly where
    # they were born.
    roots = birth_old.copy()
    elsewhere = np.flatnonzero(rng.random(count) >= 0.8)
    roots[elsewhere] = _draw(rng, t.origin_cum, n=len(elsewhere))
    hometown = _inherit(t.communes_by_old.draw(rng, roots), np.where(father >= 0, father, mother))

    pid = _pids(rng, t, birth_old, female, year, part)
    offset, width = part.slice(100_000_000)
    household_number = _digits(_unique_keys(rng, t.province_numbers[homes.province] * 100_000_000 + offset, width),
                               10)
    members = pa.array(household)

    def kin(rows: np.ndarray) -> pa.Array:
        return pid.take(pa.array(rows, pa.int64(), mask=rows < 0))

    surnames, middles, givens = (_take(v, i) for v, i in ((t.surnames, surname), (t.middle_names, middle),
                                                           (t.given_names, given)))
    columns = {
        "pid": pid,
        "full_name": pc.binary_join_element_wise(surnames, middles, givens, " "),
        "surname": surnames,
        "middle_name": middles,
        "given_name": givens,
        "date_of_birth": pa.array(dob).cast(pa.string()),
        "sex": _take(pid_mod.SEXES, female.astype(np.int64)),
        "place_of_birth": t.commune_labels.take(pa.array(birth_commune)),
        "birth_registration_code": _take(t.old_codes, birth_old),
        "hometown": t.commune_labels.take(pa.array(hometown)),
        "ethnicity": _take(demo.ETHNIC_GROUPS, ethnic),
        "religion": _take(demo.RELIGIONS, homes.religion[household]),
        "nationality": _take(("VNM",), np.zeros(count, np.int64)),
        "blood_type": _blood_types(rng, father, mother),
        "old_id_number": _old_ids(rng, t, age, birth_old, part),
        "father_pid": kin(father),
        "mother_pid": kin(mother),
        "spouse_pid": kin(spouse),
        "household_number": household_number.take(members),
        "relation_to_head": _take(RELATIONS, relation),
        "province_code": _take(t.province_codes, homes.province).take(members),
        "commune_code": t.commune_codes.take(pa.array(homes.commune)).take(members),
        "address": _addresses(rng, t, homes).take(members),
        "marital_status": _take(MARITAL_STATUSES, marital),
        "status": _take(("alive",), np.zeros(count, np.int64)),
        "phone": _phones(rng, t, age, part),
        "email": _emails(rng, t, age, year, surname, middle, given, part),
    }
    return pa.table([columns[name] for name in COLUMNS], names=list(COLUMNS))


def write(table: pa.Table, path: str | Path) -> None:
    """Write the table as Parquet or CSV, chosen by the file's extension."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        pq.write_table(table, path)
    elif suffix == ".csv":
        pacsv.write_csv(table, path)
    else:
        raise ValueError(f"cannot write {path}: unsupported extension {path.suffix!r}: use .parquet or .csv")
