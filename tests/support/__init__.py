"""What tests share: live servers and workers, waiting on a condition, uploads, a toy adapter method."""
