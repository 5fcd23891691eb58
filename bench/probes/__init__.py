"""Probes of the model's design, apart from the service benchmark: FLOPs per piece
(`flops.py`, which `bench.run` also reports), tag-path candidates side by side (`tagpath.py`)
and the shared-encoder alternative (`shared_encoder.py`)."""
