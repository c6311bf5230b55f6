#!/usr/bin/env python3
"""Generates shared/data/holidays.json, the public holidays the compliance engine blocks contact on.

From the maintained `holidays` package on PyPI (MIT), pinned below so a rerun is reproducible:

    python3 -m venv /tmp/hv && /tmp/hv/bin/pip install holidays==0.109
    /tmp/hv/bin/python scripts/gen-holidays.py > shared/data/holidays.json

Countries and subdivisions are those cobro's presets name (national calendars, plus the Brazilian
states and Spanish communities whose laws or proxies the presets use). Years: 2024 to 2030; a
year outside the file makes the engine refuse to send (fail closed), so extend the range before
it runs out. Municipal holidays are not in the package: add them by hand to `overlay` below.
"""
import json
import sys

import holidays

PINNED = "0.109"
YEARS = range(2024, 2031)
CALENDARS = {
    "CL": [None],
    "CO": [None],
    "PE": [None],
    "MX": [None],
    "AR": [None],
    "US": [None],
    "GB": [None],
    "ES": [None, "MD", "CT", "AN", "VC"],
    "BR": [None, "SP", "RJ"],
}
# Hand-kept additions (decreed days the package does not know), as {"CL": {"2026-11-16": "..."}}.
overlay = {}


def main():
    if holidays.__version__ != PINNED:
        sys.exit(f"holidays {holidays.__version__} installed; this file is generated with {PINNED}")
    out = {"source": f"python holidays {PINNED} (MIT)", "years": [YEARS.start, YEARS.stop - 1], "calendars": {}}
    for country, subdivisions in CALENDARS.items():
        for subdiv in subdivisions:
            cal = holidays.country_holidays(country, subdiv=subdiv, years=YEARS)
            key = country if subdiv is None else f"{country}-{subdiv}"
            days = {d.isoformat(): name for d, name in sorted(cal.items())}
            days.update(overlay.get(key, {}))
            out["calendars"][key] = dict(sorted(days.items()))
    json.dump(out, sys.stdout, ensure_ascii=False, indent=0, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
