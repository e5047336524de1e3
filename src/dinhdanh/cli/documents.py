"""``dinhdanh documents ...``: signed result documents (PDF/A, PAdES) and their CA."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from dinhdanh.cli.common import DbOption, actor_label, emit, engine_for, fail, fail_registry
from dinhdanh.registry.errors import RegistryError

documents_app = typer.Typer(help="Result documents: signed PDF/A in Vietnamese, their register and CA.",
                            no_args_is_help=True)

DEMO_BASE = "http://127.0.0.1:8000"  # the demo's address (dinhdanh demo)
BaseUrl = Annotated[str | None, typer.Option(
    help="The platform's public address, for the QR code and the CRL (default: DINHDANH_OIDC_ISSUER, "
         f"else the demo's {DEMO_BASE})", show_default=False)]
SAMPLES = {  # what a sample of each kind says
    "result": dict(procedure="Xác nhận thông tin về cư trú",
                   text="Xác nhận công dân có tên nêu trên đang đăng ký thường trú theo dữ liệu của Cơ sở dữ liệu "
                        "quốc gia về dân cư. Văn bản có giá trị sử dụng 06 tháng kể từ ngày ký."),
    "receipt": dict(procedure="Đăng ký thường trú", days=7),
    "supplement_request": dict(procedure="Đăng ký thường trú", days=7,
                               reasons=("Văn bản đồng ý cho đăng ký thường trú của chủ hộ.",)),
    "refusal": dict(procedure="Đăng ký thường trú",
                    reasons=("Chỗ ở không thuộc quyền sở hữu hoặc quyền sử dụng hợp pháp của người đăng ký.",)),
    "apology": dict(procedure="Đăng ký thường trú", days=3, text="Cần xác minh thêm thông tin về chỗ ở hợp pháp."),
}


def _vault(engine):
    from dinhdanh.store.vault import VaultError, for_database

    try:
        return for_database(engine.url.render_as_string(hide_password=False))
    except VaultError as exc:
        fail(str(exc))


def _base_url(explicit: str | None) -> str:
    from dinhdanh.config import oidc_issuer

    try:
        return (explicit or oidc_issuer() or DEMO_BASE).rstrip("/")
    except ValueError as exc:
        fail(str(exc))


def sample_agency():
    from dinhdanh.documents.model import Agency

    return Agency("G01.C06", "Cục Cảnh sát quản lý hành chính về trật tự xã hội", "Bộ Công an", "Hà Nội")


@documents_app.command("init")
def documents_init(db: DbOption = None) -> None:
    """Create the document-signing CA (a root beside the CSCA, never the CSCA) and its first CRL."""
    from dinhdanh.documents import ca

    engine = engine_for(db, upgrade=True)
    try:
        with engine.begin() as conn:
            emit(ca.init_documents_ca(conn, _vault(engine)))
    except RegistryError as exc:
        fail_registry(exc)


@documents_app.command("sample")
def documents_sample(
    out: Annotated[Path, typer.Option(help="The signed PDF to write")],
    kind: Annotated[str, typer.Option(help="result, receipt, supplement_request, refusal or apology")] = "result",
    pid: Annotated[str | None, typer.Option(help="The holder's PID (default: the register's first living "
                                                 "person)")] = None,
    base_url: BaseUrl = None,
    db: DbOption = None,
) -> None:
    """Issue a signed sample document for a person of the register (the demo's data) and write it."""
    import sqlalchemy as sa

    from dinhdanh.documents import results
    from dinhdanh.registry.tables import persons
    from dinhdanh.store.base import vietnam_date

    if kind not in SAMPLES:
        fail(f"unknown kind {kind!r}: {', '.join(SAMPLES)}")
    engine = engine_for(db, upgrade=True)
    vault = _vault(engine)
    sample = dict(SAMPLES[kind])
    days = sample.pop("days", None)
    try:
        with engine.begin() as conn:
            query = sa.select(persons.c.person_id).order_by(persons.c.person_id).limit(1)
            query = query.where(persons.c.pid == pid) if pid else query.where(persons.c.status == "alive")
            holder = conn.execute(query).scalar()
            if holder is None:
                fail(f"no person with PID {pid}" if pid else "the register is empty: run `dinhdanh demo` or import")
            today = vietnam_date()
            issued = results.issue_document(
                conn, vault, kind, holder, agency=sample_agency(), base_url=_base_url(base_url),
                actor=actor_label(), dossier=f"G01.C06-{today:%y%m%d}-0001",
                due_date=today + dt.timedelta(days=days) if days else None, **sample)
    except RegistryError as exc:
        fail_registry(exc)
    out.write_bytes(issued.pdf)
    emit({**issued.as_dict(), "file": str(out)})


@documents_app.command("verify")
def documents_verify(file: Annotated[Path, typer.Argument(help="A signed result document (PDF)")],
                     db: DbOption = None) -> None:
    """Validate a document's PAdES signature against the document-signing CA (pyHanko's validator,
    offline, with the CA's current CRL) and look it up in the register; JSON; exit 1 unless genuine."""
    from dinhdanh.documents import results

    if not file.is_file():
        fail(f"no file at {file}")
    engine = engine_for(db, upgrade=True)
    try:
        with engine.begin() as conn:
            report = results.verify_document(conn, _vault(engine), file.read_bytes())
    except RegistryError as exc:
        fail_registry(exc)
    emit(report)
    if report["status"] != "genuine":
        raise typer.Exit(1)


@documents_app.command("status")
def documents_status(code: Annotated[str, typer.Argument(help="The code printed on the document")],
                     db: DbOption = None) -> None:
    """What the public verification page says about a code (genuine, revoked, unknown)."""
    from dinhdanh.documents import results

    try:
        with engine_for(db, upgrade=True).begin() as conn:
            emit(results.result_status(conn, code.strip(), actor=actor_label()))
    except RegistryError as exc:
        fail_registry(exc)


@documents_app.command("revoke")
def documents_revoke(code: Annotated[str, typer.Argument(help="The code printed on the document")],
                     reason: Annotated[str, typer.Option(help="Why (e.g. the decision was annulled)")],
                     db: DbOption = None) -> None:
    """Revoke a result document: from now its check answers "revoked"."""
    from dinhdanh.documents import results

    try:
        with engine_for(db, upgrade=True).begin() as conn:
            emit(results.revoke_result(conn, code.strip(), reason, actor=actor_label()))
    except RegistryError as exc:
        fail_registry(exc)


@documents_app.command("revoke-signer")
def documents_revoke_signer(key_id: Annotated[int, typer.Argument(help="The signer's key id (dinhdanh pki status)")],
                            reason: Annotated[str, typer.Option(help="key_compromise, superseded, "
                                                                     "cessation_of_operation or affiliation_changed")]
                            = "key_compromise",
                            db: DbOption = None) -> None:
    """Revoke an agency's signing certificate and publish the CA's new CRL: what it signed no longer validates."""
    from dinhdanh.documents import ca

    engine = engine_for(db, upgrade=True)
    try:
        with engine.begin() as conn:
            emit(ca.revoke_signer(conn, _vault(engine), key_id, reason))
    except RegistryError as exc:
        fail_registry(exc)
