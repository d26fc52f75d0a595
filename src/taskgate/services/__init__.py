"""Services: the lifecycle, the control plane and the access policy.

Plain async functions over an ``AsyncSession``; no FastAPI here. They raise
``taskgate.services.errors`` exceptions, which the API maps to HTTP and the CLI to exit
codes.
"""
