"""Data: recorded play written as shards, and random clips read back for training."""
