"""The claims registry, the measurements and the report (``python -m claims report``)."""
