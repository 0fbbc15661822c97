"""answers point at the message they answer (forgetting); Slack installations (multi-workspace OAuth)"""

import sqlalchemy as sa
from alembic import op


revision: str = "0006"
down_revision: str | None = "0005"


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reply_to_pk', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_messages_reply_to_pk'), ['reply_to_pk'], unique=False)
    with op.batch_alter_table('usage_ledger', schema=None) as batch_op:
        batch_op.create_index('ix_usage_ledger_thread', ['thread_pk'], unique=False)
    # Answers stored before this revision answer the latest user message before them in their thread.
    op.execute(
        "UPDATE messages SET reply_to_pk = (SELECT max(u.id) FROM messages u WHERE u.thread_pk = messages.thread_pk "
        "AND u.role = 'user' AND u.id < messages.id) WHERE role = 'assistant'"
    )


    # slack-sdk's SQLAlchemy installation and OAuth state stores, in the library's own shape.
    op.create_table('slack_bots',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('client_id', sa.String(length=32), nullable=False),
    sa.Column('app_id', sa.String(length=32), nullable=False),
    sa.Column('enterprise_id', sa.String(length=32), nullable=True),
    sa.Column('enterprise_name', sa.String(length=200), nullable=True),
    sa.Column('team_id', sa.String(length=32), nullable=True),
    sa.Column('team_name', sa.String(length=200), nullable=True),
    sa.Column('bot_token', sa.String(length=200), nullable=True),
    sa.Column('bot_id', sa.String(length=32), nullable=True),
    sa.Column('bot_user_id', sa.String(length=32), nullable=True),
    sa.Column('bot_scopes', sa.String(length=1000), nullable=True),
    sa.Column('bot_refresh_token', sa.String(length=200), nullable=True),
    sa.Column('bot_token_expires_at', sa.DateTime(), nullable=True),
    sa.Column('is_enterprise_install', sa.Boolean(), nullable=False),
    sa.Column('installed_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('slack_bots', schema=None) as batch_op:
        batch_op.create_index('slack_bots_idx', ['client_id', 'enterprise_id', 'team_id', 'installed_at'], unique=False)

    op.create_table('slack_installations',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('client_id', sa.String(length=32), nullable=False),
    sa.Column('app_id', sa.String(length=32), nullable=False),
    sa.Column('enterprise_id', sa.String(length=32), nullable=True),
    sa.Column('enterprise_name', sa.String(length=200), nullable=True),
    sa.Column('enterprise_url', sa.String(length=200), nullable=True),
    sa.Column('team_id', sa.String(length=32), nullable=True),
    sa.Column('team_name', sa.String(length=200), nullable=True),
    sa.Column('bot_token', sa.String(length=200), nullable=True),
    sa.Column('bot_id', sa.String(length=32), nullable=True),
    sa.Column('bot_user_id', sa.String(length=32), nullable=True),
    sa.Column('bot_scopes', sa.String(length=1000), nullable=True),
    sa.Column('bot_refresh_token', sa.String(length=200), nullable=True),
    sa.Column('bot_token_expires_at', sa.DateTime(), nullable=True),
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('user_token', sa.String(length=200), nullable=True),
    sa.Column('user_scopes', sa.String(length=1000), nullable=True),
    sa.Column('user_refresh_token', sa.String(length=200), nullable=True),
    sa.Column('user_token_expires_at', sa.DateTime(), nullable=True),
    sa.Column('incoming_webhook_url', sa.String(length=200), nullable=True),
    sa.Column('incoming_webhook_channel', sa.String(length=200), nullable=True),
    sa.Column('incoming_webhook_channel_id', sa.String(length=200), nullable=True),
    sa.Column('incoming_webhook_configuration_url', sa.String(length=200), nullable=True),
    sa.Column('is_enterprise_install', sa.Boolean(), nullable=False),
    sa.Column('token_type', sa.String(length=32), nullable=True),
    sa.Column('installed_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('slack_installations', schema=None) as batch_op:
        batch_op.create_index('slack_installations_idx',
                              ['client_id', 'enterprise_id', 'team_id', 'user_id', 'installed_at'], unique=False)

    op.create_table('slack_oauth_states',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('state', sa.String(length=200), nullable=False),
    sa.Column('expire_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    with op.batch_alter_table('usage_ledger', schema=None) as batch_op:
        batch_op.drop_index('ix_usage_ledger_thread')
    op.drop_table('slack_oauth_states')
    with op.batch_alter_table('slack_installations', schema=None) as batch_op:
        batch_op.drop_index('slack_installations_idx')
    op.drop_table('slack_installations')
    with op.batch_alter_table('slack_bots', schema=None) as batch_op:
        batch_op.drop_index('slack_bots_idx')
    op.drop_table('slack_bots')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_messages_reply_to_pk'))
        batch_op.drop_column('reply_to_pk')
