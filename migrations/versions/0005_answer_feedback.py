"""answer feedback: one rating per person per answer"""

import sqlalchemy as sa
from alembic import op


revision: str = "0005"
down_revision: str | None = "0004"


def upgrade() -> None:
    op.create_table('answer_feedback',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('answer_key', sa.String(length=300), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('helpful', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('answer_key', 'user_id', name='uq_answer_feedback_answer_user')
    )
    with op.batch_alter_table('answer_feedback', schema=None) as batch_op:
        batch_op.create_index('ix_answer_feedback_updated', ['updated_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('answer_feedback', schema=None) as batch_op:
        batch_op.drop_index('ix_answer_feedback_updated')

    op.drop_table('answer_feedback')
