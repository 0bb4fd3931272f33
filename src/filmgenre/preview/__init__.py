"""Infrastructure around the study, not part of it: a preview of Quarto's output (``render``) where
Quarto cannot be installed, built from nbclient, pandoc and typst wheels."""
