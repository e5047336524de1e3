"""The part of the country an officer may see: everything, one province, or one commune.

A person is in an area when their permanent or temporary residence is in it.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from dinhdanh.registry.tables import persons


@dataclass(frozen=True, slots=True)
class Area:
    province: str | None = None  # two-digit 2025 code
    commune: str | None = None  # five-digit 2025 code

    @classmethod
    def of_code(cls, code: str | None) -> Area:
        """The area a 2025 code names: a province (2 digits), a commune (5 digits), none: national."""
        if code is None:
            return cls()
        return cls(commune=code) if len(code) == 5 else cls(province=code)

    @property
    def national(self) -> bool:
        return self.province is None and self.commune is None

    def covers(self, row) -> bool:
        if self.commune is not None:
            return self.commune in (row.commune_code, row.temp_commune_code)
        if self.province is not None:
            return self.province in (row.province_code, row.temp_province_code)
        return True

    def covers_place(self, province_code: str, commune_code: str) -> bool:
        if self.commune is not None:
            return self.commune == commune_code
        if self.province is not None:
            return self.province == province_code
        return True

    def clause(self, table: sa.Table = persons):
        """SQL condition selecting the persons in this area (``true`` for national)."""
        c = table.c
        if self.commune is not None:
            return sa.or_(c.commune_code == self.commune, c.temp_commune_code == self.commune)
        if self.province is not None:
            return sa.or_(c.province_code == self.province, c.temp_province_code == self.province)
        return sa.true()


NATIONAL = Area()
