"""In-tree fitters."""
