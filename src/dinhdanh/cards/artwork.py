"""Artwork for synthetic demo cards: drawn portraits and the two faces of the card.

Everything here is a pure function from bytes/str to bytes. There is no database and no I/O
other than reading fonts, and only Pillow, segno and numpy are used.

* :func:`synthetic_portrait` draws a plainly synthetic head-and-shoulders "ID photo" (a JPEG
  small enough for the chip's DG2). The same seed, sex and age always give the same bytes;
  the seed alone fixes the face, so one person drawn at two ages differs mostly in the hair.
* :func:`render_front` and :func:`render_back` draw an ID-1 card (85.6 x 54 mm) as a PNG of
  :data:`CARD_SIZE` pixels (about 300 dpi), bilingual, with the photo, a QR code (error level M,
  machine-readable in the PNG) and the MRZ, laid out like the card model that ``card["model"]``
  names (:mod:`dinhdanh.cards.model`): the 2021 "căn cước công dân" (the default, for cards
  stored without a model) or the 2023 "căn cước" (QR on the back, no fingerprints). One renderer
  draws both: it walks the model's field list and puts each field in its slot of the model's
  pixel layout (:data:`_LAYOUTS`). The cards are marked "MẪU / SPECIMEN".

>>> jpeg = synthetic_portrait("demo", sex="female", age=34)
>>> jpeg[:3] == b"\\xff\\xd8\\xff" and jpeg == synthetic_portrait("demo", sex="female", age=34)
True
>>> synthetic_portrait(1, sex="male", age=30) != synthetic_portrait(2, sex="male", age=30)
True
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import random
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import segno
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from dinhdanh.cards import model as card_model

__all__ = [
    "CARD_SIZE",
    "PORTRAIT_MAX_BYTES",
    "PORTRAIT_SIZE",
    "render_back",
    "render_front",
    "synthetic_portrait",
]

PORTRAIT_SIZE = (240, 320)
"""Default portrait size in pixels (width, height), 3:4 like a 3 x 4 cm ID photo."""

PORTRAIT_MAX_BYTES = 15_000
"""The size the default portrait stays under, so that it fits the chip's DG2."""

CARD_SIZE = (1012, 638)
"""Card image size in pixels (width, height): ID-1, 85.6 x 54 mm, at about 300 dpi."""

Color = tuple[int, int, int]
Box = tuple[float, float, float, float]

# --------------------------------------------------------------------------------------------
# Synthetic portrait
# --------------------------------------------------------------------------------------------

_DESIGN_W, _DESIGN_H = 240, 320  # the portrait is designed in these units, then scaled
_SUPERSAMPLE = 2  # drawn at twice the size, then reduced: cheap anti-aliasing

_BACKGROUNDS: tuple[Color, ...] = ((255, 255, 255), (255, 255, 255), (232, 240, 250), (221, 234, 248))
_SKIN_LIGHT: Color = (247, 220, 196)
_SKIN_DARK: Color = (141, 96, 66)
_HAIR_COLOURS: tuple[Color, ...] = (
    (22, 20, 20), (22, 20, 20), (30, 25, 23), (30, 25, 23), (44, 33, 27), (62, 45, 34), (96, 66, 44),
)
_GREY_HAIR: Color = (214, 213, 208)
_IRIS_COLOURS: tuple[Color, ...] = ((48, 32, 24), (48, 32, 24), (34, 26, 22), (70, 48, 30), (92, 70, 40))
_SHIRT_COLOURS: tuple[Color, ...] = (
    (250, 250, 250), (236, 240, 247), (168, 196, 226), (40, 52, 84), (62, 64, 70), (24, 24, 28),
    (126, 36, 48), (84, 100, 68), (196, 176, 146), (70, 110, 150), (150, 160, 170), (214, 120, 110),
)
_FRAME_COLOURS: tuple[Color, ...] = ((30, 30, 34), (90, 60, 40), (120, 120, 128), (40, 50, 90))


