"""Unit and property tests for the LDS file codecs: EF.COM, DG1, DG2, DG13, DG14, DG15."""

from __future__ import annotations

import io
import unicodedata

import ecdsa
import pytest
from asn1crypto import core
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from dinhdanh.ids.exceptions import InvalidFormat
from dinhdanh.ids.lds import dg1, dg2, dg13, dg14, dg15, efcom, tlv
from dinhdanh.ids.lds.tlv import LdsError, TLVError

FUZZ = settings(max_examples=300, deadline=None)


def _fuzz(decoder, data):
    try:
        decoder(data)
    except InvalidFormat:
        pass


def _spki(public_key) -> bytes:
    return public_key.public_bytes(ser.Encoding.DER, ser.PublicFormat.SubjectPublicKeyInfo)


P256_SPKI = _spki(ec.derive_private_key(42, ec.SECP256R1()).public_key())


# ================================================================ EF.COM


def test_dg_tag_table_is_the_icao_table():
    assert efcom.DG_TAGS == {
        1: 0x61, 2: 0x75, 3: 0x63, 4: 0x76, 5: 0x65, 6: 0x66, 7: 0x67, 8: 0x68, 9: 0x69,
        10: 0x6A, 11: 0x6B, 12: 0x6C, 13: 0x6D, 14: 0x6E, 15: 0x6F, 16: 0x70,
    }
    assert all(efcom.TAG_DG[t] == n for n, t in efcom.DG_TAGS.items())
    assert efcom.COM_TAG == 0x60 and efcom.SOD_TAG == 0x77
    assert efcom.FILE_TAGS["COM"] == 0x60 and efcom.FILE_TAGS["SOD"] == 0x77 and efcom.FILE_TAGS["DG13"] == 0x6D
    assert efcom.FIDS["COM"] == 0x011E and efcom.FIDS["SOD"] == 0x011D and efcom.FIDS["DG2"] == 0x0102


def test_efcom_vector_and_round_trip():
    tags = [0x61, 0x75, 0x63, 0x6D, 0x6E, 0x6F]
    raw = efcom.encode(tags)
    assert raw == bytes.fromhex("6018 5f0104") + b"0107" + bytes.fromhex("5f3606") + b"040000" \
        + bytes.fromhex("5c06 61 75 63 6d 6e 6f")
    com = efcom.decode(raw)
    assert com == efcom.EfCom("0107", "040000", tuple(tags))
    assert com.data_groups() == (1, 2, 3, 13, 14, 15)
    assert com.as_dict()["data_groups"] == [1, 2, 3, 13, 14, 15]
    assert efcom.decode(efcom.encode([], "0108", "050200")) == efcom.EfCom("0108", "050200", ())


def test_efcom_tolerates_order_and_extra_elements_but_needs_all_three():
    body = (tlv.encode(0x5C, b"\x61") + tlv.encode(0x5F36, b"040000") + tlv.encode(0x99, b"")
            + tlv.encode(0x5F01, b"0107"))
    assert efcom.decode(tlv.encode(0x60, body)).tags == (0x61,)
    with pytest.raises(LdsError, match="tag list"):
        efcom.decode(tlv.encode(0x60, tlv.encode(0x5F01, b"0107") + tlv.encode(0x5F36, b"040000")))
    with pytest.raises(LdsError, match="0x5F01 is not ASCII"):
        efcom.decode(tlv.encode(0x60, tlv.encode(0x5F01, b"\xff\xff") + tlv.encode(0x5F36, b"040000")
                                + tlv.encode(0x5C, b"")))
    with pytest.raises(LdsError, match=r"^EF.COM: Expected tag 0x60, found 0x61"):
        efcom.decode(bytes.fromhex("6100"))


@pytest.mark.parametrize("kwargs", [{"lds_version": "17"}, {"unicode_version": "4.0.0."}, {"lds_version": "01a7"}])
def test_efcom_rejects_bad_versions(kwargs):
    with pytest.raises(LdsError):
        efcom.encode([0x61], **kwargs)


def test_efcom_rejects_bad_tags():
    with pytest.raises(LdsError, match="tag list"):
        efcom.encode([0x5F])


