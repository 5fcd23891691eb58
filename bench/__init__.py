"""The service benchmark, its A/B and documents runs, and the model-design probes: how they
measure is in bench/README.md."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"  # the default --data
MODEL = ROOT / "models" / "bigru-en"  # the default model folder
