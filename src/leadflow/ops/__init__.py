"""Operating leadflow: deployments (`deploy`), alert blocks and Automations (`alerts`), secret references (`secrets`)
and preflight checks of every system (`doctor`).
"""
