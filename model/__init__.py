"""bincount.model"""
