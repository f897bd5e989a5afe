"""Reports: aggregation math (pure), tabular exports, PDF audit reports and trend charts."""
