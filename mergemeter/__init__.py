"""mergemeter: issues into small, tested, merged pull requests, metered by cost per accepted change.

The package holds what is not a flow, task or block: settings, the command line and the demo.
"""
