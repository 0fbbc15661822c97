"""initial schema"""

import sqlalchemy as sa
from alembic import op


revision: str = '0001'
down_revision: str | None = None


def upgrade() -> None:
    op.create_table('budget_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scope_key', sa.String(length=64), nullable=False),
    sa.Column('changed_by', sa.String(length=100), nullable=False),
    sa.Column('old_value', sa.String(length=40), nullable=False),
    sa.Column('new_value', sa.String(length=40), nullable=False),
    sa.Column('changed_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('budget_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_budget_changes_scope_key'), ['scope_key'], unique=False)

    op.create_table('budget_counters',
    sa.Column('scope_key', sa.String(length=64), nullable=False),
    sa.Column('period', sa.String(length=8), nullable=False),
    sa.Column('period_start', sa.DateTime(), nullable=False),
    sa.Column('reserved_nanos', sa.BigInteger(), nullable=False),
    sa.Column('spent_nanos', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('scope_key', 'period', 'period_start')
    )
    op.create_table('budgets',
    sa.Column('scope_key', sa.String(length=64), nullable=False),
    sa.Column('limit_nanos', sa.BigInteger(), nullable=True),
    sa.Column('period', sa.String(length=8), nullable=False),
    sa.Column('updated_by', sa.String(length=100), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('scope_key')
    )
    op.create_table('channels',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('platform', sa.String(length=16), nullable=False),
    sa.Column('workspace_id', sa.String(length=64), nullable=False),
    sa.Column('channel_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('web_search', sa.Boolean(), nullable=False),
    sa.Column('reasoning_effort', sa.String(length=8), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('platform', 'workspace_id', 'channel_id', name='uq_channels_platform_ids')
    )
    op.create_table('deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=300), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('claimed_at', sa.DateTime(), nullable=False),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    op.create_table('budget_refusals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel_pk', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('scope_key', sa.String(length=64), nullable=False),
    sa.Column('needed_nanos', sa.BigInteger(), nullable=False),
    sa.Column('available_nanos', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['channel_pk'], ['channels.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('budget_refusals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_budget_refusals_created_at'), ['created_at'], unique=False)

    op.create_table('budget_reservations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel_pk', sa.Integer(), nullable=False),
    sa.Column('thread_pk', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('counter_keys', sa.String(length=400), nullable=False),
    sa.Column('amount_nanos', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['channel_pk'], ['channels.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('budget_reservations', schema=None) as batch_op:
        batch_op.create_index('ix_budget_reservations_status_expires', ['status', 'expires_at'], unique=False)

    op.create_table('threads',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel_pk', sa.Integer(), nullable=False),
    sa.Column('platform_thread_id', sa.String(length=128), nullable=False),
    sa.Column('history_floor_message_pk', sa.Integer(), nullable=False),
    sa.Column('last_prompt_estimate', sa.Integer(), nullable=False),
    sa.Column('last_prompt_actual', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['channel_pk'], ['channels.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('channel_pk', 'platform_thread_id', name='uq_threads_channel_thread')
    )
    op.create_table('messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('thread_pk', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('dedup_key', sa.String(length=300), nullable=True),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('user_name', sa.String(length=200), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('token_estimate', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['thread_pk'], ['threads.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dedup_key')
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_thread_id', ['thread_pk', 'id'], unique=False)

    op.create_table('usage_ledger',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel_pk', sa.Integer(), nullable=False),
    sa.Column('thread_pk', sa.Integer(), nullable=True),
    sa.Column('reservation_pk', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('model', sa.String(length=64), nullable=False),
    sa.Column('prompt_tokens', sa.Integer(), nullable=False),
    sa.Column('cached_tokens', sa.Integer(), nullable=False),
    sa.Column('completion_tokens', sa.Integer(), nullable=False),
    sa.Column('reasoning_tokens', sa.Integer(), nullable=False),
    sa.Column('web_searches', sa.Integer(), nullable=False),
    sa.Column('cost_nanos', sa.BigInteger(), nullable=False),
    sa.Column('reserved_nanos', sa.BigInteger(), nullable=False),
    sa.Column('usage_known', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('first_token_ms', sa.Integer(), nullable=True),
    sa.Column('duration_ms', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['channel_pk'], ['channels.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['thread_pk'], ['threads.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('reservation_pk')
    )
    with op.batch_alter_table('usage_ledger', schema=None) as batch_op:
        batch_op.create_index('ix_usage_ledger_channel_started', ['channel_pk', 'started_at'], unique=False)
        batch_op.create_index('ix_usage_ledger_started', ['started_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('usage_ledger', schema=None) as batch_op:
        batch_op.drop_index('ix_usage_ledger_started')
        batch_op.drop_index('ix_usage_ledger_channel_started')

    op.drop_table('usage_ledger')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_thread_id')

    op.drop_table('messages')
    op.drop_table('threads')
    with op.batch_alter_table('budget_reservations', schema=None) as batch_op:
        batch_op.drop_index('ix_budget_reservations_status_expires')

    op.drop_table('budget_reservations')
    with op.batch_alter_table('budget_refusals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_budget_refusals_created_at'))

    op.drop_table('budget_refusals')
    op.drop_table('deliveries')
    op.drop_table('channels')
    op.drop_table('budgets')
    op.drop_table('budget_counters')
    with op.batch_alter_table('budget_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_budget_changes_scope_key'))

    op.drop_table('budget_changes')
