"""Training: the state that survives restarts, one readable step, and the loop that drives it."""
