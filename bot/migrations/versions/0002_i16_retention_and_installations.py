"""retention and forgetting: answers point at the message they answer

Revision ID: 0002_i16
Revises: 0001
Create Date: 2026-11-30 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0002_i16'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reply_to_pk', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_messages_reply_to_pk'), ['reply_to_pk'], unique=False)
    # Answers stored before this revision answer the latest user message before them in their thread.
    op.execute(
        "UPDATE messages SET reply_to_pk = (SELECT max(u.id) FROM messages u WHERE u.thread_pk = messages.thread_pk "
        "AND u.role = 'user' AND u.id < messages.id) WHERE role = 'assistant'"
    )


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_messages_reply_to_pk'))
        batch_op.drop_column('reply_to_pk')
