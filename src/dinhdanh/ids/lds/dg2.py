"""DG2, the encoded face (ICAO Doc 9303 Part 10 section 4.7.2, ISO/IEC 19794-5:2005).

Layout::

    75 { 7F61 { 02 01 <number of instances>,
                7F60 { A1 { 80 0101  81 02  [82 subtype]  87 0101  88 0008 },
                       5F2E <facial record> } ... } }

``A1`` is the biometric header template (ICAO header version 1.1, biometric type 2 = face,
format owner 0x0101 = ISO/IEC JTC 1/SC 37, format type 0x0008 = face image). The facial record
(ISO/IEC 19794-5:2005) is a 14-byte header ``"FAC\\0" "010\\0" <record length: 4> <faces: 2>``,
then per face a 20-byte information block (block length, feature point count, gender, eye and
hair colour, feature mask, expression, pose angle and its uncertainty), 8 bytes per feature
point, a 12-byte image information block (face image type, image data type 0 = JPEG /
1 = JPEG 2000, width, height, colour space, source type, device type, quality) and the image.

Reading accepts what real chips write: ``7F2E`` instead of ``5F2E``, several ``7F60``
instances (the first face is returned), missing optional header elements, and inconsistent
length fields, in which case the image is located by its JPEG (``FF D8 FF``) or JPEG 2000
signature, always within the buffer.

>>> jpeg = bytes.fromhex("ffd8ffe000104a46494600") + bytes(20) + bytes.fromhex("ffd9")
>>> raw = encode(jpeg, width=480, height=640, gender="female")
>>> raw[:1].hex(), raw[-len(jpeg):] == jpeg
('75', True)
>>> face = decode(raw)
>>> face.mime, face.width, face.height, face.gender, face.image == jpeg
('image/jpeg', 480, 640, 'female', True)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from dinhdanh.ids.lds import tlv
from dinhdanh.ids.lds.tlv import LdsError, TLVError

__all__ = [
    "TAG", "FaceImage", "encode", "decode", "facial_record", "parse_facial_record",
    "GENDERS", "IMAGE_TYPES", "COLOUR_SPACES", "SOURCE_TYPES",
]

TAG = 0x75
BIT_GROUP_TAG = 0x7F61  # biometric information group template
BIT_TAG = 0x7F60  # biometric information template
BHT_TAG = 0xA1  # biometric header template
BDB_TAGS = (0x5F2E, 0x7F2E)  # biometric data block (primitive, or constructed on some chips)
COUNT_TAG = 0x02

FORMAT_ID = b"FAC\x00"
VERSION_2005 = b"010\x00"
_RECORD_HEADER = 14
_INFO_BLOCK = 20
_FEATURE_POINT = 8
_IMAGE_INFO = 12

GENDERS = {"unspecified": 0x00, "male": 0x01, "female": 0x02, "unknown": 0xFF}
IMAGE_TYPES = {"basic": 0x00, "full_frontal": 0x01, "token_frontal": 0x02}
COLOUR_SPACES = {"unspecified": 0x00, "rgb24": 0x01, "yuv422": 0x02, "grey8": 0x03, "other": 0x04}
SOURCE_TYPES = {
    "unspecified": 0x00, "static_photo_unknown_source": 0x01, "static_photo_digital_cam": 0x02,
    "static_photo_scanner": 0x03, "video_frame_unknown_source": 0x04,
    "video_frame_analog_cam": 0x05, "video_frame_digital_cam": 0x06, "unknown": 0x07,
}
_MIMES = {0: "image/jpeg", 1: "image/jp2"}

JPEG_SOI = b"\xff\xd8\xff"
JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
J2K_CODESTREAM = b"\xff\x4f\xff\x51"


def _name(table: dict[str, int], code: int) -> str:
    for name, value in table.items():
        if value == code:
            return name
    return f"0x{code:02X}"


@dataclass(frozen=True, slots=True)
class FaceImage:
    image: bytes
    mime: str  # "image/jpeg" or "image/jp2"
    width: int | None
    height: int | None
    gender: str = "unspecified"  # unspecified / male / female / unknown / 0xNN
    image_type: str = "full_frontal"  # basic / full_frontal / token_frontal / 0xNN
    colour_space: str = "unspecified"
    source_type: str = "unspecified"
    device_type: int = 0
    quality: int = 0
    eye_colour: int = 0
    hair_colour: int = 0
    feature_mask: int = 0
    expression: int = 0
    feature_points: tuple[tuple[int, int, int, int], ...] = ()  # (type, code, x, y)
    biometric_subtype: int | None = None
    instances: int = 1  # 7F60 templates in the file
    header_consistent: bool = True  # False when the image had to be located by its signature

    def as_dict(self) -> dict:
        out = {name: getattr(self, name) for name in self.__slots__ if name != "image"}
        out["image_length"] = len(self.image)
        out["feature_points"] = [list(p) for p in self.feature_points]
        return out


def _mime_of(image: bytes) -> str | None:
    if image.startswith(JPEG_SOI):
        return "image/jpeg"
    if image.startswith(JP2_SIGNATURE) or image.startswith(J2K_CODESTREAM):
        return "image/jp2"
    return None


def _u(value: int, size: int, what: str) -> bytes:
    if not isinstance(value, int) or not 0 <= value < 1 << (8 * size):
        raise LdsError(f"DG2 {what} {value!r} does not fit in {size} unsigned bytes.")
    return value.to_bytes(size, "big")


def _code(table: dict[str, int], value: str | int, what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return int.from_bytes(_u(value, 1, what), "big")
    if value not in table:
        raise LdsError(f"DG2 {what} {value!r} is not one of {', '.join(table)}.")
    return table[value]


def facial_record(
    image: bytes, *, width: int, height: int, gender: str | int = "unspecified",
    image_type: str | int = "full_frontal", colour_space: str | int = "rgb24",
    source_type: str | int = "static_photo_digital_cam", device_type: int = 0, quality: int = 0,
    eye_colour: int = 0, hair_colour: int = 0, feature_mask: int = 0, expression: int = 0,
    feature_points: tuple[tuple[int, int, int, int], ...] = (),
) -> bytes:
    """The ISO/IEC 19794-5:2005 facial record (the content of ``5F2E``) for one JPEG or JP2 image."""
    image = bytes(image)
    mime = _mime_of(image)
    if mime is None:
        raise LdsError("DG2 image is neither JPEG (FF D8 FF) nor JPEG 2000.")
    data_type = 0 if mime == "image/jpeg" else 1
    block_length = _INFO_BLOCK + _FEATURE_POINT * len(feature_points) + _IMAGE_INFO + len(image)
    info = (
        _u(block_length, 4, "facial record length")
        + _u(len(feature_points), 2, "feature point count")
        + bytes([_code(GENDERS, gender, "gender"), _code({}, eye_colour, "eye colour"),
                 _code({}, hair_colour, "hair colour")])
        + _u(feature_mask, 3, "feature mask")
        + _u(expression, 2, "expression")
        + bytes(6)  # pose angle (yaw, pitch, roll) and uncertainty: unspecified
    )
    points = b"".join(
        bytes([_code({}, t, "feature point type"), _code({}, c, "feature point code")])
        + _u(x, 2, "feature point x") + _u(y, 2, "feature point y") + bytes(2)
        for t, c, x, y in feature_points
    )
    image_info = (
        bytes([_code(IMAGE_TYPES, image_type, "image type"), data_type])
        + _u(width, 2, "width") + _u(height, 2, "height")
        + bytes([_code(COLOUR_SPACES, colour_space, "colour space"),
                 _code(SOURCE_TYPES, source_type, "source type")])
        + _u(device_type, 2, "device type") + _u(quality, 2, "quality")
    )
    header = FORMAT_ID + VERSION_2005 + _u(_RECORD_HEADER + block_length, 4, "record length") + b"\x00\x01"
    return header + info + points + image_info + image


def encode(image: bytes, *, width: int, height: int, gender: str | int = "unspecified",
           image_type: str | int = "full_frontal", biometric_subtype: int | None = None,
           **record_options) -> bytes:
    """DG2 holding one face image; ``record_options`` go to :func:`facial_record`."""
    record = facial_record(image, width=width, height=height, gender=gender,
                           image_type=image_type, **record_options)
    bht = tlv.encode(0x80, b"\x01\x01") + tlv.encode(0x81, b"\x02")
    if biometric_subtype is not None:
        bht += tlv.encode(0x82, _u(biometric_subtype, 1, "biometric subtype"))
    bht += tlv.encode(0x87, b"\x01\x01") + tlv.encode(0x88, b"\x00\x08")
    bit = tlv.encode(BIT_TAG, tlv.encode(BHT_TAG, bht) + tlv.encode(BDB_TAGS[0], record))
    group = tlv.encode(COUNT_TAG, b"\x01") + bit
    return tlv.encode(TAG, tlv.encode(BIT_GROUP_TAG, group))


def _find_image(data: bytes, start: int = 0) -> int | None:
    """Offset of the first JPEG or JPEG 2000 signature at or after ``start``."""
    hits = [i for i in (data.find(JPEG_SOI, start), data.find(JP2_SIGNATURE, start),
                        data.find(J2K_CODESTREAM, start)) if i >= 0]
    return min(hits) if hits else None


def _by_signature(bdb: bytes, start: int, **fields) -> FaceImage:
    pos = _find_image(bdb, start)
    if pos is None:
        raise LdsError("DG2 biometric data block holds no JPEG or JPEG 2000 image.")
    image = bdb[pos:]
    fields.setdefault("width", None)
    fields.setdefault("height", None)
    fields["header_consistent"] = False
    return FaceImage(image=image, mime=_mime_of(image), **fields)


def parse_facial_record(bdb: bytes) -> FaceImage:
    """The first face of an ISO/IEC 19794-5 facial record (content of ``5F2E``)."""
    bdb = bytes(bdb)
    if not bdb.startswith(FORMAT_ID) or len(bdb) < _RECORD_HEADER + _INFO_BLOCK:
        return _by_signature(bdb, 0)
    if bdb[4:8] != VERSION_2005:
        # 19794-5:2011 ("030") and other layouts: only the image is recovered.
        return _by_signature(bdb, _RECORD_HEADER)
    pos = _RECORD_HEADER
    block_length = int.from_bytes(bdb[pos:pos + 4], "big")
    n_points = int.from_bytes(bdb[pos + 4:pos + 6], "big")
    gender, eye, hair = bdb[pos + 6], bdb[pos + 7], bdb[pos + 8]
    mask = int.from_bytes(bdb[pos + 9:pos + 12], "big")
    expression = int.from_bytes(bdb[pos + 12:pos + 14], "big")
    fields = dict(gender=_name(GENDERS, gender), eye_colour=eye, hair_colour=hair,
                  feature_mask=mask, expression=expression)
    pos += _INFO_BLOCK
    info_at = pos + _FEATURE_POINT * n_points
    if info_at + _IMAGE_INFO > len(bdb):
        return _by_signature(bdb, _RECORD_HEADER + _INFO_BLOCK, **fields)
    fields["feature_points"] = tuple(
        (bdb[p], bdb[p + 1], int.from_bytes(bdb[p + 2:p + 4], "big"), int.from_bytes(bdb[p + 4:p + 6], "big"))
        for p in range(pos, info_at, _FEATURE_POINT)
    )
    ii = bdb[info_at:info_at + _IMAGE_INFO]
    fields.update(
        image_type=_name(IMAGE_TYPES, ii[0]),
        width=int.from_bytes(ii[2:4], "big"), height=int.from_bytes(ii[4:6], "big"),
        colour_space=_name(COLOUR_SPACES, ii[6]), source_type=_name(SOURCE_TYPES, ii[7]),
        device_type=int.from_bytes(ii[8:10], "big"), quality=int.from_bytes(ii[10:12], "big"),
    )
    start = info_at + _IMAGE_INFO
    image_length = block_length - _INFO_BLOCK - _FEATURE_POINT * n_points - _IMAGE_INFO
    end = start + image_length
    consistent = image_length > 0 and end <= len(bdb)
    if not consistent:
        end = len(bdb)
    image = bdb[start:end]
    mime = _mime_of(image)
    declared = _MIMES.get(ii[1])
    if mime is None:
        return _by_signature(bdb, start, **fields)
    return FaceImage(image=image, mime=mime, header_consistent=consistent and mime == declared, **fields)


def _children(value: bytes) -> list[tuple[int, bytes]]:
    return list(tlv.iter_decode(value))


def decode(data: bytes) -> FaceImage:
    """The first face image in DG2, with what the headers say about it."""
    with tlv.lds_errors("DG2"):
        group = next((v for t, v in _children(tlv.decode_one(data, TAG)) if t == BIT_GROUP_TAG), None)
        if group is None:
            raise LdsError(f"DG2 has no biometric information group template (tag 0x{BIT_GROUP_TAG:X}).")
        templates = [v for t, v in _children(group) if t == BIT_TAG]
    if not templates:
        raise LdsError(f"DG2 has no biometric information template (tag 0x{BIT_TAG:X}).")
    last_error: LdsError | None = None
    for template in templates:
        subtype = None
        bdb = None
        try:
            for tag, value in _children(template):
                if tag == BHT_TAG:
                    for htag, hvalue in _children(value):
                        if htag == 0x82 and len(hvalue) == 1:
                            subtype = hvalue[0]
                elif tag in BDB_TAGS and bdb is None:
                    bdb = value
            if bdb is None:
                raise LdsError("DG2 biometric information template has no data block (5F2E or 7F2E).")
            face = parse_facial_record(bdb)
        except (LdsError, TLVError) as exc:
            last_error = exc if isinstance(exc, LdsError) else LdsError(f"DG2: {exc.message}")
            continue
        return replace(face, biometric_subtype=subtype, instances=len(templates))
    assert last_error is not None
    raise last_error