@FUZZ
@given(st.binary(max_size=80))
def test_efcom_fuzz(data):
    _fuzz(efcom.decode, data)
    _fuzz(efcom.decode, tlv.encode(0x60, data))


# ================================================================ DG1

TD1 = ("IDVNM0950123451001095012345<<8", "9503154F3503157VNM<<<<<<<<<<<6", "NGUYEN<<THI<MAI<<<<<<<<<<<<<<<")
TD2 = ("I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<", "D231458907UTO7408122F1204159<<<<<<<6")
TD3 = ("P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C36UTO7408122F1204159ZE184226B<<<<<10")


def test_dg1_public_td1_vector():
    raw = dg1.encode(TD1)
    assert raw[:5] == bytes.fromhex("615d5f1f5a")
    assert raw[5:] == "".join(TD1).encode("ascii")
    assert dg1.decode(raw) == TD1


@pytest.mark.parametrize("lines", [TD1, TD2, TD3])
def test_dg1_round_trip_each_format(lines):
    assert dg1.decode(dg1.encode(lines)) == lines
    assert dg1.decode(dg1.encode("\n".join(lines))) == lines
    assert dg1.decode(dg1.encode("".join(lines))) == lines


def test_dg1_rejects_bad_mrz():
    with pytest.raises(LdsError, match="89 characters"):
        dg1.encode(["<" * 89])
    with pytest.raises(LdsError, match=r"character 'a' at position 3"):
        dg1.encode(["IDVa" + "<" * 86])
    with pytest.raises(LdsError, match="3 lines of 30"):
        dg1.encode(["<" * 45, "<" * 45])
    with pytest.raises(LdsError, match="91 characters"):
        dg1.decode(tlv.encode(0x61, tlv.encode(0x5F1F, b"<" * 91)))
    with pytest.raises(LdsError, match="no MRZ element"):
        dg1.decode(tlv.encode(0x61, tlv.encode(0x5F20, b"<" * 90)))
    with pytest.raises(LdsError, match="not ASCII"):
        dg1.decode(tlv.encode(0x61, tlv.encode(0x5F1F, "É".encode() * 45)))
    with pytest.raises(LdsError, match=r"^DG1: Expected tag 0x61"):
        dg1.decode(tlv.encode(0x75, b""))


@FUZZ
@given(st.binary(max_size=120))
def test_dg1_fuzz(data):
    _fuzz(dg1.decode, data)
    _fuzz(dg1.decode, tlv.encode(0x61, data))


# ================================================================ DG2


def _jpeg(size=(32, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 150, 100)).save(out, "JPEG", quality=80)
    return out.getvalue()


def _jp2() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (24, 30), (10, 20, 30)).save(out, "JPEG2000")
    return out.getvalue()


JPEG = _jpeg()


def test_dg2_structure_byte_by_byte():
    raw = dg2.encode(JPEG, width=32, height=40, gender="male", quality=77)
    group = tlv.decode_one(raw, 0x75)
    items = list(tlv.iter_decode(tlv.decode_one(group, 0x7F61)))
    assert items[0] == (0x02, b"\x01")
    assert [t for t, _ in items] == [0x02, 0x7F60]
    bit = list(tlv.iter_decode(items[1][1]))
    assert [t for t, _ in bit] == [0xA1, 0x5F2E]
    assert list(tlv.iter_decode(bit[0][1])) == [
        (0x80, b"\x01\x01"), (0x81, b"\x02"), (0x87, b"\x01\x01"), (0x88, b"\x00\x08")]
    record = bit[1][1]
    assert record[:8] == b"FAC\x00010\x00"
    assert int.from_bytes(record[8:12], "big") == len(record)
    assert record[12:14] == b"\x00\x01"
    fib = record[14:34]
    assert int.from_bytes(fib[0:4], "big") == len(record) - 14 == 20 + 12 + len(JPEG)
    assert fib[4:6] == b"\x00\x00"  # feature points
    assert fib[6] == 0x01  # male
    info = record[34:46]
    assert info[0] == 0x01 and info[1] == 0x00  # full frontal, JPEG
    assert int.from_bytes(info[2:4], "big") == 32 and int.from_bytes(info[4:6], "big") == 40
    assert info[6] == 0x01 and info[7] == 0x02  # RGB24, static photo from a digital camera
    assert int.from_bytes(info[10:12], "big") == 77
    assert record[46:] == JPEG


