"""Backups and restores of the whole database (GridFS photos included), taken from one point in time.

A backup is a directory: `manifest.json` and one gzip-compressed stream of BSON documents per collection.
- archive.py: the file format (writing with a checksum, verifying, reading back)
- manifest.py: what a backup says about itself, checked before anything is restored (no I/O)
- snapshot.py: the point-in-time read each database server offers
- create.py / restore.py: taking a backup and restoring one
- schedule.py: when the scheduled job takes one and which old ones it prunes (no I/O)
"""
