"""The dossiers' timers, run by the durable scheduler (``dinhdanh.scheduler.jobs``).

``service`` schedules them in the unit of work of the step that starts a clock (key: the
dossier's code): ``dossiers.overdue`` at the start of the day after the due date,
``dossiers.supplement_expired`` at the start of the day after the 7 working days a supplement is
awaited; ``dossiers.reminders`` once a working day (``reminders``). Each handler runs inside its job's transaction and is idempotent: a dossier that moved
on (decided, supplemented, extended) is left as it is.

Wiring is explicit: whoever builds the scheduler passes ``handlers(vault, base_url)`` to it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import sqlalchemy as sa

from dinhdanh.dossiers import reminders, service
from dinhdanh.store.vault import Vault

Handler = Callable[[sa.Connection, str, Mapping], None]


def _dossier_id(conn: sa.Connection, key: str, payload: Mapping) -> int | None:
    found = payload.get("dossier_id") if isinstance(payload, Mapping) else None
    if isinstance(found, int):
        return found
    from dinhdanh.dossiers.tables import dossiers

    return conn.execute(sa.select(dossiers.c.dossier_id).where(dossiers.c.code == key)).scalar()


def handlers(vault: Vault, base_url: str) -> dict[str, Handler]:
    """The job kinds of this area and their handlers ``(conn, key, payload) -> None``."""

    def supplement_expired(conn: sa.Connection, key: str, payload: Mapping) -> None:
        dossier_id = _dossier_id(conn, key, payload)
        if dossier_id is not None:
            service.refuse_unsupplied(conn, vault, dossier_id, base_url=base_url)

    def overdue(conn: sa.Connection, key: str, payload: Mapping) -> None:
        dossier_id = _dossier_id(conn, key, payload)
        if dossier_id is not None:
            service.flag_overdue(conn, dossier_id)

    return {service.SUPPLEMENT_EXPIRED: supplement_expired, service.OVERDUE: overdue,
            reminders.REMINDERS: reminders.handler}
