"""Ground-truth benchmark clips: performances, rendering domains, and the suite that scores trackers."""
