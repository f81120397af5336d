"""Quote-to-cash KPIs (DESIGN.md section 1): computed from the store's objects, sliced,
windowed, snapshotted into `kpi_snapshots`, exposed to Prometheus, the API and the CLI."""
