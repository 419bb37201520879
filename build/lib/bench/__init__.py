"""bench: a harness that measures which training-acceleration strategies still matter."""
