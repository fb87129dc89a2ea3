"""2D facial landmarks in iBUG-68 order: detectors, annotations, the NME metric."""
