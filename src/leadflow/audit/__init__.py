"""What happened to a lead and how the flow performs: the compact audit trail of stage changes (`changes`), a lead's
journey, erasure and retention (`trace`), KPIs (`kpis`: read whole; `kpi_rollups`, `kpi_rollups_sql`: the hourly
rollups each run adds to, which a run's KPIs are read from), the HTML report (`report`) and its charts (`charts`), and
the marked test lead that times each hop (`test_lead_probe`).
"""
