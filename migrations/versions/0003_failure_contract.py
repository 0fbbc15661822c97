"""failure contract: once-only signed requests, claimants and reply locations for crash recovery"""

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"


def upgrade() -> None:
    op.create_table(
        "claimants",
        sa.Column("claimant", sa.String(length=80), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("claimant"),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimant", sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column("reply_location", sa.Text(), nullable=True))
        batch_op.create_index("ix_messages_status_claimant", ["status", "claimant"], unique=False)
    op.create_table(
        "request_claims",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("request_claims", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_request_claims_claimed_at"), ["claimed_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_status_claimant")
        batch_op.drop_column("reply_location")
        batch_op.drop_column("claimant")
    op.drop_table("claimants")
    with op.batch_alter_table("request_claims", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_request_claims_claimed_at"))
    op.drop_table("request_claims")
