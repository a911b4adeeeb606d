"""Detection engines (YARA, ClamAV) and threat labels (AVClass); see ``base.py`` for the contract.

Light on purpose: heavy libraries (yara-x, avclass) are imported by the modules that use them.
"""
