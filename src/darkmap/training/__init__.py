"""Training the shipped linking models on synthetic worlds (``darkmap link train``).

Outside the runtime path of a user's job: linking on real data only reads the models
this package wrote (``darkmap/resolve/models/*.json``).
"""

__all__: list[str] = []