def test_dg2_round_trip_and_image_is_readable():
    raw = dg2.encode(JPEG, width=32, height=40, gender="female", image_type="token_frontal",
                     biometric_subtype=0, feature_points=((1, 0x51, 10, 12),))
    face = dg2.decode(raw)
    assert face.image == JPEG and face.mime == "image/jpeg"
    assert (face.width, face.height, face.gender, face.image_type) == (32, 40, "female", "token_frontal")
    assert face.feature_points == ((1, 0x51, 10, 12),)
    assert face.biometric_subtype == 0 and face.instances == 1 and face.header_consistent
    assert face.colour_space == "rgb24" and face.source_type == "static_photo_digital_cam"
    assert Image.open(io.BytesIO(face.image)).size == (32, 40)
    assert face.as_dict()["image_length"] == len(JPEG)


def test_dg2_jpeg2000():
    jp2 = _jp2()
    face = dg2.decode(dg2.encode(jp2, width=24, height=30))
    assert face.mime == "image/jp2" and face.image == jp2 and face.header_consistent


def test_dg2_encode_rejects_non_images_and_bad_values():
    with pytest.raises(LdsError, match="neither JPEG"):
        dg2.encode(b"GIF89a....", width=1, height=1)
    with pytest.raises(LdsError, match="gender"):
        dg2.encode(JPEG, width=1, height=1, gender="x")
    with pytest.raises(LdsError, match="width"):
        dg2.encode(JPEG, width=70000, height=1)


def _dg2_from(templates: list[bytes], count: int | None = None) -> bytes:
    n = len(templates) if count is None else count
    return tlv.encode(0x75, tlv.encode(0x7F61, tlv.encode(0x02, bytes([n])) + b"".join(templates)))


def _template(record: bytes, bdb_tag=0x5F2E, bht=True) -> bytes:
    header = tlv.encode(0xA1, tlv.encode(0x81, b"\x02")) if bht else b""
    return tlv.encode(0x7F60, header + tlv.encode(bdb_tag, record))


def test_dg2_accepts_7f2e_several_instances_and_no_header():
    record = dg2.facial_record(JPEG, width=32, height=40, gender="male")
    other = dg2.facial_record(_jpeg((8, 8)), width=8, height=8)
    face = dg2.decode(_dg2_from([_template(record, 0x7F2E), _template(other)]))
    assert face.image == JPEG and face.instances == 2 and face.gender == "male"
    face = dg2.decode(_dg2_from([_template(record, bht=False)]))
    assert face.image == JPEG and face.biometric_subtype is None
    # The first template is unusable: the second one is returned.
    face = dg2.decode(_dg2_from([tlv.encode(0x7F60, tlv.encode(0xA1, b"")), _template(other)]))
    assert face.width == 8


def test_dg2_finds_the_image_when_lengths_are_wrong():
    record = bytearray(dg2.facial_record(JPEG, width=32, height=40))
    record[14:18] = (10**6).to_bytes(4, "big")  # facial record data length far too large
    face = dg2.decode(_dg2_from([_template(bytes(record))]))
    assert face.image == JPEG and not face.header_consistent and face.width == 32
    record[14:18] = (5).to_bytes(4, "big")  # too small
    assert dg2.decode(_dg2_from([_template(bytes(record))])).image == JPEG
    record[18:20] = (5000).to_bytes(2, "big")  # feature point count past the end
    face = dg2.decode(_dg2_from([_template(bytes(record))]))
    assert face.image == JPEG and face.width is None
    # No 19794-5 header at all, and the 2011 version: located by signature.
    assert dg2.decode(_dg2_from([_template(b"\x00" * 7 + JPEG)])).image == JPEG
    v2011 = b"FAC\x00030\x00" + bytes(40) + JPEG
    assert dg2.decode(_dg2_from([_template(v2011)])).image == JPEG
    # Image type byte says JPEG 2000 but the data is JPEG: the data wins, flagged.
    record = bytearray(dg2.facial_record(JPEG, width=32, height=40))
    record[35] = 1
    face = dg2.decode(_dg2_from([_template(bytes(record))]))
    assert face.mime == "image/jpeg" and not face.header_consistent


