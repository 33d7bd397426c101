"""Alembic migrations of the store's schema (``versions/NNNN_*.py``, revision ids "0001"...).

The store runs them itself (:meth:`digest.store.Store.migrate`), under a lock, whenever a
database is opened behind the head. Revisions 0001-0004 are the schema versions the store
numbered before it used Alembic; a database of that time is stamped with its version and
brought forward. A new revision: copy the newest file, bump ``revision``/``down_revision``
and :data:`digest.store.schema.SCHEMA_VERSION`, and keep the operations portable between
SQLite and PostgreSQL (both run in CI).
"""
