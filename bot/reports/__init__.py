"""Report files (workbook, CSV, charts) built from `bot.services.report_figures`."""