def _derive_seed(seed: int | str) -> int:
    """A 64-bit seed from an int or str seed (hashlib, so it is the same in every process)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, str)):
        raise TypeError(f"seed must be an int or a str, not {type(seed).__name__}")
    data = f"i:{seed}" if isinstance(seed, int) else f"s:{seed}"
    digest = hashlib.sha256(b"dinhdanh.cards.portrait\0" + data.encode("utf-8", "surrogatepass"))
    return int.from_bytes(digest.digest()[:8], "big")


def _parse_sex(sex: str) -> bool:
    """True for female. Accepts "male"/"female" (also "m"/"f", "Nam"/"Nữ")."""
    key = unicodedata.normalize("NFC", str(sex)).strip().casefold()
    if key in ("female", "f", "nữ", "nu"):
        return True
    if key in ("male", "m", "nam"):
        return False
    raise ValueError(f"sex must be 'male' or 'female', not {sex!r}")


def _mix(a: Color, b: Color, t: float) -> Color:
    """Linear mix of two colours, t = 0 gives a, t = 1 gives b."""
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


def _shade(c: Color, f: float) -> Color:
    return (min(255, round(c[0] * f)), min(255, round(c[1] * f)), min(255, round(c[2] * f)))


def _bezier(p0: tuple[float, float], p1: tuple[float, float], p2: tuple[float, float], n: int = 12):
    """Points of a quadratic Bézier curve, p0 and p2 included."""
    out = []
    for i in range(n + 1):
        t = i / n
        u = 1 - t
        out.append((u * u * p0[0] + 2 * u * t * p1[0] + t * t * p2[0],
                    u * u * p0[1] + 2 * u * t * p1[1] + t * t * p2[1]))
    return out


def _arc_points(cx: float, cy: float, a: float, b: float, start: float, end: float, n: int = 24):
    """Points of an ellipse from ``start`` to ``end`` degrees (PIL convention: 270 is the top)."""
    out = []
    for i in range(n + 1):
        t = math.radians(start + (end - start) * i / n)
        out.append((cx + a * math.cos(t), cy + b * math.sin(t)))
    return out


class _Canvas:
    """An ImageDraw in design units (240 x 320), scaled and centred onto the real image."""

    def __init__(self, width: int, height: int, background: Color) -> None:
        self.image = Image.new("RGB", (width * _SUPERSAMPLE, height * _SUPERSAMPLE), background)
        self.draw = ImageDraw.Draw(self.image)
        self.k = min(width / _DESIGN_W, height / _DESIGN_H) * _SUPERSAMPLE
        self.ox = (width * _SUPERSAMPLE - _DESIGN_W * self.k) / 2
        self.oy = height * _SUPERSAMPLE - _DESIGN_H * self.k  # shoulders stay at the bottom edge

    def pts(self, points):
        k, ox, oy = self.k, self.ox, self.oy
        return [(ox + x * k, oy + y * k) for x, y in points]

    def box(self, x0: float, y0: float, x1: float, y1: float) -> list[float]:
        k, ox, oy = self.k, self.ox, self.oy
        return [ox + x0 * k, oy + y0 * k, ox + x1 * k, oy + y1 * k]

    def w(self, width: float) -> int:
        return max(1, round(width * self.k))

    def ellipse(self, box: Box, fill: Color | None = None, outline: Color | None = None, width: float = 1):
        self.draw.ellipse(self.box(*box), fill=fill, outline=outline, width=self.w(width))

    def polygon(self, points, fill: Color) -> None:
        self.draw.polygon(self.pts(points), fill=fill)

    def line(self, points, fill: Color, width: float) -> None:
        self.draw.line(self.pts(points), fill=fill, width=self.w(width), joint="curve")

    def arc(self, box: Box, start: float, end: float, fill: Color, width: float) -> None:
        self.draw.arc(self.box(*box), start, end, fill=fill, width=self.w(width))

    def chord(self, box: Box, start: float, end: float, fill: Color) -> None:
        self.draw.chord(self.box(*box), start, end, fill=fill)

    def rounded(self, box: Box, radius: float, fill: Color | None = None,
                outline: Color | None = None, width: float = 1) -> None:
        self.draw.rounded_rectangle(self.box(*box), radius=radius * self.k, fill=fill,
                                    outline=outline, width=self.w(width) if outline else 0)


def synthetic_portrait(
    seed: int | str,
    *,
    sex: str,
    age: int,
    width: int = PORTRAIT_SIZE[0],
    height: int = PORTRAIT_SIZE[1],
) -> bytes:
    """A drawn, obviously synthetic head-and-shoulders ID-style portrait, as baseline JPEG bytes.

    ``sex`` is "male" or "female" (also "Nam"/"Nữ"), ``age`` in years. Deterministic: the same
    arguments give the same bytes (str seeds are hashed with SHA-256, not ``hash()``). No EXIF,
    quality 85; at the default 240 x 320 the JPEG stays under :data:`PORTRAIT_MAX_BYTES`.
    """
    female = _parse_sex(sex)
    if isinstance(age, bool) or not isinstance(age, int):
        raise TypeError(f"age must be an int, not {type(age).__name__}")
    if age < 0:
        raise ValueError(f"age must not be negative, got {age}")
    if width < 48 or height < 64 or width > 2000 or height > 2000:
        raise ValueError(f"portrait size {width}x{height} out of range (48x64 .. 2000x2000)")
    rng = random.Random(_derive_seed(seed))
    # A fixed number of draws in a fixed order, whatever the sex and age: the seed alone fixes
    # the face, so the same seed at another age keeps its features.
    u = [rng.random() for _ in range(52)]
    image = _draw_portrait(u, female, min(age, 120), width, height)
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=85, optimize=False, progressive=False, subsampling="4:2:0")
    return buf.getvalue()


def _draw_portrait(u: list[float], female: bool, age: int, width: int, height: int) -> Image.Image:
    child = age < 13
    adult = age >= 18
    bg = _BACKGROUNDS[int(u[0] * len(_BACKGROUNDS))]
    cv = _Canvas(width, height, bg)

    # --- colours -----------------------------------------------------------------------------
    skin = _mix(_SKIN_LIGHT, _SKIN_DARK, (u[1] ** 1.6) * 0.95)
    skin = _mix(skin, (236, 170, 140) if u[2] < 0.5 else (226, 196, 130), abs(u[2] - 0.5) * 0.35)
    skin_shadow = _shade(skin, 0.84)
    skin_line = _shade(skin, 0.62)
    base_hair = _HAIR_COLOURS[int(u[3] * len(_HAIR_COLOURS))]
    grey = min(0.95, max(0.0, (age - 32 - 14 * u[4]) / 42))
    hair = _mix(base_hair, _GREY_HAIR, grey)
    brow = _mix(base_hair, _GREY_HAIR, grey * 0.6)
    iris = _IRIS_COLOURS[int(u[5] * len(_IRIS_COLOURS))]
    lip = _mix(skin, (178, 78, 82) if female else (160, 90, 84), 0.42 if female else 0.3)

    # --- geometry (design units) --------------------------------------------------------------
    fh = 178 + 18 * u[6] - (12 if child else 0)
    fw = fh * ((0.72 + 0.08 * u[7]) + (0.05 if child else 0) - (0.02 if female else 0))
    cx = 120 + (u[8] - 0.5) * 6
    chin = 250 + (u[9] - 0.5) * 6 - (4 if child else 0)
    top = chin - fh
    cy = top + fh / 2
    jaw = 0.80 + 0.16 * u[10] - (0.06 if female else 0)
    neck_w = fw * (0.50 + 0.08 * u[11] - (0.06 if female else 0) - (0.04 if child else 0))
    shoulder_y = chin + 22 + 6 * u[12]
    shoulder_half = (160 if not female else 148) * (0.82 if child else 1.0) * (0.95 + 0.1 * u[13])

    # --- hair style ---------------------------------------------------------------------------
    long_hair = u[14] < (0.78 if female else 0.06)
    bob = female and not long_hair and u[15] < 0.7
    bald = (not female) and age >= 40 and u[16] < min(0.45, (age - 38) / 60)
    receding = (not female) and not bald and age >= 35 and u[16] < min(0.7, (age - 30) / 45)
    volume = 5 + 12 * u[17] + (6 if female else 0)
    hairline = 0.13 + 0.09 * u[18] + (0.08 if receding else 0)
    part = (u[19] - 0.5) * 2  # -1 .. 1: where the parting/fringe leans
    hair_len = chin + 12 + 60 * u[20]
    fringe = female and u[21] < 0.45

    # --- back hair (behind everything) --------------------------------------------------------
    ha, hb = fw / 2 + volume, fh / 2 + volume
    if long_hair or bob:
        bottom = hair_len if long_hair else top + fh * (0.84 + 0.08 * u[22])
        spread = 12 + 10 * u[22] if long_hair else 3
        outline = _arc_points(cx, cy, ha, hb, 180, 360, 28)
        side = _bezier((cx + ha, cy), (cx + ha + spread * 0.3, (cy + bottom) / 2),
                       (cx + ha + spread, bottom - 8), 8)
        outline += side + [(cx + ha + spread - 10, bottom), (cx - ha - spread + 10, bottom)]
        outline += [(2 * cx - x, y) for x, y in reversed(side)]
        cv.polygon(outline, hair)

    # --- neck and shoulders -------------------------------------------------------------------
    cv.rounded((cx - neck_w / 2, cy + fh * 0.15, cx + neck_w / 2, shoulder_y + 40), 8, fill=skin_shadow)
    _draw_clothes(cv, u, female, adult, cx, shoulder_y, shoulder_half, neck_w, skin_shadow)
    if long_hair:  # strands falling over the shoulders, in front of the clothes
        for s in (-1, 1):
            outer = _bezier((cx + s * ha, cy), (cx + s * (ha + spread * 0.3), (cy + bottom) / 2),
                            (cx + s * (ha + spread), bottom - 8), 8)
            tip = _bezier((cx + s * (ha + spread), bottom - 8), (cx + s * (ha + spread * 0.6), bottom + 6),
                          (cx + s * (neck_w / 2 + 4), bottom - 14), 6)
            inner = [(cx + s * (neck_w / 2 + 2), cy + fh * 0.3), (cx + s * fw * 0.3, cy)]
            cv.polygon(outer + tip[1:] + inner, hair)

    # --- ears ---------------------------------------------------------------------------------
    ear_h, ear_w = fh * 0.24, fw * 0.15
    ear_y = top + fh * 0.5
    if not long_hair and not bob:
        for s in (-1, 1):
            ex = cx + s * (fw / 2 - ear_w * 0.2)
            box = (ex - ear_w / 2, ear_y - ear_h / 2, ex + ear_w / 2, ear_y + ear_h / 2)
            cv.ellipse(box, fill=skin, outline=skin_line, width=0.8)
            cv.arc((box[0] + ear_w * 0.22, box[1] + ear_h * 0.2, box[2] - ear_w * 0.22, box[3] - ear_h * 0.2),
                   -70 if s > 0 else 110, 70 if s > 0 else 250, skin_line, 1.0)

    # --- face (outline first, then fill) --------------------------------------------------------
    face_box = (cx - fw / 2, top, cx + fw / 2, chin)
    jaw_box = (cx - fw / 2 * jaw, top + fh * 0.32, cx + fw / 2 * jaw, chin)
    o = 1.1
    cv.ellipse((face_box[0] - o, face_box[1] - o, face_box[2] + o, face_box[3] + o), fill=skin_line)
    cv.ellipse((jaw_box[0] - o, jaw_box[1] - o, jaw_box[2] + o, jaw_box[3] + o), fill=skin_line)
    cv.ellipse(face_box, fill=skin)
    cv.ellipse(jaw_box, fill=skin)

    # --- beard / stubble (under the features) --------------------------------------------------
    beard = adult and not female and u[23] < 0.14
    if beard:
        beard_col = _mix(skin, hair, 0.55 if u[24] < 0.5 else 0.3)
        cv.chord(jaw_box, 15, 165, beard_col)

    # --- eyes -----------------------------------------------------------------------------------
    ey = top + fh * (0.47 + 0.03 * u[25])
    ex_off = fw * (0.205 + 0.03 * u[26])
    ew = fw * (0.17 + 0.03 * u[27]) * (1.1 if child else 1.0)
    eh = ew * (0.40 + 0.14 * u[28])
    gaze = (u[29] - 0.5) * ew * 0.12
    for s in (-1, 1):
        ex = cx + s * ex_off
        cv.ellipse((ex - ew / 2, ey - eh / 2, ex + ew / 2, ey + eh / 2), fill=(246, 244, 238))
        r = eh * 0.46
        cv.ellipse((ex + gaze - r, ey - r, ex + gaze + r, ey + r), fill=iris)
        p = r * 0.5
        cv.ellipse((ex + gaze - p, ey - p, ex + gaze + p, ey + p), fill=(12, 10, 10))
        h = r * 0.22
        cv.ellipse((ex + gaze + r * 0.3 - h, ey - r * 0.35 - h, ex + gaze + r * 0.3 + h, ey - r * 0.35 + h),
                   fill=(250, 250, 250))
        cv.arc((ex - ew / 2, ey - eh / 2, ex + ew / 2, ey + eh / 2), 185, 355, (34, 26, 24), 1.6)
        cv.arc((ex - ew / 2, ey - eh / 2 - eh * 0.5, ex + ew / 2, ey + eh / 2), 205, 335, skin_line, 0.7)
        if age >= 45:  # bags under the eyes
            cv.arc((ex - ew * 0.4, ey, ex + ew * 0.4, ey + eh * 0.9), 30, 150, skin_shadow, 0.8)

    # --- brows ----------------------------------------------------------------------------------
    by = ey - fh * (0.085 + 0.025 * u[30])
    bthick = (2.0 + 1.2 * u[31]) if female else (3.0 + 2.2 * u[31])
    arch = fh * (0.012 + 0.02 * u[32])
    tilt = (u[33] - 0.5) * 4
    for s in (-1, 1):
        inner = (cx + s * (ex_off - ew * 0.55), by + 1.5 - tilt * 0.3)
        mid = (cx + s * ex_off, by - arch * 2)
        outer = (cx + s * (ex_off + ew * 0.62), by + 1 + tilt * 0.5)
        cv.line(_bezier(inner, mid, outer, 8), brow, bthick)

    # --- nose -----------------------------------------------------------------------------------
    ny = top + fh * (0.67 + 0.03 * u[34])
    nw = fw * (0.16 + 0.07 * u[35])
    side = 1 if u[36] < 0.5 else -1
    cv.line(_bezier((cx + side * ex_off * 0.35, ey - eh * 0.3), (cx + side * nw * 0.25, ny - fh * 0.1),
                    (cx + side * nw * 0.2, ny - fh * 0.02), 6), skin_shadow, 1.2)
    cv.arc((cx - nw / 2, ny - nw * 0.45, cx + nw / 2, ny + nw * 0.2), 15, 165, skin_line, 1.3)
    for s in (-1, 1):
        nx = cx + s * nw * 0.2
        cv.ellipse((nx - nw * 0.11, ny - nw * 0.08, nx + nw * 0.11, ny + nw * 0.08), fill=_shade(skin, 0.55))

    # --- wrinkles -------------------------------------------------------------------------------
    if age >= 35:
        k = min(1.0, (age - 35) / 35)
        wc = _mix(skin, skin_line, 0.35 + 0.5 * k)
        cv.arc((cx - nw * 1.6, ny - fh * 0.06, cx - nw * 0.3, ny + fh * 0.16), 110, 200, wc, 1.0)
        cv.arc((cx + nw * 0.3, ny - fh * 0.06, cx + nw * 1.6, ny + fh * 0.16), 340, 70, wc, 1.0)
        if age >= 50:
            for i in range(1 + int(2 * k)):
                fy = top + fh * (0.2 + 0.045 * i)
                cv.arc((cx - fw * 0.26, fy, cx + fw * 0.26, fy + fh * 0.08), 200, 340, wc, 0.9)

    # --- mouth ----------------------------------------------------------------------------------
    my = top + fh * (0.80 + 0.025 * u[37])
    mw = fw * (0.28 + 0.08 * u[38])
    mh = fh * (0.025 + 0.02 * u[39]) * (1.25 if female else 1.0)
    smile = fh * 0.015 * u[40]
    cv.chord((cx - mw / 2, my - mh, cx + mw / 2, my + mh), 180, 360, _shade(lip, 0.9))
    cv.chord((cx - mw * 0.42, my - mh * 1.3, cx + mw * 0.42, my + mh * 1.5), 0, 180, lip)
    cv.arc((cx - mw / 2, my - smile - 1, cx + mw / 2, my + smile + 1), 0, 180, _shade(lip, 0.55), 1.1)
    if adult and not female and u[41] < 0.16:  # moustache
        cv.chord((cx - mw * 0.6, my - mh - fh * 0.06, cx + mw * 0.6, my - mh * 0.2 + fh * 0.02), 180, 360,
                 hair)

    # --- front hair -----------------------------------------------------------------------------
    if bald:
        thick = 4 + 5 * u[17]
        for s in (-1, 1):  # what is left: a crescent above and behind each ear
            n = 12
            outer, inner = [], []
            for i in range(n + 1):
                t = i / n
                a = math.radians(150 + 62 * t)
                r_in = 1 - 0.03
                bulge = thick * math.sin(math.pi * t) ** 0.7
                outer.append((cx + (fw / 2 + bulge) * math.cos(a), cy + (fh / 2 + bulge) * math.sin(a)))
                inner.append((cx + fw / 2 * r_in * math.cos(a), cy + fh / 2 * r_in * math.sin(a)))
            poly = outer + inner[::-1]
            if s > 0:
                poly = [(2 * cx - x, y) for x, y in poly]
            cv.polygon(poly, hair)
    else:
        side_y = top + fh * (0.62 if (long_hair or bob) else 0.40 + 0.04 * u[42])
        s_ang = math.degrees(math.asin(max(-1.0, min(1.0, (cy - side_y) / hb))))
        outer = _arc_points(cx, cy, ha, hb, 180 + s_ang, 360 - s_ang, 28)
        dy = (side_y - cy) / (fh / 2)
        edge = fw / 2 * math.sqrt(max(0.0, 1 - dy * dy)) - (0 if (long_hair or bob) else 2)
        hl_y = top + fh * (hairline + (0.14 if fringe else 0))
        right = (cx + edge, side_y)
        left = (cx - edge, side_y)
        peak = (cx + part * fw * 0.25, hl_y - fh * (0.02 if fringe else 0.06) * abs(part))
        # the hairline runs from the right temple through the forehead to the left temple
        temple_r = (cx + edge * 0.95, top + fh * (hairline + 0.08))
        temple_l = (cx - edge * 0.95, top + fh * (hairline + 0.08))
        inner = _bezier(right, temple_r, peak, 10)[:-1] + _bezier(peak, temple_l, left, 10)
        if fringe:
            inner = _bezier(right, (cx + edge, hl_y), (cx, hl_y + fh * 0.02), 10)[:-1] + \
                _bezier((cx, hl_y + fh * 0.02), (cx - edge, hl_y), left, 10)
        cv.polygon(outer + inner, hair)
        if not (long_hair or bob) and not receding:  # sideburns
            for s in (-1, 1):
                x_out = cx + s * (fw / 2 + 0.5)
                x_in = cx + s * (fw / 2 - 6)
                cv.polygon([(x_out, side_y - 6), (x_in, side_y - 6), (x_in, side_y + 10),
                            (x_out, side_y + 14)], hair)

    # --- glasses --------------------------------------------------------------------------------
    if age >= 8 and u[43] < (0.14 + (0.22 if age >= 45 else 0)):
        frame = _FRAME_COLOURS[int(u[44] * len(_FRAME_COLOURS))]
        gw, gh = ew * 1.55, ew * (0.85 + 0.25 * u[45])
        thick = 1.3 + 1.2 * u[46]
        for s in (-1, 1):
            ex = cx + s * ex_off
            cv.rounded((ex - gw / 2, ey - gh * 0.5, ex + gw / 2, ey + gh * 0.5), gh * 0.3,
                       outline=frame, width=thick)
            cv.line([(ex + s * gw / 2, ey - gh * 0.2), (cx + s * (fw / 2 + 1), ey - gh * 0.25)], frame, thick)
        bridge = (cx - ex_off + gw / 2, ey - gh * 0.4, cx + ex_off - gw / 2, ey + gh * 0.1)
        cv.arc(bridge, 200, 340, frame, thick)

    return cv.image.reduce(_SUPERSAMPLE)


def _draw_clothes(cv: _Canvas, u: list[float], female: bool, adult: bool, cx: float,
                  sy: float, half: float, neck_w: float, neck_col: Color) -> None:
    """Shoulders, shirt and collar; the neck has already been drawn."""
    shirt = _SHIRT_COLOURS[int(u[47] * len(_SHIRT_COLOURS))]
    dark = _shade(shirt, 0.72)
    style = int(u[48] * 3) if adult else int(u[48] * 2)  # 0 collar shirt, 1 crew neck, 2 jacket
    body = (cx - half, sy, cx + half, sy + 200)
    if style == 2:
        jacket = shirt if sum(shirt) < 300 else (44, 48, 60)
        cv.ellipse(body, fill=jacket)
        # white shirt in a V, with a tie for men
        white = (246, 246, 246)
        cv.polygon([(cx - neck_w * 0.75, sy - 2), (cx + neck_w * 0.75, sy - 2), (cx, sy + 70)], white)
        cv.polygon([(cx - neck_w / 2, sy - 6), (cx + neck_w / 2, sy - 6), (cx, sy + 14)], neck_col)
        if not female:
            tie = (128, 30, 40) if u[51] < 0.5 else (36, 60, 110)
            cv.polygon([(cx - 6, sy + 10), (cx + 6, sy + 10), (cx + 9, sy + 60), (cx, sy + 70),
                        (cx - 9, sy + 60)], tie)
            cv.polygon([(cx - 7, sy + 2), (cx + 7, sy + 2), (cx + 5, sy + 12), (cx - 5, sy + 12)], tie)
        for s in (-1, 1):  # lapels
            lapel = [(cx + s * neck_w * 0.75, sy - 4), (cx + s * neck_w * 1.25, sy + 8), (cx + s * 4, sy + 74)]
            cv.polygon(lapel, _shade(jacket, 0.8))
            edge = [(cx + s * neck_w * 0.62, sy - 4), (cx + s * neck_w * 0.78, sy - 4), (cx + s * 3, sy + 70)]
            cv.polygon(edge, white)
    elif style == 1:
        cv.ellipse(body, fill=shirt)
        cv.chord((cx - neck_w * 0.62, sy - 18, cx + neck_w * 0.62, sy + 16), 0, 180, neck_col)
        cv.arc((cx - neck_w * 0.62, sy - 18, cx + neck_w * 0.62, sy + 16), 0, 180, dark, 3)
    else:
        cv.ellipse(body, fill=shirt)
        cv.polygon([(cx - neck_w * 0.5, sy - 8), (cx + neck_w * 0.5, sy - 8), (cx, sy + 34)], neck_col)
        collar = shirt if u[49] < 0.7 else (248, 248, 248)
        for s in (-1, 1):
            cv.polygon([(cx + s * (neck_w * 0.5 + 2), sy - 16), (cx + s * (neck_w * 0.5 + 14), sy + 4),
                        (cx + s * 2, sy + 36), (cx + s * neck_w * 0.45, sy - 2)], _shade(collar, 0.8))
            cv.polygon([(cx + s * (neck_w * 0.5), sy - 14), (cx + s * (neck_w * 0.5 + 11), sy + 3),
                        (cx + s * 2, sy + 33), (cx + s * neck_w * 0.42, sy - 1)], collar)
        if u[50] < 0.6:  # buttons
            for i in range(2):
                by = sy + 48 + 22 * i
                cv.ellipse((cx - 2, by - 2, cx + 2, by + 2), fill=dark)


# --------------------------------------------------------------------------------------------
# Fonts and text
# --------------------------------------------------------------------------------------------

_FONT_DIRS = (
    "/usr/share/fonts/truetype/dejavu",
    "/usr/share/fonts/dejavu",
    "/usr/share/fonts/TTF",
    "/usr/share/fonts/truetype/ttf-dejavu",
    "/usr/local/share/fonts",
    "/usr/share/fonts/dejavu-sans-fonts",
    "/usr/share/fonts/dejavu-sans-mono-fonts",
    "/opt/homebrew/share/fonts",
    "/Library/Fonts",
    str(Path.home() / ".local/share/fonts"),
)
_FONT_FILES = {
    "regular": ("DejaVuSans.ttf",),
    "bold": ("DejaVuSans-Bold.ttf", "DejaVuSans.ttf"),
    "italic": ("DejaVuSans-Oblique.ttf", "DejaVuSans.ttf"),
    "mono": ("DejaVuSansMono.ttf",),
}

_Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@functools.lru_cache(maxsize=None)
def _font_path(filename: str) -> str | None:
    for directory in _FONT_DIRS:
        path = Path(directory) / filename
        if path.is_file():
            return str(path)
    return None


@functools.lru_cache(maxsize=256)
def _font(style: str, size: int) -> _Font:
    """DejaVu (for the Vietnamese diacritics) in one of the styles, else Pillow's default font."""
    for filename in _FONT_FILES[style]:
        path = _font_path(filename)
        if path is not None:
            try:
                return ImageFont.truetype(path, size)
            except OSError:
                continue
    return ImageFont.load_default(size=size)