def test_dg2_errors():
    with pytest.raises(LdsError, match="no JPEG or JPEG 2000"):
        dg2.decode(_dg2_from([_template(b"FAC\x00010\x00" + bytes(60))]))
    with pytest.raises(LdsError, match="group template"):
        dg2.decode(tlv.encode(0x75, b""))
    with pytest.raises(LdsError, match="information template"):
        dg2.decode(_dg2_from([]))
    with pytest.raises(LdsError, match=r"^DG2: "):
        dg2.decode(b"\x75\x05")


@FUZZ
@given(st.binary(max_size=200))
def test_dg2_fuzz(data):
    _fuzz(dg2.decode, data)
    _fuzz(dg2.decode, _dg2_from([tlv.encode(0x7F60, data)]))
    _fuzz(dg2.decode, _dg2_from([_template(data)]))


VALID_DG2 = dg2.encode(_jpeg((4, 4)), width=4, height=4)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(VALID_DG2) - 1), st.integers(0, 255)), min_size=1, max_size=4),
       st.integers(0, len(VALID_DG2)))
def test_dg2_mutation_fuzz(changes, cut):
    data = bytearray(VALID_DG2)
    for pos, byte in changes:
        data[pos] = byte
    _fuzz(dg2.decode, bytes(data))
    _fuzz(dg2.decode, bytes(data[:cut]))


# ================================================================ DG13

FULL = dg13.VnPersonalData(
    pid="001095012345", full_name="Nguyễn Thị Mai", date_of_birth="15/03/1995", sex="Nữ",
    nationality="Việt Nam", ethnicity="Kinh", religion="Không", hometown="Xã Đông Anh, Hà Nội",
    residence="Số 1 Phố Huế, Phường Hàng Bài, Quận Hoàn Kiếm, Hà Nội",
    identifying_marks="Nốt ruồi C:1cm trên mép phải",
    issue_date="10/07/2021", expiry_date="15/03/2035", father="Nguyễn Văn An", mother="Trần Thị Bình",
    spouse="Lê Văn Cường", old_id="012345678", field16="0123456789ABCDEF",
)


def _entry(n: int, *values: bytes) -> bytes:
    return tlv.encode(0x30, tlv.encode(0x02, bytes([n])) + b"".join(values))


def _dg13(*entries: bytes) -> bytes:
    oid = core.ObjectIdentifier("1.0.10646.1.0.8").dump()
    inner = tlv.encode(0x02, b"\x01") + oid + tlv.encode(0x31, b"".join(entries))
    return tlv.encode(0x6D, tlv.encode(0x30, inner))


def _utf8(text: str) -> bytes:
    return tlv.encode(0x0C, text.encode())


def _printable(text: str) -> bytes:
    return tlv.encode(0x13, text.encode("ascii"))


def test_dg13_round_trip_full_record():
    assert dg13.decode(dg13.encode(FULL)) == FULL
    d = FULL.as_dict()
    assert d["father"] == "Nguyễn Văn An" and d["unknown"] == [] and len(d) == 18


