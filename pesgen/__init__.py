"""pesgen: from a school's billing export to the files the DGFiP (PES V2) and the
collectivity's finance software accept."""

__version__ = "0.1.0"
