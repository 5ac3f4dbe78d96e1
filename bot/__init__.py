"""Chat adapters: each turns platform events into ``commands`` requests and renders replies."""
