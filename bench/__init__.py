"""Benchmarks that put bigru-serve beside its own ceiling and what users would run instead.

`python -m bench.run` (`make bench`, `make bench-quick`) measures, in one run on one machine
(`phases.py`): the model on ONNX Runtime vs PyTorch eager (`runtimes.py`), raw ORT on the very
batches the service's batcher forms (`ceiling.py`, `recorded.py`) vs the service over HTTP
(`service.py`, loaded by `load.py`: wrk, or a stdlib client where wrk is missing), one sentence
per request vs lists and server processes, all-MiniLM-L6-v2 on ORT and a spaCy en_core_web_sm
stand-in as peers (`peer.py`, `spacy_sm.py`) and FLOPs per piece against the CPU's matmul rate
(`probes/flops.py`); `summary.py` turns the numbers into targets and `bounds.py` into what
bounds them, and `report.py` writes the Markdown and plots under `bench/results/`. `ab.py`
compares this checkout with another revision. The model-design probes are in `probes/`.
Only `app.model` of the service is imported: the service itself runs as `python -m app`.
"""
