"""Other ways of serving the same model, for ``python -m bench serving_peers`` to compare against."""
