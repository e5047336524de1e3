"""A result document as a PDF/A-2B file in Vietnamese: the standard layout of an administrative
document (Decree 30/2020: the agency and the national motto side by side, number, place and date,
title, body), the holder, the decision or the slip's content, and a QR code of the public
verification address. Pure: content in, bytes out; no database, no keys (``documents.sign`` signs).

PDF/A-2B as fpdf2 writes it (``enforce_compliance``): every font embedded (DejaVu Sans, shipped in
``fonts/``, subset to the glyphs used, with a ToUnicode map so the text can be extracted exactly),
XMP metadata carrying ``pdfaid:part`` 2 and ``pdfaid:conformance`` B, an sRGB output intent (the
ICC's sRGB2014 profile that fpdf2 ships), no encryption, no transparency in the QR image.
"""

from __future__ import annotations

import datetime as dt
import io
import unicodedata
from functools import lru_cache
from pathlib import Path

import segno
from fontTools.ttLib import TTFont
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from dinhdanh.documents.model import KINDS, LABELS, TITLES, Agency, DocumentContent
from dinhdanh.registry.errors import InvalidInput

__all__ = ["KINDS", "TITLES", "LABELS", "Agency", "DocumentContent", "render_pdf", "long_date", "short_date",
           "check_text", "verification_url"]

FONTS = Path(__file__).parent / "fonts"
REGULAR, BOLD = FONTS / "DejaVuSans.ttf", FONTS / "DejaVuSans-Bold.ttf"

MAX_TEXT = 4000


def verification_url(base_url: str, code: str) -> str:
    return f"{base_url.rstrip('/')}/api/v1/results/{code}"


def short_date(day: dt.date) -> str:
    """``05/12/2026``: the day first, as Vietnamese documents write it."""
    return f"{day.day:02d}/{day.month:02d}/{day.year}"


def long_date(day: dt.date) -> str:
    """``ngày 05 tháng 12 năm 2026``: the date line of an administrative document (days under 10
    and months 1-2 take a leading zero, Decree 30/2020 Appendix I)."""
    month = f"{day.month:02d}" if day.month < 3 else str(day.month)
    return f"ngày {day.day:02d} tháng {month} năm {day.year}"


@lru_cache(maxsize=1)
def _printable() -> frozenset[int]:
    """The code points both shipped fonts can draw."""
    regular = set(TTFont(REGULAR, lazy=True).getBestCmap())
    bold = set(TTFont(BOLD, lazy=True).getBestCmap())
    return frozenset(regular & bold)


def check_text(value: str | None, field: str, *, max_length: int = MAX_TEXT, lines: bool = False,
               required: bool = False) -> str | None:
    """NFC text that the document's fonts can print: no control characters (line breaks only where
    ``lines``), at most ``max_length`` characters, or InvalidInput naming ``field``."""
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"{field} must be text.", field=field)
    if value is None or not value.strip():
        if required:
            raise InvalidInput(f"{field} is required for this document.", field=field)
        return None
    text = unicodedata.normalize("NFC", value.strip())
    if len(text) > max_length:
        raise InvalidInput(f"{field} is longer than {max_length} characters.", field=field)
    printable = _printable()
    for ch in text:
        if ch == "\n" and lines:
            continue
        if unicodedata.category(ch)[0] == "C" or ord(ch) not in printable:
            raise InvalidInput(f"{field} holds a character that cannot be printed (U+{ord(ch):04X}).", field=field)
    return text


class _Document(FPDF):
    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("DejaVu", size=7.5)
        self.cell(0, 4, f"Trang {self.page_no()}/{{nb}}", align="C")


def _new_pdf(content: DocumentContent, issued_at: dt.datetime) -> _Document:
    pdf = _Document(orientation="P", unit="mm", format="A4", enforce_compliance="PDF/A-2B")
    pdf.add_font("DejaVu", "", str(REGULAR))
    pdf.add_font("DejaVu", "B", str(BOLD))
    pdf.set_margins(20, 18, 18)
    pdf.set_auto_page_break(True, margin=20)
    pdf.set_title(f"{TITLES[content.kind].capitalize()} – {content.code}")
    pdf.set_author(content.agency.name)
    pdf.set_subject(LABELS[content.kind][0])
    pdf.set_keywords(f"dinhdanh {content.kind} {content.code}")
    pdf.set_creator("dinhdanh")
    pdf.set_producer("dinhdanh (fpdf2)")
    pdf.set_lang("vi-VN")
    pdf.set_creation_date(issued_at.astimezone(dt.UTC))
    return pdf


