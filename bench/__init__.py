"""The service benchmark (`python -m bench.run`, `make bench`), its A/B (`bench.ab`) and
documents (`bench.documents`) runs, and the model-design probes (`probes/`). Only `app.model`
of the service is imported: the service itself runs as `python -m app`."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"  # the default --data
MODEL = ROOT / "models" / "bigru-en"  # the default model folder
