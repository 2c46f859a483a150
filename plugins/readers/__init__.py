"""In-tree readers."""
