"""2D adapter: signals (image, audio, CT, SISR), the shared fit loop, metrics and runner."""
