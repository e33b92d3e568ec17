"""What happened to a lead and how the flow performs: the compact audit trail of stage changes (`changes`), a lead's
journey, erasure and retention (`trace`), KPIs (`kpis`: read whole; `kpi_rollups`, `kpi_rollups_sql`: the hourly
rollups each run adds to, which a run's KPIs are read from, and their histograms, `kpi_histograms`), the summary the
report and `leadflow kpis --json` share (`kpi_report`), durations as people read them (`durations`), picklist folding
(`picklists`), the HTML report (`report`), the numbers only it shows (`report_sections`: trends against the previous
period, SLA by rule and owner, owner load, quarantine by stage and expectation) and its charts (`charts`,
`kpi_charts`), and the marked test lead that times each hop (`test_lead_probe`).
"""
