"""Sampling temperatures: one per generated sequence."""


def cycle_temperatures(temperatures, num_seqs):
    """One temperature per sequence: fewer values than sequences are cycled; more is an error,
    as is a value <= 0 (ValueError naming the flag)."""
    temperatures = list(temperatures)
    if len(temperatures) > num_seqs:
        raise ValueError(f"--temperature got {len(temperatures)} values for --num_seqs {num_seqs}: "
                         f"pass at most one value per sequence")
    for t in temperatures:
        if t <= 0:
            raise ValueError(f"--temperature values must be positive, got {t}")
    return [temperatures[i % len(temperatures)] for i in range(num_seqs)]
