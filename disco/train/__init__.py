"""Lightning module, data module, callbacks and the ``disco train`` / ``disco export`` commands."""
