"""Reports for people: the self-contained HTML page."""
