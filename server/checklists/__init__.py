"""Checklist definitions: reading YAML (loading), finding every problem (validation), publishing
immutable versions (publishing) and rendering them for phones (serving)."""
