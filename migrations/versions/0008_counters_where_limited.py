"""budget counters only where a limit is: a counter remembers the reservations it counted when it opened, a
reservation its scopes (see bot.budget.counters)"""

import sqlalchemy as sa
from alembic import op


revision: str = "0008"
down_revision: str | None = "0007"


def upgrade() -> None:
    with op.batch_alter_table('budget_counters', schema=None) as batch_op:
        batch_op.add_column(sa.Column('opened_through', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('period_end', sa.DateTime(), nullable=True))
    with op.batch_alter_table('budget_reservations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scope_keys', sa.Text(), nullable=False, server_default=''))
        batch_op.alter_column('counter_keys', existing_type=sa.String(length=400), type_=sa.Text(),
                              existing_nullable=False)
    # Until now every reservation named a counter of each of its scopes: a running one gets its scopes from them,
    # so that a counter opening before it settles counts it, and it moves that counter (a closed one falls back
    # to the same when it is settled late: bot.budget.counters).
    connection = op.get_bind()
    running = connection.execute(sa.text(
        "SELECT id, counter_keys FROM budget_reservations WHERE status = 'active'")).all()
    for reservation_id, counter_keys in running:
        scopes = ";".join(sorted({key.split("|")[0] for key in counter_keys.split(";") if key}))
        connection.execute(sa.text("UPDATE budget_reservations SET scope_keys = :scopes WHERE id = :id"),
                           {"scopes": scopes, "id": reservation_id})


def downgrade() -> None:
    with op.batch_alter_table('budget_reservations', schema=None) as batch_op:
        batch_op.alter_column('counter_keys', existing_type=sa.Text(), type_=sa.String(length=400),
                              existing_nullable=False)
        batch_op.drop_column('scope_keys')
    with op.batch_alter_table('budget_counters', schema=None) as batch_op:
        batch_op.drop_column('period_end')
        batch_op.drop_column('opened_through')
