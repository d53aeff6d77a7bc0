"""What a client needs before its first screen: labels, subscribe template ids, limits, the time."""
