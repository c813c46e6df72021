"""Portfolio metrics for credit managers, and the server-side SVG charts that show them."""