def test_dg13_encoding_matches_the_observed_byte_layout():
    raw = dg13.encode(FULL)
    # 6D L { 30 L { 02 01 01, 06 06 28 D3 16 01 00 08, 31 L { ... } } }
    seq = tlv.decode_one(raw, 0x6D)
    items = list(tlv.iter_decode(tlv.decode_one(seq, 0x30)))
    assert items[0] == (0x02, b"\x01")
    assert items[1] == (0x06, bytes.fromhex("28d316010008"))
    assert items[2][0] == 0x31
    entries = [tlv.encode(t, v) for t, v in tlv.iter_decode(items[2][1])]
    # Prefixes seen on real cards (PID and dates PrintableString, text UTF8String).
    assert entries[0].startswith(bytes.fromhex("3011020101130c"))
    assert entries[1] == _entry(2, _utf8("Nguyễn Thị Mai"))
    assert entries[2].startswith(bytes.fromhex("300f020103130a"))
    assert entries[3] == bytes.fromhex("3009020104") + _utf8("Nữ")
    assert entries[10].startswith(bytes.fromhex("300f02010b130a"))
    assert entries[11].startswith(bytes.fromhex("300f02010c0c0a"))  # expiry: UTF8String
    assert entries[12] == _entry(13, tlv.encode(0x30, _utf8("Nguyễn Văn An")),
                                 tlv.encode(0x30, _utf8("Trần Thị Bình")))
    assert entries[13] == _entry(14, tlv.encode(0x30, _utf8("Lê Văn Cường")))
    assert entries[14].startswith(bytes.fromhex("300e02010f1309"))
    assert entries[15].startswith(bytes.fromhex("301502011013" "10"))
    assert [tlv.decode(e[2:])[1][0] for e in entries] == list(range(1, 17))


def test_dg13_without_spouse_writes_the_empty_field_14():
    raw = dg13.encode(dg13.VnPersonalData(pid="001095012345"))
    assert bytes.fromhex("300302010e") in raw
    assert dg13.decode(raw) == dg13.VnPersonalData(pid="001095012345")


def test_dg13_reads_variants():
    raw = _dg13(
        _entry(4, _utf8("Nam")),  # any order
        _entry(2, tlv.encode(0x1E, "Phạm Văn Đức".encode("utf-16-be"))),  # BMPString
        _entry(1, tlv.encode(0x16, b"079301000123")),  # IA5String
        _entry(13, tlv.encode(0x30, _utf8("Phạm Văn A") + _utf8("Lê Thị B"))),  # both in one SEQUENCE
        _entry(12, _utf8("Không thời hạn")),
        _entry(14),
        _entry(99, tlv.encode(0x04, b"\x01\x02")),
        _entry(9, tlv.encode(0x0C, unicodedata.normalize("NFD", "Hà Nội").encode())),
    )
    p = dg13.decode(raw)
    assert (p.pid, p.full_name, p.sex) == ("079301000123", "Phạm Văn Đức", "Nam")
    assert (p.father, p.mother, p.spouse) == ("Phạm Văn A", "Lê Thị B", None)
    assert p.expiry_date == "Không thời hạn"
    assert p.residence == "Hà Nội" and unicodedata.is_normalized("NFC", p.residence)
    assert p.unknown == ((99, tlv.encode(0x04, b"\x01\x02")),)
    assert p.date_of_birth is None and p.old_id is None


def test_dg13_father_only_and_flat_strings():
    p = dg13.decode(_dg13(_entry(13, tlv.encode(0x30, _utf8("Cha")), tlv.encode(0x30, b""))))
    assert (p.father, p.mother) == ("Cha", None)
    p = dg13.decode(_dg13(_entry(13, _utf8("Cha"), _printable("Me"))))
    assert (p.father, p.mother) == ("Cha", "Me")
    p = dg13.decode(_dg13(_entry(14, _utf8("Vo"))))
    assert p.spouse == "Vo"
    assert dg13.encode(dg13.VnPersonalData(mother="Mẹ")).count(bytes.fromhex("3000")) == 1


def test_dg13_keeps_what_it_does_not_understand():
    weird = tlv.encode(0x02, b"\x05")  # an INTEGER where a string is expected
    repeated = _utf8("Second name")
    p = dg13.decode(_dg13(_entry(2, _utf8("First")), _entry(2, repeated), _entry(3, weird), _entry(5),
                          _entry(13, _utf8("a"), _utf8("b"), _utf8("c")), _entry(16, b"\xff")))
    assert p.full_name == "First" and p.date_of_birth is None and p.nationality is None
    assert p.unknown == (
        (2, repeated), (3, weird), (5, b""), (13, _utf8("a") + _utf8("b") + _utf8("c")), (16, b"\xff"))
    # Re-encoding keeps the raw fields.
    assert dg13.decode(dg13.encode(p)).unknown == p.unknown


