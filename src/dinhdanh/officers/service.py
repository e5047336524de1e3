"""Adding officers, their roles (``officers.permissions``), and recognising them by their API token.

An officer has an area (``role``: national, province or commune, with ``area_code``; where they
may act) and roles (what they may do). Roles are granted and withdrawn one by one, each recorded
with who did it and when (``officer_roles``).

Their credentials (machine tokens that expire, the e-ID account they sign in with) are in
``officers.credentials``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa

from dinhdanh import places
from dinhdanh.officers.permissions import (PERMISSIONS, PermissionDenied, SeparationOfDuties, check_role,
                                           check_roles, permissions_of)
from dinhdanh.officers import credentials
from dinhdanh.officers.credentials import TOKEN_PREFIX  # noqa: F401  (where it was)
from dinhdanh.officers.tables import officer_roles, officers
from dinhdanh.registry.area import Area
from dinhdanh.registry.errors import Conflict, InvalidInput, NotFound
from dinhdanh.store.base import utcnow

ROLES = ("national", "province", "commune")  # the levels of an officer's area (the ``role`` column)


@dataclass(frozen=True, slots=True)
class Officer:
    officer_id: int
    name: str
    role: str  # the area's level: national, province or commune
    area_code: str | None
    roles: frozenset[str] = frozenset()  # the roles held (officers.permissions.ROLES)
    agency_code: str | None = None  # the agency worked for (dossiers); None: every agency of the area
    permissions: frozenset[str] = field(init=False)  # what the roles give

    def __post_init__(self) -> None:
        object.__setattr__(self, "roles", frozenset(self.roles))
        object.__setattr__(self, "permissions", permissions_of(self.roles))

    def can(self, permission: str) -> bool:
        """Whether the officer's roles give ``permission`` (a name of ``permissions.PERMISSIONS``)."""
        if permission not in PERMISSIONS:
            raise ValueError(f"unknown permission {permission!r}")
        return permission in self.permissions

    def require(self, permission: str, *, english: bool = True) -> None:
        """``PermissionDenied`` (403 ``permission_denied``, naming the permission) unless ``can``."""
        if not self.can(permission):
            raise PermissionDenied(permission, english=english)

    def oversees(self, other: Officer) -> bool:
        """Whether ``other`` works within this officer's area (for managing officers)."""
        if self.role == "national":
            return True
        if other.role == "national" or other.area_code is None:
            return False
        if self.role == "province":
            province = other.area_code if other.role == "province" else places.COMMUNES[other.area_code].province_code
            return province == self.area_code
        return other.role == "commune" and other.area_code == self.area_code

    @property
    def label(self) -> str:
        return f"officer:{self.officer_id}"

    @property
    def area(self) -> Area:
        if self.role == "commune":
            return Area(commune=self.area_code)
        if self.role == "province":
            return Area(province=self.area_code)
        return Area()


def agency_levels() -> dict[str, str]:
    """The agencies that decide online public services (the catalogue's, groups included) and their level."""
    from dinhdanh.dossiers import catalogue

    found: dict[str, str] = {}
    for service in catalogue.load().by_code.values():
        for version in service.versions:
            found[version.agency.code] = version.agency.level
            for procedure in version.group.procedures if version.group else ():
                found[procedure.agency.code] = procedure.agency.level
    return found


def check_agency(agency: str | None, role: str) -> str | None:
    """``agency`` as an officer of ``role``'s level may work for it: one of the catalogue's agencies of
    that level (a commune's police or people's committee for a commune officer, ...), or None."""
    if agency in (None, ""):
        return None
    levels = agency_levels()
    if agency not in levels:
        raise InvalidInput(f"No agency of the online public services has the code {agency!r}; one of "
                           f"{', '.join(sorted(levels))}.", field="agency")
    if levels[agency] != role:
        raise InvalidInput(f"The agency {agency} works at {levels[agency]} level, not {role}.", field="agency")
    return agency


