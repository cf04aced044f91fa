"""pycoral-compatible adapters: feed images in, read classes, objects and masks out.

Modules mirror pycoral.adapters (`common`, `classify`, `detect`, `segment`) so pycoral code ports by
changing the import.
"""
