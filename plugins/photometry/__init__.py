"""In-tree photometry."""