def test_dg13_errors():
    with pytest.raises(LdsError, match=r"DG13 field 2: invalid UTF-8 in string tag 0x0C at byte 1"):
        dg13.decode(_dg13(_entry(2, tlv.encode(0x0C, b"A\xff"))))
    with pytest.raises(LdsError, match="no SET"):
        dg13.decode(tlv.encode(0x6D, tlv.encode(0x30, tlv.encode(0x02, b"\x01"))))
    with pytest.raises(LdsError, match="not a SEQUENCE"):
        dg13.decode(_dg13(tlv.encode(0x0C, b"x")))
    with pytest.raises(LdsError, match="does not start with an INTEGER"):
        dg13.decode(_dg13(tlv.encode(0x30, _utf8("x"))))
    with pytest.raises(LdsError, match="INTEGER has 0 bytes"):
        dg13.decode(_dg13(tlv.encode(0x30, tlv.encode(0x02, b""))))
    with pytest.raises(LdsError, match=r"^DG13: Expected tag 0x6D, found 0x61"):
        dg13.decode(bytes.fromhex("6100"))
    with pytest.raises(LdsError):
        dg13.encode(dg13.VnPersonalData(unknown=((2**40, b""),)))
    with pytest.raises(LdsError):
        dg13.encode(dg13.VnPersonalData(full_name=5))  # type: ignore[arg-type]


VIETNAMESE = "aăâbcdđeêghiklmnoôơpqrstuưvxyàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ"
_vn_text = st.text(alphabet=VIETNAMESE + VIETNAMESE.upper() + " 0123456789/,.-:()", max_size=60)
_any_text = st.text(max_size=30)
_value = st.one_of(st.none(), _vn_text, _any_text).map(
    lambda s: None if s is None else unicodedata.normalize("NFC", s))
_raw_tlvs = st.lists(
    st.tuples(st.sampled_from([0x02, 0x04, 0x0C, 0x13, 0x30, 0xA0]), st.binary(max_size=20)), max_size=3
).map(lambda items: b"".join(tlv.encode(t, v) for t, v in items))
_unknown = st.lists(st.tuples(st.integers(17, 100000), _raw_tlvs), max_size=4, unique_by=lambda t: t[0]).map(
    lambda items: tuple(sorted(items)))


@settings(max_examples=200, deadline=None)
@given(st.builds(dg13.VnPersonalData, **{name: _value for name in dg13.FIELD_NUMBERS}, unknown=_unknown))
def test_dg13_round_trip_property(person):
    assert dg13.decode(dg13.encode(person)) == person


@FUZZ
@given(st.binary(max_size=150))
def test_dg13_fuzz(data):
    _fuzz(dg13.decode, data)
    _fuzz(dg13.decode, tlv.encode(0x6D, data))
    _fuzz(dg13.decode, _dg13(data))
    _fuzz(dg13.decode, _dg13(tlv.encode(0x30, tlv.encode(0x02, b"\x0d") + data)))


# ================================================================ DG14

AA_INFO_DER = bytes.fromhex("3015 060667810801010502010106082a8648ce3d040302")


def _oid(dotted: str) -> bytes:
    return core.ObjectIdentifier(dotted).dump()


def test_dg14_known_vectors():
    assert dg14.encode([dg14.active_authentication_info()]) == bytes.fromhex("6e19 3117") + AA_INFO_DER
    pace = bytes.fromhex("3012 060a04007f00070202040202 020102 02010c")
    assert dg14.encode([dg14.pace_info()]) == bytes.fromhex("6e16 3114") + pace
    ca = bytes.fromhex("300f 060a04007f00070202030202 020101")
    assert dg14.encode([dg14.chip_authentication_info()]) == bytes.fromhex("6e13 3111") + ca
    (info,) = dg14.decode(bytes.fromhex("6e19 3117") + AA_INFO_DER)
    assert info.protocol == "2.23.136.1.1.5" and info.name == "id-AA" and info.kind == "active_authentication"
    assert (info.required_data, info.optional_data) == (1, "1.2.840.10045.4.3.2")
    (info,) = dg14.decode(bytes.fromhex("6e16 3114") + pace)
    assert (info.name, info.required_data, info.optional_data) == ("id-PACE-ECDH-GM-AES-CBC-CMAC-128", 2, 12)


