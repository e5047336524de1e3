"""Import every area's tables so that ``metadata`` is complete (for migrations and tests)."""

import dinhdanh.audit.tables  # noqa: F401
import dinhdanh.cards.tables  # noqa: F401
import dinhdanh.changes.tables  # noqa: F401
import dinhdanh.documents.tables  # noqa: F401
import dinhdanh.dossiers.tables  # noqa: F401
import dinhdanh.eid.tables  # noqa: F401
import dinhdanh.exchange.tables  # noqa: F401
import dinhdanh.fees.tables  # noqa: F401
import dinhdanh.oidc.tables  # noqa: F401
import dinhdanh.officers.tables  # noqa: F401
import dinhdanh.passports.tables  # noqa: F401
import dinhdanh.population.tables  # noqa: F401
import dinhdanh.registry.tables  # noqa: F401
import dinhdanh.scheduler.tables  # noqa: F401
import dinhdanh.store.outbox  # noqa: F401
import dinhdanh.vehicles.tables  # noqa: F401
from dinhdanh.store.base import metadata

__all__ = ["metadata"]
