"""Reading reports back and comparing them: micro ratios, train significance, gates."""
