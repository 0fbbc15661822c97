"""admin console: signing key and used sign-in links"""

import sqlalchemy as sa
from alembic import op


revision: str = "0002"
down_revision: str | None = "0001"


def upgrade() -> None:
    op.create_table('console_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('secret', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('console_link_uses',
    sa.Column('nonce', sa.String(length=64), nullable=False),
    sa.Column('admin_id', sa.String(length=100), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('nonce')
    )


def downgrade() -> None:
    op.drop_table('console_link_uses')
    op.drop_table('console_keys')
