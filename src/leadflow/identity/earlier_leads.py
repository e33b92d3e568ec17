"""The leads of a streamed file's earlier chunks, as a compact key index: normalized address → what a repeat of it
points to.

A file read in chunks cannot keep its earlier chunks' frames (memory would grow with the file), but the
within-batch duplicate rule needs to know whether an address was seen before. This index keeps one row per
distinct address: a 64-bit hash of the address (the table's integer key, cheap to insert), the address itself
(compared on lookup, so a hash collision never makes a duplicate) and the repeat's target (the first lead's lead_id,
"email:<address>" when it had none, or the CRM record that first lead itself duplicates). It lives in a throwaway
SQLite file beside the run's other temporary files, with a small page cache, so its memory stays flat from 1M leads
to 10M; a lookup reads only the chunk's addresses.

The first lead to reach the index with an address wins (`INSERT OR IGNORE`): a file is read in order, so that is
the first lead of the file with the address, except within one chunk, where the earliest created is the original
(`leadflow.identity.duplicates`, rule 3) and is the one added.
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path
from types import TracebackType

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from leadflow.identity.normalize import normalize_emails

_CACHE_KIB = 8 * 1024
"""SQLite's page cache for the index (negative PRAGMA cache_size = KiB): the index's memory, whatever its size."""


def _hashes(emails: pd.Series) -> np.ndarray:
    """A signed 64-bit hash per address (SQLite's INTEGER), computed in one vectorised pass."""
    return pd.util.hash_pandas_object(emails.astype("string"), index=False).to_numpy().view(np.int64)


class EarlierLeads:
    """Normalized address → repeat target for the leads of a file's chunks processed so far (see the module)."""

    def __init__(self, folder: Path | str | None = None) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="leadflow-earlier-", dir=folder)
        self._db = sqlite3.connect(Path(self._folder.name) / "earlier.db")
        self._db.executescript(
            f"PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA locking_mode=EXCLUSIVE; "
            f"PRAGMA cache_size=-{_CACHE_KIB}; "
            "CREATE TABLE earlier (hash INTEGER PRIMARY KEY, email TEXT NOT NULL, target TEXT NOT NULL);"
        )
        self.size = 0

    def targets(self, emails: pd.Series) -> pd.Series:
        """For each address (normalized here, as the duplicate rules do), the target an earlier chunk left; NA when
        none did. On `emails.index`."""
        keys = normalize_emails(emails)
        out = pd.Series(pd.NA, index=emails.index, dtype="string")
        if not self.size:
            return out
        wanted = keys.dropna().drop_duplicates()
        if not len(wanted):
            return out
        # The hashes go in as one JSON array (json_each reads it in C; no Python tuple bound per address), each
        # looked up by the table's integer key.
        hashes = np.unique(_hashes(wanted))
        found = self._db.execute(
            "SELECT e.email, e.target FROM json_each(?) w CROSS JOIN earlier e ON e.hash = w.value",
            ("[" + ",".join(map(str, hashes.tolist())) + "]",),
        ).fetchall()
        if found:
            # Looked up by the address itself (one Arrow hash lookup, no dict): an address whose hash matched
            # another's finds nothing.
            known, targets = zip(*found)
            addresses = pa.chunked_array(keys.array.__arrow_array__())
            at = pc.index_in(addresses, value_set=pa.array(known, type=addresses.type))
            picked = pd.array(list(targets), dtype="string").take(
                pc.fill_null(at, -1).to_numpy(zero_copy_only=False), allow_fill=True)
            out = pd.Series(picked, index=keys.index, dtype="string")
        return out

    def add(self, frame: pd.DataFrame) -> None:
        """Remember the addresses of a processed chunk's leads (`email`, `lead_id`, `duplicate_of`): a later repeat
        points to what the lead points to, or to the lead itself."""
        if not len(frame) or "email" not in frame:
            return
        keys = normalize_emails(frame["email"])
        lead_id = frame["lead_id"].astype("string").str.strip() if "lead_id" in frame else None
        own = ("email:" + keys) if lead_id is None else lead_id.mask(lead_id == "").fillna("email:" + keys)
        target = frame["duplicate_of"].astype("string").fillna(own) if "duplicate_of" in frame else own
        first = keys.notna().to_numpy(dtype=bool) & ~keys.duplicated().to_numpy(dtype=bool)
        emails, targets = keys[first], target[first]
        hashes = _hashes(emails)
        order = np.argsort(hashes, kind="stable")  # in key order: the table's B-tree pages are filled one by one
        before = self._db.total_changes
        with self._db:  # one transaction: autocommit would make every row its own
            self._db.executemany("INSERT OR IGNORE INTO earlier VALUES (?, ?, ?)", zip(
                hashes[order].tolist(), emails.iloc[order].tolist(), targets.iloc[order].tolist(), strict=True))
        self.size += self._db.total_changes - before

    def close(self) -> None:
        self._db.close()
        self._folder.cleanup()

    def __enter__(self) -> EarlierLeads:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
