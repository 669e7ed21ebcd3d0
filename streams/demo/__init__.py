"""``esatrack demo``: the whole chain on the sample logs, end to end, on the local stack."""
