"""Self-supervised adaptation of the image encoder to one clip (the paper's domain-mismatch
half): the clip's crops on disk, the losses, the optimisation loop."""
