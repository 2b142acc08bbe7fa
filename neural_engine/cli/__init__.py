"""Command-line edge: argument parsing and turning user errors into one-line exits."""