def _nfc(text: Any) -> str:
    return unicodedata.normalize("NFC", "" if text is None else str(text)).strip()


def _wrap(text: str, font: _Font, max_width: float) -> list[str]:
    """Greedy word wrap; a word longer than the line is cut."""
    lines: list[str] = []
    for para in text.split("\n"):
        words = para.split()
        if not words:
            lines.append("")
            continue
        current = ""
        for word in words:
            candidate = f"{current} {word}" if current else word
            if font.getlength(candidate) <= max_width:
                current = candidate
                continue
            if current:
                lines.append(current)
            while len(word) > 1 and font.getlength(word) > max_width:
                cut = len(word) - 1
                while cut > 1 and font.getlength(word[:cut]) > max_width:
                    cut -= 1
                lines.append(word[:cut])
                word = word[cut:]
            current = word
        lines.append(current)
    return lines


def _wrap_balanced(text: str, font: _Font, max_width: float) -> list[str]:
    """Like _wrap, but with lines of similar length (for centred headings)."""
    lines: list[str] = []
    for para in text.split("\n"):
        greedy = _wrap(para, font, max_width)
        if len(greedy) > 1:
            lo, hi = max_width / len(greedy), max_width
            while hi - lo > 2:
                mid = (lo + hi) / 2
                if len(_wrap(para, font, mid)) <= len(greedy):
                    hi = mid
                else:
                    lo = mid
            greedy = _wrap(para, font, hi)
        lines.extend(greedy)
    return lines


