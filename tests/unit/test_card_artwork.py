"""Unit tests for ``dinhdanh.cards.artwork``: synthetic portraits and card face images."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys

import numpy as np
import pytest
import zxingcpp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from dinhdanh.cards import artwork
from dinhdanh.cards.artwork import (
    CARD_SIZE,
    PORTRAIT_MAX_BYTES,
    PORTRAIT_SIZE,
    render_back,
    render_front,
    synthetic_portrait,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

CARD = {
    "pid": "001095012345",
    "full_name": "Nguyễn Thị Ánh Tuyết",
    "date_of_birth": "01/01/1995",
    "sex": "Nữ",
    "nationality": "Việt Nam",
    "hometown": "Xã Đông Hưng, Huyện Đông Hưng, Thái Bình",
    "residence": "Số 12 ngõ 34 phố Hàng Bạc, Phường Hàng Đào, Quận Hoàn Kiếm, Thành phố Hà Nội",
    "issue_date": "10/07/2021",
    "expiry_date": "01/01/2035",
    "issuing_authority": "BỘ CÔNG AN / Cục Cảnh sát quản lý hành chính về trật tự xã hội",
    "identifying_marks": "Nốt ruồi C:1cm trên sau cánh mũi trái",
}
QR_TEXT = (
    "001095012345|123456789|Nguyễn Thị Ánh Tuyết|01011995|Nữ|"
    "Số 12 ngõ 34 phố Hàng Bạc, Phường Hàng Đào, Quận Hoàn Kiếm, Thành phố Hà Nội|10072021"
)
MRZ = [
    "IDVNM0950123454001095012345<<8",
    "9501014F3501019VNM<<<<<<<<<<<8",
    "NGUYEN<<THI<ANH<TUYET<<<<<<<<<",
]


def _image(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(_image(data).convert("RGB"), dtype=np.int16)


@pytest.fixture(scope="module")
def photo() -> bytes:
    return synthetic_portrait(CARD["pid"], sex="female", age=30)


@pytest.fixture(scope="module")
def front(photo: bytes) -> bytes:
    return render_front(CARD, photo, QR_TEXT)


def _qr_texts(png: bytes) -> list[str]:
    found = zxingcpp.read_barcodes(_image(png), formats=zxingcpp.BarcodeFormat.QRCode)
    return [barcode.text for barcode in found]


# --- portrait -----------------------------------------------------------------------------------


def test_portrait_is_a_small_baseline_jpeg_of_the_default_size():
    data = synthetic_portrait(42, sex="male", age=40)
    assert data[:3] == b"\xff\xd8\xff"
    assert len(data) < PORTRAIT_MAX_BYTES
    img = _image(data)
    assert img.format == "JPEG"
    assert img.size == PORTRAIT_SIZE == (240, 320)
    assert img.mode == "RGB"
    assert "exif" not in img.info
    assert not img.info.get("progressive") and not img.info.get("progression")
    assert b"Exif" not in data[:200]


def test_portrait_custom_size():
    img = _image(synthetic_portrait("abc", sex="female", age=25, width=120, height=160))
    assert img.size == (120, 160)
    img = _image(synthetic_portrait("abc", sex="female", age=25, width=300, height=300))
    assert img.size == (300, 300)


@pytest.mark.parametrize("seed", [0, 7, "079301000123", "Nguyễn Văn A"])
def test_portrait_is_deterministic(seed):
    assert synthetic_portrait(seed, sex="female", age=33) == synthetic_portrait(seed, sex="female", age=33)


def test_portrait_str_seed_is_stable_across_processes():
    """str seeds go through hashlib, not hash(): another PYTHONHASHSEED gives the same bytes."""
    code = (
        "import hashlib, sys; from dinhdanh.cards.artwork import synthetic_portrait; "
        "sys.stdout.write(hashlib.sha256(synthetic_portrait('Trần Văn B', sex='male', age=52)).hexdigest())"
    )
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    expected = hashlib.sha256(synthetic_portrait("Trần Văn B", sex="male", age=52)).hexdigest()
    assert out.stdout == expected


def test_portraits_vary_visibly_by_seed():
    faces = [_pixels(synthetic_portrait(seed, sex="male", age=35)) for seed in range(8)]
    for i in range(len(faces)):
        for j in range(i + 1, len(faces)):
            diff = np.abs(faces[i] - faces[j]).mean()
            assert diff > 4.0, (i, j, diff)


def test_int_and_str_seeds_are_distinct():
    assert synthetic_portrait(5, sex="male", age=30) != synthetic_portrait("5", sex="male", age=30)


def test_age_and_sex_change_the_portrait_but_not_the_face_geometry():
    young = synthetic_portrait(11, sex="male", age=25)
    old = synthetic_portrait(11, sex="male", age=80)
    female = synthetic_portrait(11, sex="female", age=25)
    assert len({young, old, female}) == 3
    # the face is the same person: most of the picture (background, skin) is unchanged
    changed = (np.abs(_pixels(young) - _pixels(old)).sum(axis=2) > 30).mean()
    assert changed < 0.5


def test_portrait_hair_greys_with_age():
    """Averaged over seeds, the top of the head is lighter at 85 than at 25."""
    def top_band(age):
        return np.mean([
            _pixels(synthetic_portrait(s, sex="male", age=age))[40:90, 80:160].mean() for s in range(12)
        ])
    assert top_band(85) > top_band(25) + 10


@pytest.mark.parametrize("sex", ["Nam", "Nữ", "MALE", "f"])
def test_portrait_accepts_sex_spellings(sex):
    assert synthetic_portrait(1, sex=sex, age=20)[:2] == b"\xff\xd8"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"sex": "other", "age": 20}, ValueError),
        ({"sex": "male", "age": -1}, ValueError),
        ({"sex": "male", "age": 20.5}, TypeError),
        ({"sex": "male", "age": 20, "width": 10}, ValueError),
    ],
)
def test_portrait_rejects_bad_arguments(kwargs, error):
    with pytest.raises(error):
        synthetic_portrait(1, **kwargs)


@pytest.mark.parametrize("seed", [None, 1.5, b"x", True])
def test_portrait_rejects_bad_seed_types(seed):
    with pytest.raises(TypeError):
        synthetic_portrait(seed, sex="male", age=20)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.one_of(st.integers(-(2**70), 2**70), st.text(max_size=20)),
    sex=st.sampled_from(["male", "female"]),
    age=st.integers(0, 130),
)
def test_portrait_property_always_a_small_jpeg(seed, sex, age):
    data = synthetic_portrait(seed, sex=sex, age=age)
    assert len(data) < PORTRAIT_MAX_BYTES
    img = _image(data)
    assert (img.format, img.size) == ("JPEG", PORTRAIT_SIZE)


# --- front ------------------------------------------------------------------------------------


def test_front_is_a_png_of_card_size(front):
    assert front.startswith(PNG_SIGNATURE)
    img = _image(front)
    assert img.format == "PNG"
    assert img.size == CARD_SIZE == (1012, 638)
    assert abs(CARD_SIZE[0] / CARD_SIZE[1] - 85.6 / 54) < 0.01


def test_front_qr_decodes_to_the_exact_text(front):
    assert _qr_texts(front) == [QR_TEXT]


@pytest.mark.parametrize(
    "text",
    [
        "079301000123",
        "Đặng Thị Hồng Nhung|Ấp Phước Lợi, Xã Phước Hưng, Huyện Long Điền|Nữ",
        "ascii only, latin-1 é à",
        "x" * 300 + "|Trương Quốc Vĩnh",
    ],
)
def test_front_qr_round_trips(photo, text):
    assert _qr_texts(render_front(CARD, photo, text)) == [text]


def test_front_without_qr_has_no_barcode(photo):
    png = render_front(CARD, photo, None)
    assert _image(png).size == CARD_SIZE
    assert _qr_texts(png) == []


def test_front_is_deterministic_and_shows_the_fields(photo, front):
    assert render_front(CARD, photo, QR_TEXT) == front
    other = render_front({**CARD, "full_name": "Lê Văn Tám"}, photo, QR_TEXT)
    diff = np.abs(_pixels(front) - _pixels(other)).sum(axis=2) > 0
    rows = np.nonzero(diff.any(axis=1))[0]
    assert rows.size and 300 <= rows.min() and rows.max() <= 360  # only the name line changed


def test_front_photo_is_placed(front):
    other = render_front(CARD, synthetic_portrait("someone else", sex="male", age=60), QR_TEXT)
    diff = np.abs(_pixels(front) - _pixels(other)).sum(axis=2) > 0
    ys, xs = np.nonzero(diff)
    assert xs.max() < 260 and ys.min() >= 220 and ys.max() <= 510


def test_front_survives_long_and_missing_values(photo):
    long_card = {
        **CARD,
        "full_name": "Tôn Nữ Thị Phương Thảo Nguyễn Huỳnh Bảo Ngọc Khánh Linh " * 2,
        "residence": "Tổ dân phố số 7, Khu phố Bình Minh, Phường Tân Định, Quận 1, " * 6,
        "hometown": "Xã" + "ĐôngHưng" * 40,
        "expiry_date": "Không thời hạn",
    }
    for card, jpeg in ((long_card, photo), ({}, b"")):
        assert _image(render_front(card, jpeg, "x")).size == CARD_SIZE


def test_front_rejects_unreadable_photo():
    with pytest.raises(ValueError):
        render_front(CARD, b"not a jpeg", None)


# --- back -------------------------------------------------------------------------------------


def test_back_is_a_png_of_card_size():
    png = render_back(CARD, MRZ)
    assert png.startswith(PNG_SIGNATURE)
    img = _image(png)
    assert (img.format, img.size) == ("PNG", CARD_SIZE)
    assert render_back(CARD, MRZ) == png


def test_back_mrz_changes_only_the_bottom_band():
    one = _pixels(render_back(CARD, MRZ))
    two = _pixels(render_back(CARD, [MRZ[0], MRZ[1], "TRAN<<VAN<B<<<<<<<<<<<<<<<<<<<"]))
    diff = np.abs(one - two).sum(axis=2) > 0
    band_top = artwork._BACK_MRZ_TOP
    assert not diff[:band_top].any()
    assert diff[band_top:].sum() > 500
    # the MRZ itself is dark text on the light band
    band = one[band_top + 10:-10, 40:-40].mean(axis=2)
    assert (band < 80).mean() > 0.05


def test_back_shows_identifying_marks_and_authority():
    base = _pixels(render_back(CARD, MRZ))
    no_marks = _pixels(render_back({k: v for k, v in CARD.items() if k != "identifying_marks"}, MRZ))
    assert (np.abs(base - no_marks).sum(axis=2) > 0)[: artwork._BACK_MRZ_TOP].any()
    other_authority = _pixels(render_back({**CARD, "issuing_authority": "CỤC TRƯỞNG " * 20}, MRZ))
    assert (np.abs(base - other_authority).sum(axis=2) > 0).any()


def test_back_with_empty_card_and_short_mrz():
    assert _image(render_back({}, [])).size == CARD_SIZE
    assert _image(render_back({}, ["I<VNM"])).size == CARD_SIZE


# --- fonts --------------------------------------------------------------------------------------


def test_fonts_are_cached_and_render_vietnamese():
    assert artwork._font("bold", 20) is artwork._font("bold", 20)
    if artwork._font_path("DejaVuSans.ttf") is None:
        pytest.skip("DejaVu fonts are not installed")
    font = artwork._font("regular", 40)
    # precomposed Vietnamese letters have their own glyphs (not the missing-glyph box)
    assert font.getmask("Ễ").getbbox() != font.getmask("\uffff").getbbox()
    assert font.getbbox("Ễ")[1] < font.getbbox("E")[1]  # the accents sit above the capital
