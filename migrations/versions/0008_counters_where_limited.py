"""budget counters only where a limit is: a counter remembers the reservations it counted when it opened, a
reservation its scopes (see bot.budget.counters)"""

import sqlalchemy as sa
from alembic import op


revision: str = "0008"
down_revision: str | None = "0007"


def upgrade() -> None:
    with op.batch_alter_table('budget_counters', schema=None) as batch_op:
        batch_op.add_column(sa.Column('opened_through', sa.BigInteger(), nullable=True))
    with op.batch_alter_table('budget_reservations', schema=None) as batch_op:
        # A reservation made before this revision has no scopes: the counters it names are the only ones it moves.
        batch_op.add_column(sa.Column('scope_keys', sa.Text(), nullable=False, server_default=''))
        batch_op.alter_column('counter_keys', existing_type=sa.String(length=400), type_=sa.Text(),
                              existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('budget_reservations', schema=None) as batch_op:
        batch_op.alter_column('counter_keys', existing_type=sa.Text(), type_=sa.String(length=400),
                              existing_nullable=False)
        batch_op.drop_column('scope_keys')
    with op.batch_alter_table('budget_counters', schema=None) as batch_op:
        batch_op.drop_column('opened_through')
