"""bincount.gateware"""
