"""The 2023 "CĂN CƯỚC" card model (Law on Identification 2023, Circular 16/2024/TT-BCA) beside the
2021 "CĂN CƯỚC CÔNG DÂN": which model an issue date gets, what production prints for each, and the
two faces as drawn (QR on the back and readable with zxing-cpp, MRZ still valid)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from types import SimpleNamespace

import numpy as np
import pytest
import zxingcpp
from PIL import Image

from dinhdanh.cards import artwork, chip, model, production
from dinhdanh.cards.model import MODEL_2021, MODEL_2023, model_for
from dinhdanh.ids import mrz, qr
from dinhdanh.ids.lds import dg1, dg13, sod
from dinhdanh.registry.errors import RuleViolation
from tests import chips

PID = "001085000001"


def person(**changes) -> SimpleNamespace:
    """A ``persons`` row as production reads it."""
    row = dict(
        person_id=1, pid=PID, full_name="Nguyễn Văn An", date_of_birth=dt.date(1985, 3, 4), sex="male",
        nationality="VNM", hometown="Xã Đông Hưng, Tỉnh Hưng Yên", ethnicity="Kinh", religion=None,
        place_of_birth="Phường Hoàn Kiếm, Thành phố Hà Nội", birth_registration_code="001",
        old_id_number="012345678", address="Số 12 phố Hàng Bạc", commune_code="00070", province_code="01",
        temp_address=None, temp_commune_code=None, temp_province_code=None, temp_until=None,
        current_address=None)
    row.update(changes)
    return SimpleNamespace(**row)


@pytest.fixture(scope="module")
def signer():
    return chips.foreign_pki("ec", "VN")


def produce(signer, row, issue_date: dt.date) -> production.ProducedCard:
    return production.produce(
        row, issue_date=issue_date, father="Nguyễn Văn Ba", mother="Lê Thị Tư", spouse=None,
        sign=lambda data: chips.raw_sign(signer.dsc_key, data), signer_certificate=signer.dsc_der,
        signature_algorithm=chips.cms_algorithm(signer.dsc_key), hash_algorithm="sha256",
        photo=artwork.synthetic_portrait("person:1", sex="male", age=40))


def qr_texts(png: bytes) -> list[str]:
    img = Image.open(io.BytesIO(png))
    return [b.text for b in zxingcpp.read_barcodes(img, formats=zxingcpp.BarcodeFormat.QRCode)]


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def changed_rows(a: bytes, b: bytes) -> np.ndarray:
    return np.nonzero((np.abs(pixels(a) - pixels(b)).sum(axis=2) > 0).any(axis=1))[0]


# ------------------------------------------------------------------------------ choosing the model


@pytest.mark.parametrize("issued, name", [
    (dt.date(2021, 7, 15), "2021"),
    (dt.date(2024, 6, 30), "2021"),
    (dt.date(2024, 7, 1), "2023"),
    (dt.date(2024, 7, 2), "2023"),
    (dt.date(2025, 1, 10), "2023"),
    (dt.date(2040, 12, 31), "2023"),
])
def test_the_model_follows_the_issue_date(issued, name):
    assert model_for(issued).name == name
    assert model_for(issued).issued_on(issued)


def test_model_for_wants_a_date():
    with pytest.raises(TypeError):
        model_for(dt.datetime(2024, 7, 1, 9))
    with pytest.raises(TypeError):
        model_for("2024-07-01")


def test_models_by_name():
    assert model.named(None) is MODEL_2021  # cards stored before the models were named
    assert model.named("2021") is MODEL_2021 and model.named("2023") is MODEL_2023
    with pytest.raises(ValueError):
        model.named("2016")


def test_the_2023_model_as_the_circular_describes_it():
    m = MODEL_2023
    assert (m.title_vi, m.title_en) == ("CĂN CƯỚC", "IDENTITY CARD")
    assert [(f.key, f.vi, f.en) for f in m.on("front")] == [
        ("pid", "Số định danh cá nhân", "Personal identification number"),
        ("full_name", "Họ, chữ đệm và tên khai sinh", "Full name"),
        ("date_of_birth", "Ngày, tháng, năm sinh", "Date of birth"),
        ("sex", "Giới tính", "Sex"),
        ("nationality", "Quốc tịch", "Nationality"),
    ]
    assert [(f.key, f.vi, f.en) for f in m.on("back") if f.labelled] == [
        ("residence", "Nơi cư trú", "Place of residence"),
        ("birth_registration_place", "Nơi đăng ký khai sinh", "Place of birth"),
        ("issue_date", "Ngày, tháng, năm cấp", "Date of issue"),
        ("expiry_date", "Ngày, tháng, năm hết hạn", "Date of expiry"),
    ]
    assert not {"hometown", "identifying_marks"} & set(m.keys)
    assert (m.qr_face, m.fingerprints, m.issuing_authority, m.issuing_authority_en) == (
        "back", False, "BỘ CÔNG AN", "MINISTRY OF PUBLIC SECURITY")
    assert (MODEL_2021.qr_face, MODEL_2021.fingerprints) == ("front", True)
    assert MODEL_2021.valid_until + dt.timedelta(days=1) == MODEL_2023.valid_from == dt.date(2024, 7, 1)


# ------------------------------------------------------------------------------ production


def test_a_card_issued_in_2025_is_the_2023_model(signer):
    issued = dt.date(2025, 1, 10)
    card = produce(signer, person(), issued)
    assert card.printed == {
        "model": "2023", "pid": PID, "full_name": "Nguyễn Văn An", "date_of_birth": "04/03/1985",
        "sex": "Nam", "nationality": "Việt Nam",
        "residence": "Số 12 phố Hàng Bạc, Phường Hoàn Kiếm, Thành phố Hà Nội",
        "birth_registration_place": "Phường Hoàn Kiếm, Thành phố Hà Nội",
        "issue_date": "10/01/2025", "expiry_date": "04/03/2045",
        "issuing_authority": "BỘ CÔNG AN"}
    assert "hometown" not in card.printed and "identifying_marks" not in card.printed
    # MRZ (TD1, unchanged format) and QR
    machine = mrz.parse(card.mrz)
    assert machine.valid and machine.errors == ()
    assert (machine.pid, machine.expiry_date, machine.surname, machine.given_names) == (
        PID, "450304", "NGUYEN", "VAN AN")
    code = qr.parse(card.qr)
    assert (code.pid, code.old_id, code.issue_date, code.address) == (
        PID, "012345678", issued, card.printed["residence"])
    # the chip keeps DG13's field list: the hometown stays in field 8
    personal = dg13.decode(card.files["DG13"])
    assert (personal.hometown, personal.residence, personal.issue_date, personal.expiry_date) == (
        "Xã Đông Hưng, Tỉnh Hưng Yên", card.printed["residence"], "10/01/2025", "04/03/2045")
    assert dg1.decode(card.files["DG1"]) == card.mrz
    hashes = sod.parse(card.files["EF.SOD"]).security_object.hashes
    assert hashes == {n: hashlib.sha256(card.files[f"DG{n}"]).digest() for n in (1, 2, 13, 14, 15)}


def test_a_card_issued_in_2023_is_still_the_2021_model(signer):
    card = produce(signer, person(), dt.date(2023, 5, 1))
    assert card.printed == {
        "model": "2021", "pid": PID, "full_name": "Nguyễn Văn An", "date_of_birth": "04/03/1985",
        "sex": "Nam", "nationality": "Việt Nam", "hometown": "Xã Đông Hưng, Tỉnh Hưng Yên",
        "residence": "Số 12 phố Hàng Bạc, Phường Hoàn Kiếm, Thành phố Hà Nội",
        "issue_date": "01/05/2023", "expiry_date": "04/03/2045",  # within 2 years of 40: to 60
        "issuing_authority": "Cục Cảnh sát quản lý hành chính về trật tự xã hội", "identifying_marks": ""}
    assert mrz.parse(card.mrz).valid


def test_the_place_of_residence_falls_back_to_temporary_then_current(signer):
    issued = dt.date(2025, 1, 10)
    nowhere = dict(address=None, commune_code=None, province_code=None)
    temporary = dict(temp_address="Phòng 5, số 8 Lê Lợi", temp_commune_code="00070", temp_province_code="01")
    card = produce(signer, person(**nowhere, **temporary, temp_until=dt.date(2026, 1, 1)), issued)
    assert card.printed["residence"] == "Phòng 5, số 8 Lê Lợi, Phường Hoàn Kiếm, Thành phố Hà Nội"
    assert qr.parse(card.qr).address == card.printed["residence"]
    # a temporary residence that ended before the issue date is not printed
    ended = person(**nowhere, **temporary, temp_until=dt.date(2024, 12, 31), current_address="Bến Phà Đen")
    assert produce(signer, ended, issued).printed["residence"] == "Bến Phà Đen"
    with pytest.raises(RuleViolation) as nothing:  # no place of residence at all: no card
        produce(signer, person(**nowhere), issued)
    assert (nothing.value.code, nothing.value.field) == ("no_residence", "residence")
    # the permanent residence wins over the others
    both = person(**temporary, current_address="Bến Phà Đen")
    assert produce(signer, both, issued).printed["residence"].startswith("Số 12 phố Hàng Bạc")
    # the 2021 card prints the permanent residence only ("nơi thường trú")
    with pytest.raises(RuleViolation):
        produce(signer, person(**nowhere, **temporary), dt.date(2023, 5, 1))


@pytest.mark.parametrize("place, code, printed", [
    ("Phường Hoàn Kiếm, Thành phố Hà Nội", "001", "Phường Hoàn Kiếm, Thành phố Hà Nội"),
    # registered in Bà Rịa - Vũng Tàu (077), now part of Hồ Chí Minh City: the text is kept
    ("Phường Vũng Tàu, Thành phố Hồ Chí Minh", "077", "Phường Vũng Tàu, Thành phố Hồ Chí Minh"),
    # born in Hà Nội but registered in Nghệ An: the place of registration is the province
    ("Phường Hoàn Kiếm, Thành phố Hà Nội", "040", "Nghệ An"),
    (None, "046", "Thừa Thiên Huế"),
    # no known province code (none, or a country code for a registration abroad): the text
    ("Paris, Pháp", "105", "Paris, Pháp"),
    ("Xã Đông Hưng, Tỉnh Hưng Yên", None, "Xã Đông Hưng, Tỉnh Hưng Yên"),
    (None, None, ""),
])
def test_the_place_of_birth_registration(place, code, printed):
    row = person(place_of_birth=place, birth_registration_code=code)
    assert production.birth_registration_text(row) == printed


def test_a_word_inside_another_is_not_a_province():
    """'Huế' must not be found in 'Thuế'."""
    row = person(place_of_birth="Xã Thuế Lộc, Tỉnh Quảng Trị", birth_registration_code="046")
    assert production.birth_registration_text(row) == "Thừa Thiên Huế"


# ------------------------------------------------------------------------------ the two faces


@pytest.fixture(scope="module")
def card_2023(signer):
    return produce(signer, person(), dt.date(2025, 1, 10))


@pytest.fixture(scope="module")
def card_2021(signer):
    return produce(signer, person(), dt.date(2023, 5, 1))


@pytest.fixture(scope="module")
def photo() -> bytes:
    return artwork.synthetic_portrait("person:1", sex="male", age=40)


def test_the_2023_back_carries_the_qr_and_a_valid_mrz(card_2023):
    back = artwork.render_back(card_2023.printed, card_2023.mrz, card_2023.qr)
    assert Image.open(io.BytesIO(back)).size == artwork.CARD_SIZE
    assert qr_texts(back) == [card_2023.qr]
    assert qr.parse(qr_texts(back)[0]).pid == PID
    assert mrz.parse(card_2023.mrz).valid
    # without the QR text the back has none; the MRZ band is where it was
    bare = artwork.render_back(card_2023.printed, card_2023.mrz)
    assert qr_texts(bare) == []
    rows = changed_rows(back, bare)
    assert rows.size and rows.max() < artwork._BACK_MRZ_TOP


def test_the_2023_front_has_no_qr(card_2023, photo):
    front = artwork.render_front(card_2023.printed, photo, card_2023.qr)
    assert qr_texts(front) == []
    assert front == artwork.render_front(card_2023.printed, photo, None)


def test_the_2021_faces_are_unchanged(card_2021, photo):
    front = artwork.render_front(card_2021.printed, photo, card_2021.qr)
    assert qr_texts(front) == [card_2021.qr]
    back = artwork.render_back(card_2021.printed, card_2021.mrz, card_2021.qr)
    assert qr_texts(back) == []
    # a card stored before the model was recorded draws the same as the 2021 model
    legacy = {k: v for k, v in card_2021.printed.items() if k != "model"}
    assert artwork.render_front(legacy, photo, card_2021.qr) == front
    assert artwork.render_back(legacy, card_2021.mrz) == back


def test_the_models_draw_different_cards(card_2021, card_2023, photo):
    same = {**card_2023.printed, "model": "2021"}
    assert artwork.render_front(card_2023.printed, photo, None) != artwork.render_front(same, photo, None)
    assert artwork.render_back(card_2023.printed, card_2023.mrz) != artwork.render_back(same, card_2023.mrz)


def test_each_2023_field_is_drawn_on_its_face(card_2023, photo):
    printed = card_2023.printed
    front = artwork.render_front(printed, photo, None)
    back = artwork.render_back(printed, card_2023.mrz)
    # back fields change the back only, above the MRZ band
    for key in ("residence", "birth_registration_place", "issue_date", "expiry_date", "issuing_authority"):
        other = {**printed, key: "Xã Thạch Hà, Tỉnh Hà Tĩnh"}
        assert artwork.render_front(other, photo, None) == front, key
        rows = changed_rows(back, artwork.render_back(other, card_2023.mrz))
        assert rows.size and rows.max() < artwork._BACK_MRZ_TOP, key
    # front fields change the front only
    for key in ("pid", "full_name", "date_of_birth", "sex", "nationality"):
        other = {**printed, key: "Khác"}
        assert artwork.render_back(other, card_2023.mrz) == back, key
        assert changed_rows(front, artwork.render_front(other, photo, None)).size, key
    # a hometown or identifying marks given to a 2023 card are not drawn
    extra = {**printed, "hometown": "Xã Đông Hưng", "identifying_marks": "Nốt ruồi"}
    assert artwork.render_front(extra, photo, None) == front
    assert artwork.render_back(extra, card_2023.mrz) == back


def test_an_unknown_model_is_refused(card_2023, photo):
    with pytest.raises(ValueError):
        artwork.render_front({**card_2023.printed, "model": "2099"}, photo, None)
    with pytest.raises(ValueError):
        artwork.render_back({**card_2023.printed, "model": "2099"}, card_2023.mrz)


def test_long_2023_values_still_fit(photo):
    long_card = {"model": "2023", "full_name": "Tôn Nữ Thị Phương Thảo Nguyễn Huỳnh Bảo Ngọc " * 3,
                 "residence": "Tổ dân phố số 7, Khu phố Bình Minh, Phường Tân Định, " * 8,
                 "birth_registration_place": "Xã" + "ĐôngHưng" * 40, "expiry_date": "Không thời hạn"}
    assert Image.open(io.BytesIO(artwork.render_front(long_card, photo, "x"))).size == artwork.CARD_SIZE
    back = artwork.render_back(long_card, [], "x" * 200)
    assert qr_texts(back) == ["x" * 200]


def test_an_exported_2023_card_has_its_qr_on_the_back(card_2023, signer, tmp_path):
    """``chip.write_card`` (``dinhdanh card export``) draws each face of the card's model."""
    vault = chips.new_vault()
    files = card_2023.files
    stored = SimpleNamespace(
        printed=card_2023.printed, qr=card_2023.qr, mrz="\n".join(card_2023.mrz), ef_com=files["EF.COM"],
        dg1=files["DG1"], dg2=vault.seal(files["DG2"], "dg2"), dg13=files["DG13"], dg14=files["DG14"],
        dg15=files["DG15"], sod=files["EF.SOD"])
    written = chip.write_card(stored, vault, signer.csca_der, tmp_path)
    assert {"front.png", "back.png", "DG13.bin"} <= set(written)
    assert qr_texts((tmp_path / "front.png").read_bytes()) == []
    assert qr_texts((tmp_path / "back.png").read_bytes()) == [card_2023.qr]
