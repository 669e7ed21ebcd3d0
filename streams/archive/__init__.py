"""The raw archive: every esa.raw line kept as evidence in ``esa-raw-YYYY.MM.DD``, hash-chained
per appliance and day so that an edited or deleted line is detected by ``esatrack verify``."""
