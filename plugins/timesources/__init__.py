"""In-tree time sources: burned-in VTI timestamps (OCR) and the container's own times."""
