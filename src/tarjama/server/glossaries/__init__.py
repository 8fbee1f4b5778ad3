"""Stored glossaries: the newsroom's agreed renderings, kept in a database and shared by every door.

migrations.py  the schema, versioned
store.py       SQLite (--state-dir) and PostgreSQL (--database-url) behind one class
service.py     what the doors call: checks (text/glossary_entries.py, as for a request's own
               terms), the store's thread, failures as UNAVAILABLE
"""

from .service import Glossaries, open_store
from .store import StoredGlossary

__all__ = ["Glossaries", "StoredGlossary", "open_store"]