def _draw_fitted(draw: ImageDraw.ImageDraw, text: str, box: Box, *, style: str, size: int,
                 min_size: int, fill: Color, align: str = "left", spacing: float = 1.2) -> None:
    """Draw text wrapped within box, shrinking the font down to min_size; cut with "…" beyond."""
    text = _nfc(text)
    if not text:
        return
    x0, y0, x1, y1 = box
    width, height = x1 - x0, y1 - y0
    fits = False
    for size_now in range(size, min_size - 1, -1):
        font = _font(style, size_now)
        pitch = round(size_now * spacing)
        lines = _wrap(text, font, width)
        if (len(lines) - 1) * pitch + size_now <= height:
            fits = True
            break
    if fits and align == "center" and len(lines) > 1:
        lines = _wrap_balanced(text, font, width)
    elif not fits:
        keep = max(1, int((height - size_now) // pitch) + 1)
        if len(lines) > keep:
            lines = lines[:keep]
            last = lines[-1]
            while last and font.getlength(last + "…") > width:
                last = last[:-1]
            lines[-1] = last.rstrip() + "…"
    for i, line in enumerate(lines):
        y = y0 + i * pitch
        if align == "center":
            draw.text(((x0 + x1) / 2, y), line, font=font, fill=fill, anchor="ma")
        else:
            draw.text((x0, y), line, font=font, fill=fill, anchor="la")


def _draw_label(draw: ImageDraw.ImageDraw, xy: tuple[float, float], vi: str, en: str, size: int,
                colon: bool = True) -> float:
    """A bilingual label "Vietnamese / English:" (English in italics); returns the end x."""
    x, y = xy
    regular, italic = _font("regular", size), _font("italic", size)
    head = f"{vi} / "
    draw.text((x, y), head, font=regular, fill=_LABEL, anchor="la")
    x += regular.getlength(head)
    tail = f"{en}:" if colon else en
    draw.text((x, y), tail, font=italic, fill=_LABEL, anchor="la")
    return x + italic.getlength(tail)


# --------------------------------------------------------------------------------------------
# Card templates (everything that does not depend on the card, cached)
# --------------------------------------------------------------------------------------------

_W, _H = CARD_SIZE
_RADIUS = 36  # 3.18 mm corner radius
_LABEL: Color = (45, 45, 52)
_VALUE: Color = (8, 8, 12)
_RED: Color = (196, 22, 36)
_PID_RED: Color = (170, 18, 30)
_BORDER: Color = (176, 182, 190)
_OUTSIDE: Color = (255, 255, 255)

# Front layout (pixels)
_PHOTO_BOX = (38, 236, 238, 502)  # 200 x 266, 3:4
_QR_BOX = (808, 22, 990, 204)
_FIELDS_X = 268
_FIELDS_RIGHT = 988
_SEX_NAT_X = 560  # "Quốc tịch / Nationality" shares the line with the sex
_BACK_MRZ_TOP = 440
_FP_BOXES = ((646, 30, 806, 236), (828, 30, 988, 236))
_PNG_LEVEL = 1  # zlib level: fast; the cards are for display, not archives


@dataclass(frozen=True, slots=True)
class _Slot:
    """Where one printed field goes: its label and the box its value is fitted into."""

    box: Box  # the value's box; with ``inline``, x0 is replaced by the end of the label + inline
    label_at: tuple[float, float] | None = None  # None: the value has no label (the authority)
    label_size: int = 18
    inline: float | None = None  # the value follows its label on the same line
    size: int = 22
    min_size: int = 14
    fill: Color = _VALUE
    spacing: float = 1.2
    align: str = "left"
    upper: bool = False


@dataclass(frozen=True, slots=True)
class _Layout:
    """The pixel layout of one card model: a slot per field key, the QR box, the decorations."""

    slots: Mapping[str, _Slot]
    qr_box: Box  # on the face the model prints the QR code on
    chip_symbol: Box | None = None  # a small chip symbol on the front (2023 model)
    seal: tuple[int, int] | None = None  # seal and signature under the issuing authority (back)


_FX, _FR = _FIELDS_X, _FIELDS_RIGHT
_LAYOUTS: dict[str, _Layout] = {
    "2021": _Layout(
        slots={
            "pid": _Slot((0, 238, _FR - 200, 276), (_FX, 246), inline=14, size=34, min_size=20, fill=_PID_RED),
            "full_name": _Slot((_FX, 316, _FR, 352), (_FX, 290), size=30, min_size=16, upper=True),
            "date_of_birth": _Slot((0, 357, _FR, 386), (_FX, 360), inline=10),
            "sex": _Slot((0, 391, _SEX_NAT_X - 10, 420), (_FX, 394), inline=10),
            "nationality": _Slot((0, 391, _FR, 420), (_SEX_NAT_X, 394), inline=10),
            "hometown": _Slot((_FX, 452, _FR, 490), (_FX, 428), size=21, spacing=1.18),
            "residence": _Slot((_FX, 522, _FR, 612), (_FX, 498), size=21, spacing=1.18),
            "expiry_date": _Slot((28, 542, 258, 604), (28, 520), label_size=15, min_size=13),
            "identifying_marks": _Slot((40, 186, 620, 244), (40, 160), size=20, min_size=13),
            "issue_date": _Slot((0, 248, 630, 278), (40, 252), inline=10),
            "issuing_authority": _Slot((30, 290, 630, 372), size=17, min_size=11, align="center",
                                       spacing=1.15),
        },
        qr_box=_QR_BOX, seal=(262, 404),
    ),
    "2023": _Layout(
        slots={
            "pid": _Slot((_FX, 268, _FR, 306), (_FX, 242), size=34, min_size=20, fill=_PID_RED),
            "full_name": _Slot((_FX, 342, _FR, 380), (_FX, 316), size=30, min_size=16, upper=True),
            "date_of_birth": _Slot((0, 393, _FR, 422), (_FX, 396), inline=10),
            "sex": _Slot((0, 435, _SEX_NAT_X - 10, 464), (_FX, 438), inline=10),
            "nationality": _Slot((0, 435, _FR, 464), (_SEX_NAT_X, 438), inline=10),
            "residence": _Slot((40, 184, 748, 246), (40, 158), size=20, min_size=12, spacing=1.15),
            "birth_registration_place": _Slot((40, 278, 748, 316), (40, 252), size=20, min_size=12,
                                              spacing=1.15),
            "issue_date": _Slot((0, 320, 580, 350), (40, 324), inline=10),
            "expiry_date": _Slot((0, 360, 580, 390), (40, 364), inline=10, min_size=13),
            "issuing_authority": _Slot((590, 330, 990, 410), size=20, min_size=11, align="center",
                                       spacing=1.2),
        },
        qr_box=(772, 24, 990, 242), chip_symbol=(872, 70, 968, 142),
    ),
}


def _guilloche(front: bool) -> np.ndarray:
    """A pale security-print style background (an H x W x 3 uint8 array)."""
    y, x = np.mgrid[0:_H, 0:_W].astype(np.float32)
    if front:
        base = np.array([236, 243, 246], np.float32)
        tint_a = np.array([150, 196, 206], np.float32)
        tint_b = np.array([232, 176, 168], np.float32)
        ccx, ccy = _W * 0.58, _H * 0.6
    else:
        base = np.array([240, 242, 236], np.float32)
        tint_a = np.array([170, 200, 176], np.float32)
        tint_b = np.array([214, 190, 222], np.float32)
        ccx, ccy = _W * 0.5, _H * 0.36
    # soft vertical gradient
    grad = (y / _H)[..., None]
    img = base[None, None, :] * (1 - 0.035 * grad)
    # wavy line families
    w1 = np.abs(np.sin(x * 0.045 + 2.6 * np.sin(y * 0.021) + 1.3 * np.sin(x * 0.007)))
    w2 = np.abs(np.sin(y * 0.05 + 2.2 * np.sin(x * 0.017 + 1.0)))
    # a round "drum" rosette
    dx, dy = x - ccx, y - ccy
    r = np.sqrt(dx * dx + dy * dy)
    theta = np.arctan2(dy, dx)
    w3 = np.abs(np.sin(r * 0.11 + 1.4 * np.sin(theta * 16)))
    fade = np.clip(1.15 - r / 330, 0, 1)
    a1 = np.clip((0.10 - w1) / 0.10, 0, 1) * 0.16
    a2 = np.clip((0.08 - w2) / 0.08, 0, 1) * 0.10
    a3 = np.clip((0.12 - w3) / 0.12, 0, 1) * 0.22 * fade
    for alpha, tint in ((a1, tint_a), (a2, tint_b), (a3, tint_a)):
        img = img * (1 - alpha[..., None]) + tint[None, None, :] * alpha[..., None]
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=1)
def _corner_mask() -> Image.Image:
    """White outside the rounded card outline (L mode, 255 = outside)."""
    ss = 4
    mask = Image.new("L", (_W * ss, _H * ss), 255)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, _W * ss - 1, _H * ss - 1), radius=_RADIUS * ss, fill=0)
    return mask.resize((_W, _H), Image.Resampling.BOX)


