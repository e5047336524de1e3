"""Server-rendered pages (Vietnamese first, English with ?lang=en)."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, select_autoescape

_env = Environment(loader=PackageLoader("dinhdanh.web", "templates"), autoescape=select_autoescape())

TEXT = {
    "vi": {
        "title": "Định danh: Cơ sở dữ liệu quốc gia về dân cư",
        "lead": "Nền tảng mã nguồn mở cho dữ liệu dân cư, định danh và xác thực điện tử (Đề án 06).",
        "api": "Tài liệu API cho cán bộ (OpenAPI)",
        "token": "Dùng mã truy cập của cán bộ (Authorization: Bearer ...).",
        "metrics": "Chỉ số vận hành",
        "switch": "English",
        "other": "en",
    },
    "en": {
        "title": "Dinhdanh: national population register",
        "lead": "Open-source platform for population data, electronic identification and authentication "
                "(Project 06).",
        "api": "Officer API documentation (OpenAPI)",
        "token": "Use an officer token (Authorization: Bearer ...).",
        "metrics": "Operational metrics",
        "switch": "Tiếng Việt",
        "other": "vi",
    },
}


def landing(lang: str) -> str:
    lang = lang if lang in TEXT else "vi"
    return _env.get_template("landing.html").render(t=TEXT[lang], lang=lang)
