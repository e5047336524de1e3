"""Unit and property tests for ``dinhdanh.places`` (administrative units, old and new)."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dinhdanh import places
from dinhdanh.ids.names import fold
from dinhdanh.places import (
    COMMUNES,
    OLD_PROVINCES,
    PROVINCES,
    SUCCESSION,
    Commune,
    OldProvince,
    Province,
    UnknownPlace,
)
from dinhdanh.places import legacy

# domain.md section 3, copied independently: new code -> (short name, old codes as listed).
DOMAIN_SUCCESSION = {
    "01": ("Hà Nội", ("001",)),
    "04": ("Cao Bằng", ("004",)),
    "08": ("Tuyên Quang", ("008", "002")),
    "11": ("Điện Biên", ("011",)),
    "12": ("Lai Châu", ("012",)),
    "14": ("Sơn La", ("014",)),
    "15": ("Lào Cai", ("010", "015")),
    "19": ("Thái Nguyên", ("019", "006")),
    "20": ("Lạng Sơn", ("020",)),
    "22": ("Quảng Ninh", ("022",)),
    "24": ("Bắc Ninh", ("027", "024")),
    "25": ("Phú Thọ", ("025", "026", "017")),
    "31": ("Hải Phòng", ("031", "030")),
    "33": ("Hưng Yên", ("033", "034")),
    "37": ("Ninh Bình", ("037", "035", "036")),
    "38": ("Thanh Hóa", ("038",)),
    "40": ("Nghệ An", ("040",)),
    "42": ("Hà Tĩnh", ("042",)),
    "44": ("Quảng Trị", ("045", "044")),
    "46": ("Huế", ("046",)),
    "48": ("Đà Nẵng", ("048", "049")),
    "51": ("Quảng Ngãi", ("051", "062")),
    "52": ("Gia Lai", ("064", "052")),
    "56": ("Khánh Hòa", ("056", "058")),
    "66": ("Đắk Lắk", ("066", "054")),
    "68": ("Lâm Đồng", ("068", "067", "060")),
    "75": ("Đồng Nai", ("075", "070")),
    "79": ("Hồ Chí Minh", ("079", "074", "077")),
    "80": ("Tây Ninh", ("072", "080")),
    "82": ("Đồng Tháp", ("087", "082")),
    "86": ("Vĩnh Long", ("086", "083", "084")),
    "91": ("An Giang", ("089", "091")),
    "92": ("Cần Thơ", ("092", "093", "094")),
    "96": ("Cà Mau", ("096", "095")),
}
CITIES = {"01", "31", "46", "48", "79", "92"}  # thành phố trực thuộc trung ương
# New provinces whose headquarters (and code) come from an old province other than the one whose
# name they keep: the first listed old code is not the HQ.
HQ_NOT_FIRST = {"15": "015", "24": "024", "44": "044", "52": "052", "80": "080", "82": "082",
                "91": "091"}


# --- sizes -----------------------------------------------------------------------------------------


def test_counts():
    assert len(PROVINCES) == 34
    assert len(COMMUNES) == 3321
    assert len(OLD_PROVINCES) == 63
    assert len(SUCCESSION) == 34
    assert len(legacy.OLD_PROVINCES) == 63
    assert len(legacy.SUCCESSOR) == 63


def test_commune_kinds():
    kinds = {c.kind for c in COMMUNES.values()}
    assert kinds == {"xã", "phường", "đặc khu"}
    for c in COMMUNES.values():
        prefix = {"xã": "Xã ", "phường": "Phường ", "đặc khu": "Đặc khu "}[c.kind]
        assert c.name.startswith(prefix), c


def test_codes_are_well_formed():
    for code, p in PROVINCES.items():
        assert code == p.code and len(code) == 2 and code.isdigit()
    for code, c in COMMUNES.items():
        assert code == c.code and len(code) == 5 and code.isdigit()
    for code, o in OLD_PROVINCES.items():
        assert code == o.code and len(code) == 3 and code.isdigit()


def test_tables_are_in_code_order():
    assert list(PROVINCES) == sorted(PROVINCES)
    assert list(COMMUNES) == sorted(COMMUNES)


# --- succession ------------------------------------------------------------------------------------


def test_succession_matches_domain_table():
    assert set(SUCCESSION) == set(DOMAIN_SUCCESSION)
    for new, (_, olds) in DOMAIN_SUCCESSION.items():
        assert SUCCESSION[new] == olds, new
        assert PROVINCES[new].predecessors == olds, new


def test_every_old_code_in_succession_exactly_once():
    listed = [old for olds in SUCCESSION.values() for old in olds]
    assert len(listed) == len(set(listed)) == 63
    assert set(listed) == set(OLD_PROVINCES)


def test_successor_consistent_with_succession():
    assert set(legacy.SUCCESSOR) == set(OLD_PROVINCES)
    for old, new in legacy.SUCCESSOR.items():
        assert old in SUCCESSION[new]
        assert OLD_PROVINCES[old].successor == new
        assert places.successor_of(old).code == new
    for new, olds in SUCCESSION.items():
        for old in olds:
            assert legacy.SUCCESSOR[old] == new


def test_new_code_is_the_code_of_one_predecessor():
    """domain.md s.3: the new province keeps the code of the old province hosting its HQ."""
    for new, p in PROVINCES.items():
        same = [old for old in p.predecessors if int(old) == int(new)]
        assert len(same) == 1, (new, p.predecessors)


def test_headquarters_is_not_always_the_first_predecessor():
    # The table lists first the old province whose name the new one keeps; for these seven the
    # headquarters (and so the code) is in the other one.
    for new, p in PROVINCES.items():
        hq = next(old for old in p.predecessors if int(old) == int(new))
        if new in HQ_NOT_FIRST:
            assert hq == HQ_NOT_FIRST[new] != p.predecessors[0]
        else:
            assert hq == p.predecessors[0], new


def test_first_predecessor_gives_the_name():
    for new, p in PROVINCES.items():
        first = OLD_PROVINCES[p.predecessors[0]].name
        if new == "46":
            assert (first, p.short_name) == ("Thừa Thiên Huế", "Huế")
        else:
            assert first == p.short_name, new


def test_province_names_and_kinds():
    for new, (short, _) in DOMAIN_SUCCESSION.items():
        p = PROVINCES[new]
        assert p.short_name == short
        if new in CITIES:
            assert p.kind == "thành phố trung ương"
            assert p.name == f"Thành phố {short}"
        else:
            assert p.kind == "tỉnh"
            assert p.name == short


def test_old_province_names_match_pid_table():
    from dinhdanh.ids import pid

    assert {c: o.name for c, o in OLD_PROVINCES.items()} == pid.OLD_PROVINCES


def test_every_commune_province_exists():
    for c in COMMUNES.values():
        assert c.province_code in PROVINCES, c


def test_every_province_has_communes():
    for code in PROVINCES:
        assert len(places.communes_of(code)) > 0


def test_communes_of_sums_to_total():
    total = sum(len(places.communes_of(code)) for code in PROVINCES)
    assert total == 3321
    seen = [c.code for code in PROVINCES for c in places.communes_of(code)]
    assert sorted(seen) == sorted(COMMUNES)


def test_communes_of_is_in_code_order_and_in_province():
    for code in PROVINCES:
        communes = places.communes_of(code)
        assert [c.code for c in communes] == sorted(c.code for c in communes)
        assert all(c.province_code == code for c in communes)


def test_communes_of_accepts_code_forms():
    assert places.communes_of(1) == places.communes_of("01") == places.communes_of("1")
    with pytest.raises(UnknownPlace):
        places.communes_of("02")


# --- lookup by code --------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["1", 1, "01", " 01 "])
def test_province_by_code_forms(code):
    assert places.province(code).code == "01"
    assert places.province(code).short_name == "Hà Nội"


def test_province_by_every_code():
    for code, p in PROVINCES.items():
        assert places.province(code) is p
        assert places.province(int(code)) is p


@pytest.mark.parametrize("code", ["02", 2, "00", "99", 100, "abc", "", "-1", -1, "٠١", "０１", "1.0", "079"])
def test_province_unknown_code(code):
    with pytest.raises(UnknownPlace):
        places.province(code)


def test_unknown_place_is_lookup_error():
    assert issubclass(UnknownPlace, LookupError)


@pytest.mark.parametrize("code", ["70", 70, "070", "00070"])
def test_commune_by_code_forms(code):
    c = places.commune(code)
    assert (c.code, c.name, c.province_code, c.kind) == ("00070", "Phường Hoàn Kiếm", "01", "phường")


def test_commune_by_every_code():
    for code, c in COMMUNES.items():
        assert places.commune(code) is c
        assert places.commune(int(code)) is c


@pytest.mark.parametrize("code", ["00000", "99999", 0, "x", "", "000070"])
def test_commune_unknown_code(code):
    with pytest.raises(UnknownPlace):
        places.commune(code)


@pytest.mark.parametrize("code", ["1", 1, "01", "001"])
def test_old_province_by_code_forms(code):
    o = places.old_province(code)
    assert (o.code, o.name, o.successor) == ("001", "Hà Nội", "01")


@pytest.mark.parametrize("code", ["003", 3, "999", "0001", "", "abc"])
def test_old_province_unknown_code(code):
    with pytest.raises(UnknownPlace):
        places.old_province(code)


@pytest.mark.parametrize(
    "old,new",
    [("077", "79"), ("074", "79"), ("002", "08"), ("049", "48"), ("015", "15"), ("010", "15"),
     ("044", "44"), ("095", "96"), (35, "37")],
)
def test_successor_of(old, new):
    assert places.successor_of(old).code == new


# --- find_province ---------------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(DOMAIN_SUCCESSION))
def test_find_province_every_name_and_form(code):
    p = PROVINCES[code]
    short = p.short_name
    forms = [
        p.name, short, short.upper(), short.lower(), fold(short), fold(short).upper(),
        unicodedata.normalize("NFD", p.name), f"  {short}  ", short.replace(" ", "  "),
        f"Tỉnh {short}", f"tinh {fold(short)}", f"Thành phố {short}", f"thanh pho {fold(short)}",
        f"TP {short}", f"TP. {short}", f"Tp.{short}", f"tp {fold(short)}",
    ]
    for form in forms:
        assert places.find_province(form) is p, form


@pytest.mark.parametrize(
    "name,code",
    [
        ("Bình Dương", "79"), ("Tỉnh Bình Dương", "79"), ("binh duong", "79"),
        ("Bà Rịa - Vũng Tàu", "79"), ("Bà Rịa Vũng Tàu", "79"), ("ba ria-vung tau", "79"),
        ("Quảng Nam", "48"), ("quang nam", "48"),
        ("Hà Giang", "08"), ("HA GIANG", "08"),
        ("Yên Bái", "15"), ("Bắc Giang", "24"), ("Quảng Bình", "44"), ("Bình Định", "52"),
        ("Long An", "80"), ("Tiền Giang", "82"), ("Kiên Giang", "91"), ("Hà Nam", "37"),
        ("Nam Định", "37"), ("Hòa Bình", "25"), ("Hoà Bình", "25"), ("Đắk Nông", "68"),
        ("Dak Nong", "68"), ("Bạc Liêu", "96"), ("Sóc Trăng", "92"), ("Hậu Giang", "92"),
        ("Thừa Thiên Huế", "46"), ("Tỉnh Thừa Thiên Huế", "46"), ("Thành phố Huế", "46"),
        ("Huế", "46"),
        ("Hồ Chí Minh", "79"), ("TP HCM", "79"), ("TP.HCM", "79"), ("TPHCM", None), ("HCM", "79"),
        ("Sài Gòn", "79"), ("Thành phố Hồ Chí Minh", "79"),
    ],
)
def test_find_province_names(name, code):
    if code is None:
        with pytest.raises(UnknownPlace):
            places.find_province(name)
    else:
        assert places.find_province(name).code == code


@pytest.mark.parametrize("code", sorted(OLD_PROVINCES))
def test_find_province_every_old_name(code):
    o = OLD_PROVINCES[code]
    assert places.find_province(o.name).code == o.successor
    assert places.find_province(fold(o.name)).code == o.successor
    assert places.find_province(f"Tỉnh {o.name}").code == o.successor


@pytest.mark.parametrize(
    "name", ["", "   ", "Atlantis", "Hà", "Nội", "Vung Tau", "Phường Hoàn Kiếm", "Hà Nội Hà Nội", "Tỉnh"]
)
def test_find_province_unknown(name):
    with pytest.raises(UnknownPlace):
        places.find_province(name)


@settings(max_examples=200)
@given(st.text(max_size=30))
def test_find_province_fuzz(text):
    try:
        p = places.find_province(text)
    except UnknownPlace:
        pass
    else:
        assert isinstance(p, Province) and p.code in PROVINCES


def test_name_key():
    assert places.name_key("Thành phố Hồ Chí Minh") == "thanh pho ho chi minh"
    assert places.name_key("Đà Nẵng, Việt Nam") == "da nang viet nam"


# --- find_communes ---------------------------------------------------------------------------------


def test_find_communes_examples():
    assert [c.code for c in places.find_communes("hoan kiem")] == ["00070"]
    assert [c.code for c in places.find_communes("Phường Hoàn Kiếm")] == ["00070"]
    assert [c.code for c in places.find_communes("HOÀN KIẾM")] == ["00070"]
    assert [c.code for c in places.find_communes("Hoàn Kiếm", 1)] == ["00070"]
    assert places.find_communes("Hoàn Kiếm", "79") == ()
    assert places.find_communes("Atlantis") == ()
    assert places.find_communes("") == ()


def test_find_communes_special_zone():
    found = places.find_communes("Phú Quốc")
    assert [c.kind for c in found] == ["đặc khu"]
    assert places.find_communes("Đặc khu Phú Quốc") == found
    assert places.find_communes("dac khu phu quoc") == found


def test_find_communes_repeated_names_and_province_filter():
    found = places.find_communes("Tân Hòa")
    assert len(found) > 1
    assert len({c.province_code for c in found}) > 1
    assert [c.code for c in found] == sorted(c.code for c in found)
    for pcode in {c.province_code for c in found}:
        subset = places.find_communes("Tân Hòa", pcode)
        assert subset == tuple(c for c in found if c.province_code == pcode)
        assert places.find_communes("tan hoa", int(pcode)) == subset
    only_xa = places.find_communes("Xã Tân Hòa")
    assert only_xa and all(c.kind == "xã" for c in only_xa)
    assert set(only_xa) <= set(found)


def test_find_communes_unknown_province():
    with pytest.raises(UnknownPlace):
        places.find_communes("Hoàn Kiếm", "02")


@pytest.mark.parametrize(
    "typed,code",
    [
        # names whose first word folds like a type prefix ("phuong", "tinh", "xa")
        ("Phương Liệt", "00352"), ("phuong liet", "00352"), ("Phường Phương Liệt", "00352"),
        ("Tĩnh Túc", "01729"), ("Xã Tĩnh Túc", "01729"),
        ("Xa Dung", "03208"), ("Xã Xa Dung", "03208"),
        ("Xà Phiên", "31495"), ("Tịnh Khê", "21211"), ("Phượng Dực", "10279"),
        ("Tĩnh Gia", "16561"), ("Tịnh Biên", "30520"), ("Phương Bình", "31426"),
    ],
)
def test_find_communes_names_starting_like_a_prefix(typed, code):
    assert code in [c.code for c in places.find_communes(typed)]


def test_every_commune_found_by_its_name_with_and_without_type():
    for c in COMMUNES.values():
        bare = c.name.split(" ", 2)[2] if c.kind == "đặc khu" else c.name.split(" ", 1)[1]
        assert c in places.find_communes(c.name), c
        assert c in places.find_communes(bare), c
        assert c in places.find_communes(fold(bare)), c
        assert c in places.find_communes(bare, c.province_code), c


@settings(max_examples=200)
@given(st.sampled_from(sorted(COMMUNES)), st.booleans())
def test_find_communes_results_share_the_folded_name(code, upper):
    c = COMMUNES[code]
    bare = c.name.split(" ", 2)[2] if c.kind == "đặc khu" else c.name.split(" ", 1)[1]
    typed = bare.upper() if upper else bare
    for found in places.find_communes(typed):
        found_bare = (found.name.split(" ", 2)[2] if found.kind == "đặc khu"
                      else found.name.split(" ", 1)[1])
        assert fold(found_bare) == fold(bare)


# --- data classes ----------------------------------------------------------------------------------


def test_dataclasses_are_frozen():
    p = places.province("79")
    with pytest.raises(AttributeError):
        p.code = "80"  # type: ignore[misc]
    assert isinstance(p, Province)
    assert isinstance(places.commune("00070"), Commune)
    assert isinstance(places.old_province("079"), OldProvince)


def test_docstring_examples():
    assert places.province("79").name == "Thành phố Hồ Chí Minh"
    assert places.province("79").short_name == "Hồ Chí Minh"
    assert places.find_province("ho chi minh").code == "79"
    assert (places.old_province("077").name, places.old_province("077").successor) == (
        "Bà Rịa - Vũng Tàu", "79",
    )
