"""Data in and out: backups (backup.py), the portable archive (archive.py, export.py,
restore.py). Every file is written beside its destination and renamed into place (files.py),
so a crash or a refusal never leaves half a file under the name the user gave."""
