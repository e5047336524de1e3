"""Delivering notifications (SMS, e-mail) written to the outbox by the areas that send them."""
