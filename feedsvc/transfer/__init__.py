"""Data in and out.

- backup.py: `feedsvc backup`, a snapshot for the same backend (SQLite's online backup API,
  or pg_dump);
- archive.py (the portable format, and the check of every line), rules.py (what a row must
  satisfy beyond its types), sequences.py (ids never reused, on both backends), export.py and
  restore.py: `feedsvc export` / `feedsvc restore`, which move a site between backends;
- files.py: every output is written beside its destination and renamed into place, so a crash
  or a refusal never leaves half a file under the name the user gave.
"""