def test_dg14_round_trip_all_kinds_and_der_order():
    infos = [
        dg14.chip_authentication_public_key_info(P256_SPKI, key_id=1),
        dg14.chip_authentication_info(key_id=1),
        dg14.pace_info(parameter_id=13),
        dg14.active_authentication_info("1.2.840.10045.4.3.3"),
        dg14.SecurityInfo(dg14.ID_TA, 1),
        dg14.SecurityInfo("1.2.3.4.5", core.OctetString(b"xyz").dump(),
                          tlv.encode(0x05, b"") + tlv.encode(0x01, b"\xff")),
    ]
    raw = dg14.encode(infos)
    decoded = dg14.decode(raw)
    assert sorted(decoded, key=repr) == sorted(infos, key=repr)
    # DER: elements of the SET OF sorted by their encodings; re-encoding is byte-identical.
    elements = [tlv.encode(t, v) for t, v in tlv.iter_decode(tlv.decode_one(tlv.decode_one(raw, 0x6E), 0x31))]
    assert elements == sorted(elements)
    assert dg14.encode(decoded) == raw
    by_kind = {i.kind: i for i in decoded}
    assert by_kind["chip_authentication_public_key"].required_data == P256_SPKI
    assert by_kind["chip_authentication_public_key"].name == "id-PK-ECDH"
    assert by_kind["chip_authentication"].name == "id-CA-ECDH-AES-CBC-CMAC-128"
    assert by_kind["chip_authentication"].required_data == 1 and by_kind["chip_authentication"].optional_data == 1
    assert by_kind["pace"].name == "id-PACE-ECDH-GM-AES-CBC-CMAC-128" and by_kind["pace"].optional_data == 13
    assert by_kind["other"].name is None and by_kind["other"].required_data == core.OctetString(b"xyz").dump()
    assert dg14.active_authentication_hash(decoded) == "sha384"
    assert by_kind["pace"].as_dict()["kind"] == "pace"


def test_dg14_names_and_tables():
    assert dg14.PROTOCOL_NAMES["0.4.0.127.0.7.2.2.4.2.2"] == "id-PACE-ECDH-GM-AES-CBC-CMAC-128"
    assert dg14.PROTOCOL_NAMES["0.4.0.127.0.7.2.2.3.2.2"] == "id-CA-ECDH-AES-CBC-CMAC-128"
    assert dg14.PROTOCOL_NAMES["0.4.0.127.0.7.2.2.1.2"] == "id-PK-ECDH"
    assert dg14.PROTOCOL_NAMES["0.4.0.127.0.7.2.2.4.6.4"] == "id-PACE-ECDH-CAM-AES-CBC-CMAC-256"
    assert dg14.PACE_PARAMETER_IDS[12] == "secp256r1" and dg14.PACE_PARAMETER_IDS[13] == "brainpoolP256r1"


@pytest.mark.parametrize("oid, name", [
    ("1.2.840.10045.4.1", "sha1"), ("1.2.840.10045.4.3.1", "sha224"), ("1.2.840.10045.4.3.2", "sha256"),
    ("1.2.840.10045.4.3.3", "sha384"), ("1.2.840.10045.4.3.4", "sha512"),
    ("0.4.0.127.0.7.1.1.4.1.3", "sha256"), ("1.2.840.113549.1.1.11", "sha256"), ("1.9.9", None),
])
def test_dg14_active_authentication_hash(oid, name):
    assert dg14.active_authentication_hash(dg14.decode(dg14.encode([dg14.active_authentication_info(oid)]))) == name


def test_dg14_without_aa_info():
    assert dg14.active_authentication_hash(dg14.decode(dg14.encode([dg14.pace_info()]))) is None
    assert dg14.decode(dg14.encode([])) == ()


