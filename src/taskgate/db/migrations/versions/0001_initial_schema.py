"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('connections',
    sa.Column('conn_id', sa.String(length=250), nullable=False),
    sa.Column('conn_type', sa.String(length=500), nullable=False),
    sa.Column('host', sa.String(length=500), nullable=True),
    sa.Column('schema', sa.String(length=500), nullable=True),
    sa.Column('login', sa.Text(), nullable=True),
    sa.Column('password', sa.Text(), nullable=True),
    sa.Column('port', sa.Integer(), nullable=True),
    sa.Column('extra', sa.Text(), nullable=True),
    sa.Column('team', sa.String(length=250), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('conn_id', name=op.f('pk_connections'))
    )
    op.create_table('dags',
    sa.Column('dag_id', sa.String(length=250), nullable=False),
    sa.Column('team', sa.String(length=250), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('dag_id', name=op.f('pk_dags'))
    )
    op.create_table('variables',
    sa.Column('key', sa.String(length=250), nullable=False),
    sa.Column('value', sa.Text(), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('team', sa.String(length=250), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_variables'))
    )
    op.create_table('dag_runs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('dag_id', sa.String(length=250), nullable=False),
    sa.Column('run_id', sa.String(length=250), nullable=False),
    sa.Column('run_type', sa.String(length=50), nullable=False),
    sa.Column('state', sa.String(length=50), nullable=False),
    sa.Column('logical_date', sa.DateTime(timezone=True), nullable=True),
    sa.Column('data_interval_start', sa.DateTime(timezone=True), nullable=True),
    sa.Column('data_interval_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('run_after', sa.DateTime(timezone=True), nullable=False),
    sa.Column('start_date', sa.DateTime(timezone=True), nullable=True),
    sa.Column('end_date', sa.DateTime(timezone=True), nullable=True),
    sa.Column('clear_number', sa.Integer(), nullable=False),
    sa.Column('conf', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['dag_id'], ['dags.dag_id'], name=op.f('fk_dag_runs_dag_id_dags'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dag_runs')),
    sa.UniqueConstraint('dag_id', 'run_id', name=op.f('uq_dag_runs_dag_id_run_id'))
    )
    op.create_table('task_instances',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('dag_id', sa.String(length=250), nullable=False),
    sa.Column('run_id', sa.String(length=250), nullable=False),
    sa.Column('task_id', sa.String(length=250), nullable=False),
    sa.Column('map_index', sa.Integer(), nullable=False),
    sa.Column('try_number', sa.Integer(), nullable=False),
    sa.Column('max_tries', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=50), nullable=False),
    sa.Column('hostname', sa.String(length=1000), nullable=True),
    sa.Column('unixname', sa.String(length=1000), nullable=True),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('queued_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('start_date', sa.DateTime(timezone=True), nullable=True),
    sa.Column('end_date', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('rendered_map_index', sa.String(length=250), nullable=True),
    sa.Column('next_method', sa.String(length=1000), nullable=True),
    sa.Column('next_kwargs', sa.JSON(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['dag_id', 'run_id'], ['dag_runs.dag_id', 'dag_runs.run_id'], name=op.f('fk_task_instances_dag_id_dag_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_task_instances')),
    sa.UniqueConstraint('dag_id', 'run_id', 'task_id', 'map_index', name=op.f('uq_task_instances_dag_id_run_id_task_id_map_index'))
    )
    with op.batch_alter_table('task_instances', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_task_instances_state'), ['state'], unique=False)

    op.create_table('xcoms',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('dag_id', sa.String(length=250), nullable=False),
    sa.Column('run_id', sa.String(length=250), nullable=False),
    sa.Column('task_id', sa.String(length=250), nullable=False),
    sa.Column('map_index', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=512), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('timestamp', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['dag_id', 'run_id'], ['dag_runs.dag_id', 'dag_runs.run_id'], name=op.f('fk_xcoms_dag_id_dag_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_xcoms')),
    sa.UniqueConstraint('dag_id', 'run_id', 'task_id', 'key', 'map_index', name=op.f('uq_xcoms_dag_id_run_id_task_id_key_map_index'))
    )
    op.create_table('rendered_task_instance_fields',
    sa.Column('ti_id', sa.Uuid(), nullable=False),
    sa.Column('rendered_fields', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['ti_id'], ['task_instances.id'], name=op.f('fk_rendered_task_instance_fields_ti_id_task_instances'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('ti_id', name=op.f('pk_rendered_task_instance_fields'))
    )


def downgrade() -> None:
    op.drop_table('rendered_task_instance_fields')
    op.drop_table('xcoms')
    with op.batch_alter_table('task_instances', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_task_instances_state'))

    op.drop_table('task_instances')
    op.drop_table('dag_runs')
    op.drop_table('variables')
    op.drop_table('dags')
    op.drop_table('connections')