def _header(pdf: _Document, content: DocumentContent) -> None:
    left_w, right_w = 72, 100
    top = pdf.get_y()
    pdf.set_font("DejaVu", size=10)
    pdf.multi_cell(left_w, 5, content.agency.parent.upper(), align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("DejaVu", "B", 10)
    pdf.multi_cell(left_w, 5, content.agency.name.upper(), align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    x = pdf.l_margin + left_w / 2
    pdf.line(x - 12, pdf.get_y() + 1.2, x + 12, pdf.get_y() + 1.2)
    pdf.ln(3)
    pdf.set_font("DejaVu", size=10)
    pdf.multi_cell(left_w, 5, f"Số: {content.code}", align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    bottom_left = pdf.get_y()

    pdf.set_xy(pdf.l_margin + left_w, top)
    pdf.set_font("DejaVu", "B", 10)
    pdf.cell(right_w, 5, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", align="C", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.cell(right_w, 5, "Độc lập - Tự do - Hạnh phúc", align="C", new_x=XPos.LEFT, new_y=YPos.NEXT)
    x = pdf.l_margin + left_w + right_w / 2
    pdf.line(x - 27, pdf.get_y() + 0.6, x + 27, pdf.get_y() + 0.6)
    pdf.ln(4)
    pdf.set_x(pdf.l_margin + left_w)
    pdf.set_font("DejaVu", size=10)
    pdf.cell(right_w, 5, f"{content.agency.place}, {long_date(content.issued_on)}", align="C",
             new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(max(bottom_left, pdf.get_y()) + 8)


def _field(pdf: _Document, label: str, value: str) -> None:
    pdf.set_font("DejaVu", "B", 11)
    width = pdf.get_string_width(label + " ") + 1
    pdf.cell(width, 6.5, label)
    pdf.set_font("DejaVu", size=11)
    pdf.multi_cell(0, 6.5, value, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _paragraph(pdf: _Document, text: str, *, bold: bool = False) -> None:
    pdf.set_font("DejaVu", "B" if bold else "", 11)
    pdf.multi_cell(0, 6.5, text, align="J", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _items(pdf: _Document, items: tuple[str, ...]) -> None:
    pdf.set_font("DejaVu", size=11)
    for number, item in enumerate(items, 1):
        pdf.set_x(pdf.l_margin + 4)
        pdf.multi_cell(0, 6.5, f"{number}. {item}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _body(pdf: _Document, content: DocumentContent) -> None:
    pdf.set_font("DejaVu", "B", 13)
    pdf.multi_cell(0, 7, TITLES[content.kind], align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(5)
    _field(pdf, "Cơ quan giải quyết:", content.agency.name)
    if content.procedure:
        _field(pdf, "Thủ tục hành chính:", content.procedure)
    if content.dossier:
        _field(pdf, "Mã hồ sơ:", content.dossier)
    _field(pdf, "Người nộp hồ sơ:", content.holder_name)
    pdf.ln(2)
    kind = content.kind
    if kind == "result":
        _paragraph(pdf, "Nội dung quyết định:", bold=True)
        _paragraph(pdf, content.text or "")
    elif kind == "receipt":
        _paragraph(pdf, "Cơ quan đã tiếp nhận hồ sơ của ông/bà nêu trên và hẹn trả kết quả vào "
                        f"{long_date(content.due_date)} ({short_date(content.due_date)}).")
        if content.text:
            _paragraph(pdf, content.text)
    elif kind == "supplement_request":
        _paragraph(pdf, "Hồ sơ chưa đầy đủ, chưa hợp lệ. Đề nghị ông/bà bổ sung, hoàn thiện các nội dung sau:")
        _items(pdf, content.reasons)
        if content.due_date:
            _paragraph(pdf, f"Thời hạn bổ sung: trước {short_date(content.due_date)}.")
        if content.text:
            _paragraph(pdf, content.text)
    elif kind == "refusal":
        _paragraph(pdf, "Cơ quan từ chối tiếp nhận, giải quyết hồ sơ của ông/bà vì các lý do sau:")
        _items(pdf, content.reasons)
        if content.text:
            _paragraph(pdf, content.text)
    elif kind == "apology":
        _paragraph(pdf, "Cơ quan thành thật xin lỗi ông/bà vì hồ sơ chưa được giải quyết đúng hẹn.")
        if content.text:
            _paragraph(pdf, f"Lý do: {content.text}")
        _paragraph(pdf, f"Cơ quan hẹn lại ngày trả kết quả: {long_date(content.due_date)} "
                        f"({short_date(content.due_date)}).")


def _qr_png(url: str) -> io.BytesIO:
    out = io.BytesIO()
    # black on white, no alpha channel (PDF/A): a greyscale PNG
    segno.make(url, error="m", micro=False).save(out, kind="png", scale=6, border=4, dark="black", light="white")
    out.seek(0)
    return out


def _signature_block(pdf: _Document, content: DocumentContent) -> None:
    size = 32
    if pdf.get_y() + size + 8 > pdf.h - pdf.b_margin:
        pdf.add_page()
    pdf.ln(6)
    top = pdf.get_y()
    pdf.image(_qr_png(content.verify_url), x=pdf.l_margin, y=top, w=size, h=size)
    text_x = pdf.l_margin + size + 4
    pdf.set_xy(text_x, top + 1)
    pdf.set_font("DejaVu", "B", 9)
    pdf.multi_cell(70, 4.5, "Kiểm tra tính xác thực", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_font("DejaVu", size=8.5)
    pdf.multi_cell(70, 4.5, f"Mã tra cứu: {content.code}", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.multi_cell(70, 4.5, content.verify_url, new_x=XPos.LEFT, new_y=YPos.NEXT)
    right_x = pdf.l_margin + size + 4 + 72
    pdf.set_xy(right_x, top + 1)
    pdf.set_font("DejaVu", "B", 10)
    width = pdf.w - pdf.r_margin - right_x
    pdf.multi_cell(width, 5, "THỦ TRƯỞNG CƠ QUAN", align="C", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_font("DejaVu", size=8.5)
    pdf.multi_cell(width, 4.5, f"(Văn bản điện tử được ký số bởi {content.agency.name})", align="C",
                   new_x=XPos.LEFT, new_y=YPos.NEXT)


def render_pdf(content: DocumentContent, *, issued_at: dt.datetime) -> bytes:
    """The unsigned PDF/A-2B document (``issued_at``, UTC, is its creation date)."""
    pdf = _new_pdf(content, issued_at)
    pdf.alias_nb_pages()
    pdf.add_page()
    _header(pdf, content)
    _body(pdf, content)
    _signature_block(pdf, content)
    return bytes(pdf.output())
