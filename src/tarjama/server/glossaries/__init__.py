"""Stored glossaries: the newsroom's agreed renderings, kept in a database and shared by every door.

entries.py     the one check of a glossary's entries (a request's own terms use it too)
migrations.py  the schema, versioned
store.py       SQLite (--state-dir) and PostgreSQL (--database-url) behind one class
service.py     what the doors call: checks, the store's thread, failures as UNAVAILABLE
"""

from .service import Glossaries, open_store
from .store import StoredGlossary

__all__ = ["Glossaries", "StoredGlossary", "open_store"]
