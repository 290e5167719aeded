"""The studio's judgements in SQLite: WAL (readers never block the writer), foreign keys on,
schema migrations by `PRAGMA user_version`, one short connection per request.

A vote is a row in `votes` with UNIQUE(item_id, rater): a rater's retry or double click can
never count twice, and each write is one transaction, so a vote that was answered 2xx is on
disk and survives a restart.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import GankitError

MIGRATIONS = [
    # 1: studies, their items (Turing-test images and preference pairs) and the votes on them
    """
    CREATE TABLE studies (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL CHECK (kind IN ('turing', 'pairwise')),
        consent TEXT NOT NULL DEFAULT '',
        runs TEXT NOT NULL,
        n_items INTEGER NOT NULL CHECK (n_items > 0),
        closed INTEGER NOT NULL DEFAULT 0,
        created REAL NOT NULL
    );
    CREATE TABLE items (
        id INTEGER PRIMARY KEY,
        study_id INTEGER REFERENCES studies(id) ON DELETE CASCADE,
        position INTEGER,
        kind TEXT NOT NULL CHECK (kind IN ('turing', 'pairwise')),
        token TEXT NOT NULL UNIQUE,
        run_a TEXT NOT NULL,
        seed_a INTEGER NOT NULL,
        real_a INTEGER NOT NULL DEFAULT 0,
        run_b TEXT,
        seed_b INTEGER,
        created REAL NOT NULL
    );
    CREATE INDEX items_study ON items(study_id, position);
    CREATE TABLE votes (
        id INTEGER PRIMARY KEY,
        item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
        rater TEXT NOT NULL,
        answer TEXT NOT NULL,
        ms INTEGER,
        created REAL NOT NULL,
        UNIQUE (item_id, rater)
    );
    """,
    # 2: raters' consent, recorded once per study and rater before their first answer
    """
    CREATE TABLE consents (
        study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
        rater TEXT NOT NULL,
        created REAL NOT NULL,
        PRIMARY KEY (study_id, rater)
    );
    """,
    # 3: raters issued by the server; a rater's token is a secret, so only its SHA-256 is kept. Votes
    # and consents name raters by id (older rows keep the free-text ids raters typed)
    """
    CREATE TABLE raters (
        id TEXT PRIMARY KEY,
        token_sha256 TEXT NOT NULL UNIQUE,
        created REAL NOT NULL
    );
    """,
]


def connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    con.row_factory = sqlite3.Row
    con.execute("PRAGMA foreign_keys = ON")
    con.execute("PRAGMA busy_timeout = 30000")
    return con


def migrate(path: Path) -> int:
    """Create or upgrade the database; returns its schema version."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = connect(path)
    try:
        con.execute("PRAGMA journal_mode = WAL")
        version = con.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise RuntimeError(f"{path}: schema version {version} is newer than this gankit ({len(MIGRATIONS)})")
        for i in range(version, len(MIGRATIONS)):
            con.execute("BEGIN IMMEDIATE")
            try:
                # statement by statement: executescript() would commit outside this transaction
                for stmt in _statements(MIGRATIONS[i]):
                    con.execute(stmt)
                con.execute(f"PRAGMA user_version = {i + 1}")
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
        return con.execute("PRAGMA user_version").fetchone()[0]
    finally:
        con.close()


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


class Store:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            migrate(self.path)
        except (OSError, sqlite3.DatabaseError) as e:  # a read-only folder, a file that is not SQLite
            raise GankitError(f"{self.path}: cannot open the studio's judgement database ({e})") from e

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        con = connect(self.path)
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One transaction; BEGIN IMMEDIATE takes the write lock up front, so concurrent writers
        queue (busy_timeout) instead of failing half-way."""
        con = connect(self.path)
        try:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        finally:
            con.close()


def now() -> float:
    return time.time()
