"""Does synthetic data help a skin-lesion classifier? The experiment behind ``classify.py``.

One concern per module:

- ``split``: train / validation / test by lesion (scikit-learn's StratifiedGroupKFold), kept
  in ``split.csv``;
- ``sources``: the ``--synthetic CLASS=SOURCE`` images (a folder, or a GAN run generated
  through generate.py), the leak check against the images a GAN trained on, resolution checks;
- ``arms``: what each arm trains on (real, oversample, synthetic), built from the training
  fold only;
- ``backbones``: the classifiers (Keras Applications without downloads, a small CNN);
- ``train_classifier``: tf.data input, training with early stopping, test predictions;
- ``scoring``: the metrics (ISIC's own scoring package), means and t-intervals over repeats,
  paired differences and verdicts;
- ``report``: report.md, report.json and the figures;
- ``experiment``: runs the whole thing; ``demo``: the built-in demo.
"""
