"""bincount.hw"""
