"""Paper tables from results/*.json."""
