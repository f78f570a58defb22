"""A data set's images: ``find`` (every layout, label CSVs, exclusions), ``decode`` (decoding
once, the cache) and ``labelled`` (every labelled image, all classes). The seeded training
stream and the one-call loaders are in the top-level ``data_loader.py``."""
