"""What every tradeloop HTML page (the backtest report, the sweep page) looks like.

Plain CSS (no braces doubled): a page template puts it in its ``<style>`` and adds its own rules.
"""

from __future__ import annotations

__all__ = ["PAGE_CSS"]

PAGE_CSS = """
  body { margin: 0; background: #f3f4f6; color: #111827;
         font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; }
  header { padding: 24px 32px 8px; }
  h1 { margin: 0; font-size: 22px; }
  .subtitle, .note { margin: 4px 0 0; color: #6b7280; }
  main { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 16px;
         padding: 16px 32px 32px; }
  .panel { background: #fff; border-radius: 8px; padding: 12px 16px;
           box-shadow: 0 1px 2px rgb(0 0 0 / 6%); }
  .wide { grid-column: 1 / -1; }
  h2 { margin: 0 0 8px; font-size: 15px; font-weight: 600; }
  table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
  th, td { padding: 4px 8px; border-bottom: 1px solid #e5e7eb; text-align: right; }
  @media (max-width: 900px) { main { grid-template-columns: 1fr; } }
"""
