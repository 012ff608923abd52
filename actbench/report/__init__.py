"""Presentation: tables, figures, exporters and the HTML page. Nothing here measures or computes statistics."""
