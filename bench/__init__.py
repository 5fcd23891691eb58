"""Benchmarks that put bigru-serve beside its own ceiling and what users would run instead.

`python -m bench.run` (`make bench`, `make bench-quick`) measures, in one run on one machine:
the model on ONNX Runtime vs PyTorch eager (`engine.py`), raw ORT on the very batches the
service's batcher forms (`ceiling.py`) vs the service over HTTP (`service.py`, load from `wrk`
via `wrk.py` or from `load.py`, in its own process), one sentence per request vs lists and
server processes (`single.py`), all-MiniLM-L6-v2 on ORT and a spaCy en_core_web_sm stand-in as
peers (`peer.py`, `spacy_sm.py`) and FLOPs per piece against the CPU's dense matmul rate
(`flops.py`); `report.py` turns the numbers into targets (`targets.py`), bounds (`bounds.py`)
and tables (`tables.py`) in Markdown, and `plots.py` draws, under `bench/results/`.
"""