def _finish_edges(img: Image.Image) -> None:
    """Rounded corners and a thin edge line, in place."""
    draw = ImageDraw.Draw(img)
    draw.rounded_rectangle((1, 1, _W - 2, _H - 2), radius=_RADIUS - 1, outline=_BORDER, width=2)
    img.paste(_OUTSIDE, (0, 0, _W, _H), _corner_mask())


def _watermark(img: Image.Image, centre: tuple[float, float], size: int = 88) -> None:
    """A faint, rotated "MẪU / SPECIMEN" across the card, in place (drawn under the content)."""
    font = _font("bold", size)
    text = "MẪU / SPECIMEN"
    tw = int(font.getlength(text)) + 20
    layer = Image.new("L", (tw, size * 2), 0)
    ImageDraw.Draw(layer).text((tw / 2, size), text, font=font, fill=255, anchor="mm")
    layer = layer.rotate(14, resample=Image.Resampling.BICUBIC, expand=True)
    alpha = layer.point(lambda v: v * 30 // 255)
    colour = Image.new("RGB", layer.size, (205, 40, 50))
    img.paste(colour, (int(centre[0] - layer.width / 2), int(centre[1] - layer.height / 2)), alpha)


def _star(cx: float, cy: float, r: float, rotation: float = -90.0) -> list[tuple[float, float]]:
    pts = []
    for i in range(10):
        rr = r if i % 2 == 0 else r * 0.382
        a = math.radians(rotation + i * 36)
        pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
    return pts


@functools.lru_cache(maxsize=4)
def _emblem(diameter: int) -> Image.Image:
    """A simplified national emblem: red disc, yellow star, gold rim, a cog and rice ears (RGBA)."""
    ss = 4
    d = diameter * ss
    img = Image.new("RGBA", (d, d), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    gold, deep_gold, red = (232, 186, 40, 255), (176, 128, 22, 255), (214, 30, 38, 255)
    c = d / 2
    draw.ellipse((0, 0, d - 1, d - 1), fill=gold)
    # rice ears: a ring of small ovals
    for i in range(28):
        a = math.radians(110 + i * (320 / 27))
        rr = d * 0.43
        x, y = c + rr * math.cos(a), c + rr * math.sin(a)
        e = d * 0.045
        draw.ellipse((x - e, y - e * 1.6, x + e, y + e * 1.6), fill=deep_gold)
    inner = d * 0.34
    draw.ellipse((c - inner, c - inner, c + inner, c + inner), fill=red)
    draw.polygon(_star(c, c - d * 0.04, inner * 0.78), fill=(255, 221, 0, 255))
    # a half cog at the bottom
    cog_r, cog_y = d * 0.13, c + inner * 0.88
    for i in range(9):
        a = math.radians(180 + i * 22.5)
        x, y = c + cog_r * 1.25 * math.cos(a), cog_y + cog_r * 1.25 * math.sin(a)
        t = d * 0.022
        draw.rectangle((x - t, y - t, x + t, y + t), fill=deep_gold)
    draw.pieslice((c - cog_r, cog_y - cog_r, c + cog_r, cog_y + cog_r), 180, 360, fill=gold)
    hub = cog_r * 0.35
    draw.ellipse((c - hub, cog_y - hub, c + hub, cog_y + hub), fill=deep_gold)
    return img.resize((diameter, diameter), Image.Resampling.LANCZOS)


def _draw_labels(draw: ImageDraw.ImageDraw, model: card_model.CardModel, face: str) -> None:
    layout = _LAYOUTS[model.name]
    for field in model.on(face):
        slot = layout.slots[field.key]
        if field.labelled and slot.label_at is not None:
            _draw_label(draw, slot.label_at, field.vi, field.en, slot.label_size)


@functools.lru_cache(maxsize=4)
def _front_template(model_name: str) -> Image.Image:
    model = card_model.named(model_name)
    layout = _LAYOUTS[model.name]
    img = Image.fromarray(_guilloche(front=True), "RGB")
    _watermark(img, (_W * 0.6, _H * 0.62))
    draw = ImageDraw.Draw(img)
    emblem = _emblem(132)
    img.paste(emblem, (70, 30), emblem)
    # header, centred between the emblem and the QR code
    hx = 502
    draw.text((hx, 30), "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", font=_font("bold", 25), fill=_VALUE,
              anchor="ma")
    draw.text((hx, 62), "Độc lập - Tự do - Hạnh phúc", font=_font("bold", 22), fill=_VALUE, anchor="ma")
    draw.line((hx - 150, 91, hx + 150, 91), fill=_VALUE, width=2)
    draw.text((hx, 100), "SOCIALIST REPUBLIC OF VIET NAM", font=_font("regular", 19), fill=_LABEL,
              anchor="ma")
    draw.text((hx, 124), "Independence - Freedom - Happiness", font=_font("italic", 17), fill=_LABEL,
              anchor="ma")
    draw.text((hx, 154), model.title_vi, font=_font("bold", 40), fill=_RED, anchor="ma")
    draw.text((hx, 202), model.title_en, font=_font("bold", 21), fill=_RED, anchor="ma")
    if layout.chip_symbol is not None:
        _draw_chip(draw, layout.chip_symbol)
    # photo frame
    x0, y0, x1, y1 = _PHOTO_BOX
    draw.rectangle((x0 - 3, y0 - 3, x1 + 2, y1 + 2), fill=(250, 250, 250), outline=(150, 156, 166), width=1)
    _draw_labels(draw, model, "front")
    _finish_edges(img)
    return img


def _label_end(vi: str, en: str, size: int) -> float:
    return _font("regular", size).getlength(f"{vi} / ") + _font("italic", size).getlength(f"{en}:")


def _fingerprint(size: tuple[int, int], seed: int) -> Image.Image:
    """A drawn, synthetic fingerprint (concentric whorl/loop ridges), L mode."""
    w, h = size
    rng = random.Random(seed)
    img = Image.new("L", size, 255)
    draw = ImageDraw.Draw(img)
    cx, cy = w * (0.45 + 0.1 * rng.random()), h * (0.42 + 0.1 * rng.random())
    step = 5.5 + rng.random()
    stretch = 1.25 + 0.2 * rng.random()
    for i in range(1, 30):
        r = i * step
        box = (cx - r, cy - r * stretch, cx + r, cy + r * stretch * 0.9)
        gap = rng.uniform(20, 60)
        start = rng.uniform(0, 360)
        draw.arc(box, start, start + 360 - gap, fill=120, width=2)
    # an oval finger outline: clear outside
    mask = Image.new("L", size, 255)
    ImageDraw.Draw(mask).ellipse((w * 0.1, h * 0.04, w * 0.9, h * 0.98), fill=0)
    img.paste(255, (0, 0, w, h), mask)
    return img



@functools.lru_cache(maxsize=4)
def _back_template(model_name: str) -> Image.Image:
    model = card_model.named(model_name)
    layout = _LAYOUTS[model.name]
    img = Image.fromarray(_guilloche(front=False), "RGB")
    _watermark(img, (_W * 0.42, _H * 0.36), size=72)
    draw = ImageDraw.Draw(img)
    if model.chip_face == "back":  # the chip's contact pad
        _draw_chip(draw, (46, 34, 196, 142))
    if model.fingerprints:
        for i, (box, vi, en) in enumerate(zip(_FP_BOXES, ("Ngón trỏ trái", "Ngón trỏ phải"),
                                              ("Left index finger", "Right index finger"))):
            x0, y0, x1, y1 = box
            draw.rectangle(box, fill=(252, 252, 250), outline=(150, 156, 166), width=1)
            fp = _fingerprint((x1 - x0 - 12, y1 - y0 - 12), 1234 + i)
            img.paste((70, 74, 84), (x0 + 6, y0 + 6), fp.point(lambda v: 255 - v))
            draw.text(((x0 + x1) / 2, y1 + 8), vi, font=_font("regular", 15), fill=_LABEL, anchor="ma")
            draw.text(((x0 + x1) / 2, y1 + 27), en, font=_font("italic", 14), fill=_LABEL, anchor="ma")
    _draw_labels(draw, model, "back")
    if layout.seal is not None:  # seal and signature under the issuing authority
        seal_c, seal_r = layout.seal, 29
        draw.ellipse((seal_c[0] - seal_r, seal_c[1] - seal_r, seal_c[0] + seal_r, seal_c[1] + seal_r),
                     outline=(214, 58, 62), width=3)
        inner = seal_r - 8
        draw.ellipse((seal_c[0] - inner, seal_c[1] - inner, seal_c[0] + inner, seal_c[1] + inner),
                     outline=(214, 58, 62), width=1)
        draw.polygon(_star(seal_c[0], seal_c[1], 14), fill=(214, 58, 62))
        sx, sy = seal_c[0] + 14, seal_c[1] + 4
        sig = [(sx + t * 2.2, sy + 10 * math.sin(t * 0.35) - t * 0.18 + 6 * math.sin(t * 0.9))
               for t in range(60)]
        draw.line(sig, fill=(30, 40, 110), width=2, joint="curve")
    # MRZ band
    draw.rectangle((0, _BACK_MRZ_TOP, _W, _H), fill=(250, 250, 248))
    draw.line((0, _BACK_MRZ_TOP, _W, _BACK_MRZ_TOP), fill=(200, 204, 210), width=1)
    _finish_edges(img)
    return img


def _draw_chip(draw: ImageDraw.ImageDraw, box: Box) -> None:
    """An ISO 7816 style 8-contact pad."""
    x0, y0, x1, y1 = box
    edge, fill, line = (150, 112, 30), (222, 184, 92), (160, 122, 44)
    draw.rounded_rectangle(box, radius=18, fill=fill, outline=edge, width=2)
    mx, my = (x0 + x1) / 2, (y0 + y1) / 2
    w = x1 - x0
    # central pad and the six/eight contacts around it
    draw.rounded_rectangle((mx - w * 0.16, y0 + 22, mx + w * 0.16, y1 - 22), radius=6, outline=line, width=3)
    draw.line((x0 + 2, my, mx - w * 0.16, my), fill=line, width=3)
    draw.line((mx + w * 0.16, my, x1 - 2, my), fill=line, width=3)
    for yy in (y0 + (y1 - y0) * 0.3, y1 - (y1 - y0) * 0.3):
        draw.line((x0 + 2, yy, mx - w * 0.16, yy), fill=line, width=3)
        draw.line((mx + w * 0.16, yy, x1 - 2, yy), fill=line, width=3)
    draw.line((mx, y0 + 2, mx, y0 + 22), fill=line, width=3)
    draw.line((mx, y1 - 22, mx, y1 - 2), fill=line, width=3)


# --------------------------------------------------------------------------------------------
# Card faces
# --------------------------------------------------------------------------------------------


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=_PNG_LEVEL)
    return buf.getvalue()



def _qr_image(text: str, box_size: int) -> Image.Image:
    """The QR code (error level M) with a four-module quiet zone, whole pixels per module."""
    qr = segno.make(text, error="m", micro=False, boost_error=False)
    modules = np.array([list(row) for row in qr.matrix_iter(scale=1, border=4)], dtype=np.uint8)
    n = modules.shape[0]
    scale = box_size // n
    if scale < 1:
        raise ValueError(f"QR text too long for the card ({len(text)} characters, version {qr.version})")
    pixels = np.where(modules == 1, 0, 255).astype(np.uint8)
    pixels = np.repeat(np.repeat(pixels, scale, axis=0), scale, axis=1)
    return Image.fromarray(pixels, "L")


def _photo(photo_jpeg: bytes, size: tuple[int, int]) -> Image.Image:
    try:
        with Image.open(io.BytesIO(photo_jpeg)) as src:
            src.draft("RGB", (size[0] * 2, size[1] * 2))
            rgb = src.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"photo is not a readable image: {exc}") from exc
    return ImageOps.fit(rgb, size, Image.Resampling.BICUBIC, centering=(0.5, 0.4))


