"""Data: sources, splitting, scaling, the on-disk processed format and the datamodule."""
