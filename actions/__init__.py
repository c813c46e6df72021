"""Rasa custom actions (rasa-sdk, app env). One module per feature; no reply text in Python.

Run with `rasa_sdk --actions actions`. Every action opens its own unit of work
(`actions._common.unit_of_work`), calls `relance` services and names responses for the NLG
endpoint, passing variables.
"""