def add_officer(conn: sa.Connection, name: str, role: str, area_code: str | None, *,
                roles: Iterable[str] | str = (), granted_by: str = "system",
                days: int = credentials.DEFAULT_DAYS, agency: str | None = None) -> tuple[Officer, str]:
    """Create an officer with ``roles`` (at least one; ``granted_by`` is recorded), working for
    ``agency`` (a catalogue agency of the area's level; None: the area's one-stop shop, every
    agency); returns it and its API token (shown once, never stored)."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise InvalidInput("The officer's name must be 1 to 100 characters.", field="name")
    if role not in ROLES:
        raise InvalidInput(f"The role must be one of {', '.join(ROLES)}.", field="role")
    if role == "national":
        if area_code not in (None, "", "VN", "00"):
            raise InvalidInput("A national officer has no area.", field="area")
        area_code = None
    elif role == "province":
        area_code = (area_code or "").strip().zfill(2)
        if area_code not in places.PROVINCES:
            raise InvalidInput("The area must be a 2025 province code (two digits, e.g. 79).", field="area")
    else:
        area_code = (area_code or "").strip().zfill(5)
        if area_code not in places.COMMUNES:
            raise InvalidInput("The area must be a 2025 commune code (five digits, e.g. 00070).", field="area")
    held = check_roles(roles)
    agency = check_agency(agency, role)
    officer_id = conn.execute(officers.insert().values(
        name=name, role=role, area_code=area_code, agency_code=agency, created_at=utcnow(),
    ).returning(officers.c.officer_id)).scalar_one()
    now = utcnow()
    conn.execute(officer_roles.insert(), [{"officer_id": officer_id, "role": r, "granted_at": now,
                                           "granted_by": granted_by} for r in sorted(held)])
    token = credentials.issue_token(conn, officer_id, days=days, now=now).token  # expires (officers.credentials)
    return Officer(officer_id, name, role, area_code, held, agency), token


# The officer and the roles held now, in one query (it runs on every officer request).
_BY_ID = (sa.select(officers.c.officer_id, officers.c.name, officers.c.role, officers.c.area_code, officers.c.agency_code,
                    officer_roles.c.role.label("held"))
          .select_from(officers.outerjoin(officer_roles, sa.and_(officer_roles.c.officer_id == officers.c.officer_id,
                                                                  officer_roles.c.withdrawn_at.is_(None))))
          .where(officers.c.officer_id == sa.bindparam("officer_id"), officers.c.active.is_(True)))


def officer_by_id(conn: sa.Connection, officer_id: int) -> Officer | None:
    """The active officer with the roles they hold now; None for an unknown or inactive officer."""
    rows = conn.execute(_BY_ID, {"officer_id": officer_id}).all()
    if not rows:
        return None
    first = rows[0]
    return Officer(first.officer_id, first.name, first.role, first.area_code,
                   frozenset(r.held for r in rows if r.held is not None), first.agency_code)


def officer_by_token(conn: sa.Connection, token: str) -> Officer | None:
    """The officer behind a live machine token (``officers.credentials.resolve_token``)."""
    officer_id = credentials.resolve_token(conn, token)
    return None if officer_id is None else officer_by_id(conn, officer_id)


# ------------------------------------------------------------------------------------- roles


def _officer_for(conn: sa.Connection, by: Officer | None, officer_id: int) -> Officer:
    """The officer to manage: unknown, inactive or outside ``by``'s area are alike (404)."""
    officer = officer_by_id(conn, officer_id)
    if officer is None or (by is not None and not by.oversees(officer)):
        raise NotFound("No such officer.", code="not_found", field="officer_id")
    if by is not None and by.officer_id == officer_id:
        raise SeparationOfDuties("An officer cannot change their own roles.", field="officer_id")
    return officer


def grant_role(conn: sa.Connection, officer_id: int, role: str, *, granted_by: str, by: Officer | None = None,
               now: dt.datetime | None = None) -> Officer:
    """Give ``role`` to the officer (recorded: who, when); 409 ``role_held`` if they hold it.

    ``by``: the administrator doing it through the API (limited to officers in their area, never
    themselves); None for the operator's CLI. Two grants at once: the unique index lets one in."""
    check_role(role)
    _officer_for(conn, by, officer_id)
    try:
        with conn.begin_nested():
            conn.execute(officer_roles.insert().values(officer_id=officer_id, role=role, granted_at=now or utcnow(),
                                                       granted_by=granted_by))
    except sa.exc.IntegrityError:
        raise Conflict(f"The officer already holds the role {role}.", code="role_held", field="role") from None
    return officer_by_id(conn, officer_id)


