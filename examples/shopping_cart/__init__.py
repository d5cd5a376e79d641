"""A shopping cart service: the example of the "Your first service" guide."""
