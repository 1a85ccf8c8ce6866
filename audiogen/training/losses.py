"""Loss maths shared by the models: pure functions, tested on their own."""
import math

LN2 = math.log(2.0)


def nats_to_bits(nats):
    """Convert a loss in nats (natural-log cross-entropy) to bits: `nats / ln 2`."""
    return nats / LN2
