"""In-tree aligners."""
