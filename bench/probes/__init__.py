"""Probes of the model's design, apart from the service benchmark."""
