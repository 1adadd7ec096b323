"""The ground floor: what every other package may import, and which imports none of them.

The architecture IR and its importers (``arch``), the space registry (``spaces``), the
shared types (``types``, ``records``, ``errors``), settings (``config``), the device
choice (``device``) and small utilities (``lazy``, ``tables``). ``lde``, ``predictor``
and ``probenet`` stand on this floor; the application (``tapas.app``) stands on them.
"""
