"""What a result document is: its kinds with their standard headings, the agency that signs, and
the content printed on it. Plain data, cheap to import (the renderer and pyHanko are not)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

__all__ = ["KINDS", "TITLES", "LABELS", "Agency", "DocumentContent"]

KINDS = ("result", "receipt", "supplement_request", "refusal", "apology")
# The headings of the standard forms (the result, and the four slips of the one-stop shop).
TITLES = {
    "result": "KẾT QUẢ GIẢI QUYẾT THỦ TỤC HÀNH CHÍNH",
    "receipt": "GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ",
    "supplement_request": "PHIẾU YÊU CẦU BỔ SUNG, HOÀN THIỆN HỒ SƠ",
    "refusal": "PHIẾU TỪ CHỐI TIẾP NHẬN, GIẢI QUYẾT HỒ SƠ",
    "apology": "PHIẾU XIN LỖI VÀ HẸN LẠI NGÀY TRẢ KẾT QUẢ",
}
LABELS = {  # what the verification page calls them: (Vietnamese, English)
    "result": ("Kết quả giải quyết thủ tục hành chính", "Result of an administrative procedure"),
    "receipt": ("Giấy tiếp nhận hồ sơ và hẹn trả kết quả", "Receipt with the due date"),
    "supplement_request": ("Phiếu yêu cầu bổ sung, hoàn thiện hồ sơ", "Request to supplement the dossier"),
    "refusal": ("Phiếu từ chối tiếp nhận, giải quyết hồ sơ", "Refusal with reasons"),
    "apology": ("Phiếu xin lỗi và hẹn lại ngày trả kết quả", "Apology with a new date"),
}


@dataclass(frozen=True, slots=True)
class Agency:
    """The agency that decides and signs: its electronic code, its name and where it sits."""

    code: str  # e.g. "G01.C06" (the code of the agency in the government's document exchange)
    name: str  # "Cục Cảnh sát quản lý hành chính về trật tự xã hội"
    parent: str = "Bộ Công an"  # the body it belongs to, printed above its name
    place: str = "Hà Nội"  # printed before the date


@dataclass(frozen=True, slots=True)
class DocumentContent:
    """Everything printed on one document (already checked and NFC-normalised)."""

    kind: str
    code: str  # the verification code (also in the QR)
    agency: Agency
    holder_name: str
    issued_on: dt.date  # Vietnam's date
    verify_url: str
    dossier: str | None = None
    procedure: str | None = None
    text: str | None = None  # the decision (result), the note (receipt), the delay's cause (apology)
    reasons: tuple[str, ...] = ()  # what to supplement, or why refused
    due_date: dt.date | None = None  # receipt: the due date; apology: the new date; supplement: by when