def test_dg14_errors():
    with pytest.raises(LdsError, match="not a SubjectPublicKeyInfo"):
        dg14.encode([dg14.chip_authentication_public_key_info(b"\x30\x00")])
    with pytest.raises(LdsError, match="not a SubjectPublicKeyInfo"):
        dg14.decode(tlv.encode(0x6E, tlv.encode(0x31, tlv.encode(0x30, _oid(dg14.ID_PK_ECDH) + b"\x30\x00"))))
    with pytest.raises(LdsError, match="not an INTEGER"):
        dg14.decode(tlv.encode(0x6E, tlv.encode(0x31, tlv.encode(
            0x30, _oid(dg14.ID_AA) + tlv.encode(0x0C, b"1")))))
    with pytest.raises(LdsError, match="not a SEQUENCE"):
        dg14.decode(tlv.encode(0x6E, tlv.encode(0x31, tlv.encode(0x02, b"\x01"))))
    with pytest.raises(LdsError, match="OID, requiredData"):
        dg14.decode(tlv.encode(0x6E, tlv.encode(0x31, tlv.encode(0x30, tlv.encode(0x02, b"\x01")))))
    with pytest.raises(LdsError, match=r"^DG14: Expected tag 0x6E"):
        dg14.decode(bytes.fromhex("6f00"))
    with pytest.raises(LdsError):
        dg14.encode([dg14.SecurityInfo("not an oid", 1)])
    with pytest.raises(LdsError):
        dg14.encode([dg14.SecurityInfo("1.2.3", 1.5)])  # type: ignore[arg-type]


@FUZZ
@given(st.binary(max_size=120))
def test_dg14_fuzz(data):
    _fuzz(dg14.decode, data)
    _fuzz(dg14.decode, tlv.encode(0x6E, data))
    _fuzz(dg14.decode, tlv.encode(0x6E, tlv.encode(0x31, data)))
    for oid in (dg14.ID_AA, dg14.ID_PK_ECDH, dg14.ID_PACE_ECDH_GM_AES_CBC_CMAC_128, dg14.ID_TA):
        _fuzz(dg14.decode, tlv.encode(0x6E, tlv.encode(0x31, tlv.encode(0x30, _oid(oid) + data))))


# ================================================================ DG15


def test_dg15_round_trip_ec_rsa_and_explicit_brainpool():
    rsa_spki = _spki(rsa.generate_private_key(65537, 1024).public_key())
    vk = ecdsa.SigningKey.generate(curve=ecdsa.BRAINPOOLP256r1).get_verifying_key()
    explicit = vk.to_der(curve_parameters_encoding="explicit")
    for spki, algorithm in ((P256_SPKI, "ec"), (rsa_spki, "rsa"), (explicit, "ec")):
        raw = dg15.encode(spki)
        assert raw[:1] == b"\x6f" and dg15.decode(raw) == spki and dg15.algorithm(spki) == algorithm
    assert dg15.algorithm(_spki(ed25519.Ed25519PrivateKey.generate().public_key())) == "ed25519"


def test_dg15_errors():
    with pytest.raises(LdsError, match="SubjectPublicKeyInfo"):
        dg15.encode(b"\x30\x03\x02\x01\x01")
    with pytest.raises(LdsError, match="SubjectPublicKeyInfo"):
        dg15.decode(tlv.encode(0x6F, b"\x04\x01\x00"))
    with pytest.raises(LdsError, match=r"^DG15: 3 trailing bytes"):
        dg15.decode(tlv.encode(0x6F, P256_SPKI) + b"\x00\x00\x00")


@FUZZ
@given(st.binary(max_size=120))
def test_dg15_fuzz(data):
    _fuzz(dg15.decode, data)
    _fuzz(dg15.decode, tlv.encode(0x6F, data))
    _fuzz(dg15.decode, tlv.encode(0x6F, tlv.encode(0x30, data)))


def test_tlv_errors_are_wrapped_by_every_decoder():
    for decoder in (efcom.decode, dg1.decode, dg2.decode, dg13.decode, dg14.decode, dg15.decode):
        with pytest.raises(LdsError):
            decoder(b"\x5f")
        with pytest.raises(InvalidFormat):
            decoder(b"")
    assert not issubclass(LdsError, TLVError)
