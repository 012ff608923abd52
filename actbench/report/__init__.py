"""Presentation: tables, plots and (later) report files. Nothing here measures or computes statistics."""