def withdraw_role(conn: sa.Connection, officer_id: int, role: str, *, withdrawn_by: str, by: Officer | None = None,
                  now: dt.datetime | None = None) -> Officer:
    """Take ``role`` back (the grant stays on record, closed: who, when); 409 ``role_not_held``."""
    check_role(role)
    _officer_for(conn, by, officer_id)
    done = conn.execute(officer_roles.update().where(
        officer_roles.c.officer_id == officer_id, officer_roles.c.role == role, officer_roles.c.withdrawn_at.is_(None),
    ).values(withdrawn_at=now or utcnow(), withdrawn_by=withdrawn_by))
    if done.rowcount != 1:
        raise Conflict(f"The officer does not hold the role {role}.", code="role_not_held", field="role")
    return officer_by_id(conn, officer_id)


def officer_view(officer: Officer) -> dict:
    return {"officer_id": officer.officer_id, "name": officer.name, "area_level": officer.role,
            "area_code": officer.area_code, "agency": officer.agency_code, "roles": sorted(officer.roles),
            "permissions": sorted(officer.permissions)}


def role_history(conn: sa.Connection, officer_id: int) -> list[dict]:
    """Every grant of a role to the officer, oldest first, with its withdrawal if any."""
    rows = conn.execute(sa.select(officer_roles).where(officer_roles.c.officer_id == officer_id)
                        .order_by(officer_roles.c.grant_id)).all()
    return [{"role": r.role, "granted_at": r.granted_at.isoformat(), "granted_by": r.granted_by,
             "withdrawn_at": r.withdrawn_at.isoformat() if r.withdrawn_at else None, "withdrawn_by": r.withdrawn_by}
            for r in rows]


def show_officer(conn: sa.Connection, officer_id: int, *, by: Officer | None = None) -> dict:
    """An officer with their roles, permissions and the history of their roles."""
    officer = officer_by_id(conn, officer_id)
    if officer is None or (by is not None and not by.oversees(officer)):
        raise NotFound("No such officer.", code="not_found", field="officer_id")
    return {**officer_view(officer), "role_history": role_history(conn, officer_id)}


DEMO_OFFICER = "Cán bộ demo (quốc gia)"
# The demo's officer does the whole demo, so it holds the operational roles (separation of duties
# still applies: it cannot approve what it filed); not administrator, partner_admin or auditor.
DEMO_ROLES = ("registrar", "card_officer", "card_approver", "eid_officer", "eid_supervisor", "data_steward")


def _ensure_roles(conn: sa.Connection, officer_id: int, roles: Iterable[str], granted_by: str) -> None:
    held = set(conn.execute(sa.select(officer_roles.c.role).where(
        officer_roles.c.officer_id == officer_id, officer_roles.c.withdrawn_at.is_(None))).scalars())
    missing = [r for r in roles if r not in held]
    if missing:
        now = utcnow()
        conn.execute(officer_roles.insert(), [{"officer_id": officer_id, "role": r, "granted_at": now,
                                               "granted_by": granted_by} for r in missing])


def ensure_demo_officer(conn: sa.Connection) -> str:
    """The demo's national officer, with a fresh token each start (the earlier ones are revoked;
    tokens are stored only hashed)."""
    demo_id = conn.execute(sa.select(officers.c.officer_id).where(
        officers.c.name == DEMO_OFFICER, officers.c.role == "national").order_by(officers.c.officer_id)).scalar()
    if demo_id is None:
        demo_id = conn.execute(officers.insert().values(name=DEMO_OFFICER, role="national", area_code=None,
                                                        created_at=utcnow()).returning(officers.c.officer_id)).scalar_one()
    else:
        conn.execute(officers.update().where(officers.c.officer_id == demo_id).values(active=True))
    _ensure_roles(conn, demo_id, DEMO_ROLES, "demo")
    return credentials.rotate(conn, demo_id, label="demo").token
