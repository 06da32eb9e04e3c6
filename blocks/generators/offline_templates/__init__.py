"""Template assets of the offline generator (HTML, CSS and JS snippets, read as package data)."""
