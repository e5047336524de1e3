"""Pure parts of the e-ID area: working days, refusal messages, phone formats, masks, images, ages."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from dinhdanh.eid import accounts, auth, faces, locks
from dinhdanh.notify import delivery
from dinhdanh.registry.errors import RuleViolation


@given(st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2100, 1, 1)), st.integers(1, 10))
def test_working_days_skip_weekends(start, count):
    end = locks.add_working_days(start, count)
    assert end.weekday() < 5
    days = [start + dt.timedelta(days=i) for i in range(1, (end - start).days + 1)]
    assert sum(d.weekday() < 5 for d in days) == count


def test_login_refusals_speak_vietnamese_first():
    refused = auth.LoginRefused("temporarily_locked", 900)
    assert refused.code == "temporarily_locked" and refused.retry_after == 900
    assert "15 phút" in refused.message and "15 minutes" in refused.message_en
    assert auth.LoginRefused("bad_credentials").message == auth.LoginRefused("bad_credentials").message
    assert {auth.LoginRefused(c).code for c in auth.MESSAGES} == set(auth.MESSAGES)


def test_phone_numbers_and_masks():
    assert auth.e164("0912345678") == "+84912345678" and auth.e164("84912345678") == "+84912345678"
    assert auth.e164(None) is None
    assert accounts.mask_msisdn("0912345678") == "091****678"
    assert delivery.mask("an.nguyen@example.vn") == "a***@example.vn"
    assert "2345" not in delivery.mask("0912345678")


def test_passcodes_and_hash_parameters():
    with pytest.raises(Exception):
        auth.check_passcode("12345")
    with pytest.raises(Exception):
        auth.check_passcode(123456)
    stored = auth.hash_passcode("024680")
    assert stored.startswith("$argon2id$v=19$m=7168,t=5,p=1$")
    assert auth._verify(stored, "024680") and not auth._verify(stored, "024681") and not auth._verify(None, "x")


def test_only_readable_jpegs_are_faces():
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "JPEG")
    assert faces.is_jpeg(out.getvalue())
    assert not faces.is_jpeg(out.getvalue()[:40])
    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, "PNG")
    assert not faces.is_jpeg(png.getvalue()) and not faces.is_jpeg(b"")
    assert not faces.is_jpeg(b"\xff\xd8\xff" + bytes(faces.MAX_IMAGE))


def test_no_face_matcher_installed_means_review():
    try:
        import face_recognition  # noqa: F401
    except ImportError:
        assert faces.default_matcher() is None
    else:  # pragma: no cover - the extra is installed
        assert faces.default_matcher().name == "face_recognition"


@pytest.mark.parametrize(("years", "level", "guardian", "code"), [
    (3, 1, False, "guardian_required"),
    (3, 2, True, "level2_under_6"),
    (3, 1, True, None),
    (8, 2, False, None),
    (30, 2, False, None),
])
def test_citizen_ages(years, level, guardian, code):
    today = dt.date(2026, 11, 26)
    born = today.replace(year=today.year - years)
    if code is None:
        accounts.check_citizen_age(born, level, today, by_guardian=guardian)
    else:
        with pytest.raises(RuleViolation) as e:
            accounts.check_citizen_age(born, level, today, by_guardian=guardian)
        assert e.value.code == code


def test_vietnam_date_is_utc_plus_7():
    assert accounts.vn_today(dt.datetime(2026, 11, 26, 17, 30, tzinfo=dt.UTC)) == dt.date(2026, 11, 27)
    assert accounts.vn_today(dt.datetime(2026, 11, 26, 16, 59, tzinfo=dt.UTC)) == dt.date(2026, 11, 26)
