"""Benchmarks of any registered model, printed as figures (never asserted): inference speed and memory
(`speed`, tools/benchmark.py), training memory by batch size (`train_memory`, tools/benchmark.py --train) and
label maps against the argmax of resized scores (`label_maps`, tools/benchmark_label_maps.py). They ask a model
only what the model protocol declares; the measuring tools they share are in `sed.utils.measure`."""
