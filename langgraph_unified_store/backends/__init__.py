"""One storage module per backend; each is imported lazily so its driver stays optional."""
