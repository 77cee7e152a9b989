"""Readers for the raw formats, the normalized parquet schema, and SFT mixing."""
