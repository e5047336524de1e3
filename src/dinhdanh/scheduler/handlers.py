"""The wiring: every area's scheduled-job handlers, by kind (``jobs.run_due`` runs them)."""

from __future__ import annotations

import sqlalchemy as sa

from dinhdanh.scheduler.jobs import Handler


def handlers(engine: sa.Engine, base_url: str | None = None) -> dict[str, Handler]:
    """The handlers of every kind of job, built explicitly (no discovery, no import-time registry).

    ``base_url`` is the platform's public address (the OpenID issuer, ``DINHDANH_OIDC_ISSUER``), which
    the slips' QR codes point to; without it the dossiers' timers are not run (their jobs wait, logged)."""
    from dinhdanh import config
    from dinhdanh.changes.loops import vault_for
    from dinhdanh.dossiers import timers as dossier_timers
    from dinhdanh.fees import refunds
    from dinhdanh.fees.gateway import PaymentsNotConfigured, VnpayClient, configured_merchant

    wired: dict[str, Handler] = {}
    # Areas are added here explicitly, one line each.
    base_url = base_url or config.oidc_issuer()
    vault = vault_for(engine)
    if base_url:
        wired.update(dossier_timers.handlers(vault, base_url))
    try:  # refunds go through the configured gateway (or the local one of a demo)
        merchant = configured_merchant(vault, base_url)
    except PaymentsNotConfigured:
        pass
    else:
        wired.update(refunds.handlers(VnpayClient(merchant)))
    return wired


def arm(engine: sa.Engine, wired: dict[str, Handler]) -> None:
    """Where a scheduler starts: arm the recurring jobs of the kinds it runs (the dossiers' daily
    reminders); arming again is harmless."""
    from dinhdanh.dossiers import reminders
    from dinhdanh.store.unit_of_work import UnitOfWork

    if reminders.REMINDERS in wired:
        with UnitOfWork(engine).begin() as conn:
            reminders.ensure_scheduled(conn)
