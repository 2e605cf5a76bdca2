#!/usr/bin/env bash
# `mstpn device assess` on a fitted simulated device, rendered in headless Chromium.
#
#   results/assess/check_html.sh [GAMES]        from anywhere; default 2 greedy test games
#
# 1. simulates a `characterise` measurement of a preset device (seed 0, 1 % instrument noise),
# 2. assesses it (fit, six functions, tolerance map, GAMES games of the shipped agent, energy)
#    into results/assess/report/,
# 3. renders report.html (a file:// URL, networking off) to results/assess/screenshot.png, and
#    checks that the screenshot is not blank and that the DOM holds every figure as a data URI.
# Needs /usr/bin/chromium (Debian: apt-get install -y chromium).
set -euo pipefail
cd "$(dirname "$0")/../.."
GAMES=${1:-2}
MSTPN=${MSTPN:-.venv/bin/mstpn}
PYTHON=${PYTHON:-.venv/bin/python}
OUT=results/assess
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

"$MSTPN" device simulate --protocol characterise --seed 0 --noise 0.01 --out "$OUT/trace.csv"
rm -rf "$OUT/report"
start=$(date +%s)
"$MSTPN" device assess "$OUT/trace.csv" --out "$OUT/report" --games "$GAMES" --no-progress
echo "assess: $(( $(date +%s) - start )) s"

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
flags=(--headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update
       --disable-sync --no-first-run "--user-data-dir=$profile")
url="file://$PWD/$OUT/report/report.html"
chromium "${flags[@]}" --screenshot="$PWD/$OUT/screenshot.png" --window-size=1200,3000 "$url" 2>/dev/null
chromium "${flags[@]}" --dump-dom "$url" 2>/dev/null > "$profile/dom.html"

"$PYTHON" - "$OUT/screenshot.png" "$profile/dom.html" <<'PY'
import re
import sys

from PIL import Image

shot, dom = Image.open(sys.argv[1]).convert("RGB"), open(sys.argv[2]).read()
colours = len(shot.getcolors(maxcolors=1 << 24))
images = re.findall(r'<img src="([^"]{0,40})', dom)
external = re.findall(r'(?:src|href)="(?:https?:|//)', dom)
print(f"screenshot {shot.size[0]}x{shot.size[1]}, {colours} colours; DOM: {len(images)} images, "
      f"{len(external)} external links")
assert shot.size == (1200, 3000) and colours > 500, "blank or wrong-sized screenshot"
assert images and all(s.startswith("data:image/png;base64,") for s in images), images
assert not external and "Verdict: limited by" in dom
print("ok")
PY
