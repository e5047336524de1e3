"""Chip cards: issuance (cards/s) and chip verification (verifications/s), each with its floor.

Issuance: ``cards.batch.issue_first_cards`` on a fresh SQLite register (application, approval,
production with DG1, DG2 with the drawn portrait, DG13, DG14, DG15 with a fresh key, EF.SOD
signed, the register's history, the key-use log, the outbox), against the floor of the bare
cryptography of a card (one P-256 key pair for Active Authentication, hashing the DG files, one
ECDSA signature).

Verification: ``ids.lds.passive.passive_authentication`` (parse EF.SOD, check attributes and
signature, chain the DSC to the CSCA, hash every DG), ``passive.verify_chip`` (that, and DG1
against DG13) and
``cards.verification.verify_card`` (that plus the register: card status, holder, data), against
the floor of the bare ECDSA verification of the SOD's signed attributes with ``cryptography``.

    python bench/bench_cards.py --count 2000
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time

from common import machine, population_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="cards to issue and to verify")
    args = parser.parse_args()

    import sqlalchemy as sa
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    from dinhdanh.cards import batch, chip, pki, verification
    from dinhdanh.cards.tables import cards
    from dinhdanh.ids.lds import passive, sod as sodfmt
    from dinhdanh.ids.lds.certs import load_public_key, parse_certificate
    from dinhdanh.population.importer import import_population
    from dinhdanh.registry.events import Actor
    from dinhdanh.registry.tables import persons
    from dinhdanh.store.engine import make_engine, upgrade
    from dinhdanh.store.vault import Vault

    print(f"machine: {machine()}")
    folder = tempfile.mkdtemp(prefix="bench-cards-")
    engine = make_engine(f"sqlite:///{folder}/register.sqlite")
    upgrade(engine)
    import_population(engine, population_file(max(10_000, args.count * 2), 7))
    vault = Vault(os.urandom(32))
    actor = Actor("bench")
    with engine.begin() as conn:
        pki.init_pki(conn, vault)
        pids = conn.execute(sa.select(persons.c.pid).where(persons.c.status == "alive")
                            .order_by(persons.c.person_id).limit(args.count + 200)).scalars().all()
    with engine.begin() as conn:  # warm-up: templates, fonts, caches
        batch.issue_first_cards(conn, vault, actor, pids[:200])

    # ---------------------------------------------------------------------------- issuance
    todo = pids[200:200 + args.count]
    start = time.perf_counter()
    with engine.begin() as conn:
        result = batch.issue_first_cards(conn, vault, actor, todo)
    issue_seconds = time.perf_counter() - start
    issued = len(result["issued"])
    assert issued == len(todo), result["skipped"][:3]

    with engine.connect() as conn:
        sample = conn.execute(sa.select(cards).order_by(cards.c.card_id).limit(1)).one()
    files = chip.chip_files(sample, vault)
    dg_bytes = [files[k] for k in ("DG1", "DG2", "DG13", "DG14", "DG15")]
    key = ec.generate_private_key(ec.SECP256R1())
    start = time.perf_counter()
    for _ in range(issued):
        ec.generate_private_key(ec.SECP256R1())
        for raw in dg_bytes:
            hashlib.sha256(raw).digest()
        key.sign(b"0" * 120, ec.ECDSA(hashes.SHA256()))
    floor_issue = time.perf_counter() - start

    from dinhdanh.cards import production

    with engine.connect() as conn:
        people = conn.execute(sa.select(persons).where(persons.c.pid.in_(todo[:500]))).all()
    start = time.perf_counter()
    for row in people:
        production.portrait(row)
    portrait_ms = (time.perf_counter() - start) / len(people) * 1000

    # ------------------------------------------------------------------------ verification
    with engine.connect() as conn:
        rows = conn.execute(sa.select(cards).order_by(cards.c.card_id).limit(args.count)).all()
        reads = [{passive.dg_number(k): v for k, v in chip.chip_files(r, vault).items()} for r in rows]
        store = verification.trust_store_for(conn)
    parsed = [sodfmt.parse(r[-1]).signed for r in reads]
    dsc = parse_certificate(parsed[0].certificates[0])
    dsc_key = load_public_key(dsc.spki)._key
    n = len(reads)

    start = time.perf_counter()
    for sd in parsed:
        dsc_key.verify(sd.signature, sd.signed_attrs, ec.ECDSA(hashes.SHA256()))
    floor_verify = time.perf_counter() - start

    start = time.perf_counter()
    for files_read in reads:
        report = passive.passive_authentication(files_read, store)
    pa_seconds = time.perf_counter() - start
    assert report.verdict == "valid", report.failures

    start = time.perf_counter()
    for files_read in reads:
        report = passive.verify_chip(files_read, store)
    chip_seconds = time.perf_counter() - start
    assert report.verdict == "valid", report.failures

    with engine.begin() as conn:
        start = time.perf_counter()
        for files_read in reads:
            full, _ = verification.verify_card(conn, files_read)
        full_seconds = time.perf_counter() - start
    assert full["verdict"] == "valid", full["failures"]

    print(f"issuance: {issued} cards in {issue_seconds:.2f} s = {issued / issue_seconds:,.0f} cards/s; "
          f"floor (key pair + hashes + one ECDSA signature) {issued / floor_issue:,.0f}/s; "
          f"ratio {issue_seconds / floor_issue:.1f}")
    print(f"  of which drawing the synthetic portrait: {portrait_ms:.2f} ms of {issue_seconds / issued * 1000:.2f} ms "
          f"per card")
    print(f"passive authentication (SOD, signature, chain, DG hashes): {n / pa_seconds:,.0f}/s; "
          f"floor (bare ECDSA verify) {n / floor_verify:,.0f}/s; ratio {pa_seconds / floor_verify:.2f}")
    print(f"chip verification (+ DG1/DG13 consistency): {n / chip_seconds:,.0f}/s; "
          f"ratio {chip_seconds / floor_verify:.2f}")
    print(f"verification (chip + register): {n / full_seconds:,.0f}/s; ratio {full_seconds / floor_verify:.2f}")


if __name__ == "__main__":
    main()