def _field(card: Mapping[str, Any], key: str) -> str:
    return _nfc(card.get(key, ""))


def _model(card: Mapping[str, Any]) -> card_model.CardModel:
    """The model named by ``card["model"]``; cards recorded before models were named are 2021."""
    return card_model.named(card.get("model"))


def _draw_qr(img: Image.Image, box: Box, qr_text: str) -> None:
    """The QR code, centred in its box on a white square."""
    qx0, qy0, qx1, qy1 = box
    qr = _qr_image(unicodedata.normalize("NFC", qr_text), min(qx1 - qx0, qy1 - qy0))
    img.paste(qr, (qx0 + (qx1 - qx0 - qr.width) // 2, qy0 + (qy1 - qy0 - qr.height) // 2))


def _draw_values(draw: ImageDraw.ImageDraw, card: Mapping[str, Any], model: card_model.CardModel,
                 face: str) -> None:
    """Every field of the model on that face, each fitted into its slot."""
    layout = _LAYOUTS[model.name]
    for field in model.on(face):
        slot = layout.slots[field.key]
        text = _field(card, field.key)
        if field.key == "issuing_authority":
            text = text.replace(" / ", "\n")
            if model.issuing_authority_en and text == model.issuing_authority:
                text = f"{text}\n{model.issuing_authority_en}"
        if slot.upper:
            text = text.upper()
        x0, y0, x1, y1 = slot.box
        if slot.inline is not None and slot.label_at is not None:
            x0 = slot.label_at[0] + _label_end(field.vi, field.en, slot.label_size) + slot.inline
        _draw_fitted(draw, text, (x0, y0, x1, y1), style="bold", size=slot.size, min_size=slot.min_size,
                     fill=slot.fill, align=slot.align, spacing=slot.spacing)


def render_front(card: Mapping[str, Any], photo_jpeg: bytes, qr_text: str | None) -> bytes:
    """The front of the card as PNG bytes of :data:`CARD_SIZE`.

    ``card`` is the card's printed fields; ``card["model"]`` names the model
    (:mod:`dinhdanh.cards.model`, "2021" when absent, ValueError when unknown), whose front fields
    are drawn (other keys are ignored). ``photo_jpeg`` is any image Pillow reads (empty: a blank
    photo box). ``qr_text`` is encoded at error level M when the model prints its QR code on the
    front (2021); None leaves the QR out.
    """
    model = _model(card)
    layout = _LAYOUTS[model.name]
    img = _front_template(model.name).copy()
    draw = ImageDraw.Draw(img)
    # photo
    x0, y0, x1, y1 = _PHOTO_BOX
    if photo_jpeg:
        img.paste(_photo(photo_jpeg, (x1 - x0, y1 - y0)), (x0, y0))
    else:
        draw.text(((x0 + x1) / 2, (y0 + y1) / 2), "ẢNH / PHOTO", font=_font("regular", 18),
                  fill=(150, 150, 150), anchor="mm")
    if qr_text is not None and model.qr_face == "front":
        _draw_qr(img, layout.qr_box, qr_text)
    _draw_values(draw, card, model, "front")
    return _png(img)


@functools.lru_cache(maxsize=8)
def _mrz_font(max_len: int, lines: int) -> tuple[_Font, int]:
    """The largest mono font whose ``max_len`` characters and ``lines`` lines fit the MRZ band."""
    width = _W - 2 * 56
    height = _H - _BACK_MRZ_TOP - 30
    size = 60
    while size > 10:
        font = _font("mono", size)
        pitch = round(size * 1.3)
        if font.getlength("<" * max_len) <= width and (lines - 1) * pitch + size <= height:
            return font, pitch
        size -= 1
    return _font("mono", size), round(size * 1.3)


def render_back(card: Mapping[str, Any], mrz_lines: Sequence[str], qr_text: str | None = None) -> bytes:
    """The back of the card as PNG bytes of :data:`CARD_SIZE`.

    Draws the back fields of the model ``card["model"]`` names (2021: identifying_marks, optional,
    issue_date and issuing_authority; 2023: residence, birth_registration_place, issue_date,
    expiry_date and issuing_authority), the QR code when the model prints it on the back (2023;
    ``qr_text`` None leaves it out) and the MRZ lines (3 x 30 for the TD1 card) in a monospaced
    font in the bottom band.
    """
    model = _model(card)
    layout = _LAYOUTS[model.name]
    img = _back_template(model.name).copy()
    draw = ImageDraw.Draw(img)
    if qr_text is not None and model.qr_face == "back":
        _draw_qr(img, layout.qr_box, qr_text)
    _draw_values(draw, card, model, "back")
    lines = [_nfc(line) for line in mrz_lines]
    if lines:
        font, pitch = _mrz_font(max(30, max(len(line) for line in lines)), max(3, len(lines)))
        x = (_W - font.getlength(max(lines, key=len))) / 2
        total = (len(lines) - 1) * pitch + getattr(font, "size", pitch)
        y = _BACK_MRZ_TOP + (_H - _BACK_MRZ_TOP - total) / 2 - 4
        for i, line in enumerate(lines):
            draw.text((x, y + i * pitch), line, font=font, fill=(10, 10, 10), anchor="la")
    return _png(img)
