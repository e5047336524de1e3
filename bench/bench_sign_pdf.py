"""Signing result PDFs (documents/s on one core), with its floor: the bare signature.

Measured in one process, one thread, on a fresh SQLite register:

- sign: ``documents.sign.sign_pdf`` of a rendered result document (a PDF/A-2B page, 35-40 kB):
  pyHanko's incremental update, the PAdES CMS (signed attributes, the signing certificate v2),
  the agency's P-256 key signing through our ``Signer`` (the use logged in the transaction), and
  the chain and the CA's CRL written to the DSS;
- issue: ``documents.results.issue_document``, end to end (the register read and audited,
  rendering with fpdf2 and its font subsetting, signing, sealing and registering the file);
- floor: the same key signing the same kind of digest (SHA-256, prehashed) with ``cryptography``
  alone.

The ratio sign / floor is printed with the absolute figures.

    python bench/bench_sign_pdf.py --count 200
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import tempfile
import time
from pathlib import Path

from common import machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="documents to sign (and a quarter as many to issue)")
    args = parser.parse_args()

    import sqlalchemy as sa
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, utils

    from dinhdanh.documents import ca, results
    from dinhdanh.documents.model import Agency, DocumentContent
    from dinhdanh.documents.render import render_pdf, verification_url
    from dinhdanh.documents.sign import sign_pdf
    from dinhdanh.population.importer import import_population
    from dinhdanh.store.base import utcnow, vietnam_date
    from dinhdanh.store.engine import make_engine, upgrade
    from dinhdanh.store.vault import Vault

    print(f"machine: {machine()}")
    folder = Path(tempfile.mkdtemp(prefix="bench-sign-pdf-"))
    engine = make_engine(f"sqlite:///{folder}/register.sqlite")
    upgrade(engine)
    people = folder / "people.csv"
    with people.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(("pid", "full_name", "date_of_birth", "sex", "province_code", "commune_code"))
        writer.writerow(("001215000004", "Nguyễn Thị Dung", "2015-07-08", "female", "01", "00070"))
    import_population(engine, people)
    vault = Vault(os.urandom(32))
    agency = Agency("G01.C06", "Cục Cảnh sát quản lý hành chính về trật tự xã hội")
    base = "https://dinhdanh.example.vn"
    text = ("Đồng ý cho bà Nguyễn Thị Dung đăng ký thường trú tại số 12 phố Hàng Bạc, phường Hoàn Kiếm, "
            "thành phố Hà Nội. Quyết định có hiệu lực kể từ ngày ký.")

    with engine.begin() as conn:
        holder = conn.execute(sa.text("SELECT person_id FROM persons")).scalar_one()
        signer = ca.agency_signer(conn, vault, agency, base_url=base)
        chain, crl = ca.chain_of(conn, signer), ca.current_crl(conn, vault)
    now = utcnow()
    content = DocumentContent(kind="result", code="A" * 20, agency=agency, holder_name="Nguyễn Thị Dung",
                              issued_on=vietnam_date(now), verify_url=verification_url(base, "A" * 20), text=text)
    pdf = render_pdf(content, issued_at=now)

    def sign_once(conn, i: int) -> bytes:
        return sign_pdf(conn, pdf, signer, chain=chain, crls=[crl], reference=f"bench:{i}",
                        reason="Kết quả giải quyết thủ tục hành chính", location="Hà Nội", name=agency.name)

    with engine.begin() as conn:  # warm: imports, caches
        for i in range(3):
            sign_once(conn, i)

    with engine.begin() as conn:
        start = time.perf_counter()
        for i in range(args.count):
            sign_once(conn, i)
        sign_seconds = time.perf_counter() - start

    key = signer.private_key
    digests = [hashlib.sha256(pdf + i.to_bytes(4, "big")).digest() for i in range(args.count)]
    algorithm = ec.ECDSA(utils.Prehashed(hashes.SHA256()))
    start = time.perf_counter()
    for digest in digests:
        key.sign(digest, algorithm)
    floor_seconds = time.perf_counter() - start

    issues = max(1, args.count // 4)
    with engine.begin() as conn:
        start = time.perf_counter()
        for _ in range(issues):
            results.issue_document(conn, vault, "result", holder, agency=agency, base_url=base, actor="bench",
                                   text=text, procedure="Đăng ký thường trú")
        issue_seconds = time.perf_counter() - start

    print(f"PDF: {len(pdf):,} bytes unsigned, {len(sign_once_size(engine, sign_once)):,} signed")
    print(f"sign (PAdES, DSS, key-use log):  {args.count / sign_seconds:9.1f} documents/s per core "
          f"({sign_seconds / args.count * 1000:.2f} ms each)")
    print(f"floor (bare ECDSA P-256 sign):   {args.count / floor_seconds:9.1f} signatures/s "
          f"({floor_seconds / args.count * 1000:.3f} ms each)")
    print(f"ratio sign / floor:              {sign_seconds / floor_seconds:9.1f}")
    print(f"issue (render + sign + register): {issues / issue_seconds:8.1f} documents/s per core "
          f"({issue_seconds / issues * 1000:.1f} ms each)")


def sign_once_size(engine, sign_once) -> bytes:
    with engine.begin() as conn:
        return sign_once(conn, -1)


if __name__ == "__main__":
    main()
