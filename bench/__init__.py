"""Benchmarks that put bigru-serve beside its own ceiling and what users would run instead.

`python -m bench.run` (`make bench`, `make bench-quick`) measures, in one run on one machine:
the model on ONNX Runtime vs PyTorch eager (`engine.py`), raw ORT on the very batches the
service's batcher forms vs the service over HTTP (`service.py`, load from `load.py` in its own
process), all-MiniLM-L6-v2 on ORT as the peer (`peer.py`) and FLOPs per piece against the CPU's
dense matmul rate (`flops.py`); `report.py` turns the numbers into ratios, a Markdown table and
plots under `bench/results/`.
"""
