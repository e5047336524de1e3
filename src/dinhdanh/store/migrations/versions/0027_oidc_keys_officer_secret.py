"""the officers' console's client secret may be kept sealed in oidc_keys

``oidc_keys.use`` takes ``officer``: the console's client secret (``web.officer_console``, sealed by
the vault like the demo portal's ``portal``). Without it the secret was never stored (the CHECK
refused the row, and the set-up went on without it), so every process that started the console reset
the client's secret, and the other processes' console sign-ins failed until they restarted.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-06 21:00:00
"""
from alembic import op


revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None

OLD = ("sig", "cookie", "pairwise", "portal")
NEW = (*OLD, "officer")


def _check(uses) -> str:
    return " OR ".join(f"use = '{u}'" for u in uses)


def _replace(uses) -> None:
    with op.batch_alter_table('oidc_keys', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_oidc_keys_use'), type_='check')
        batch_op.create_check_constraint(op.f('ck_oidc_keys_use'), _check(uses))


def upgrade() -> None:
    _replace(NEW)


def downgrade() -> None:
    op.execute("DELETE FROM oidc_keys WHERE use = 'officer'")
    _replace(OLD)
