"""Supervised fine-tuning: tokenization and loss masking, the dataset, and the recipe."""
