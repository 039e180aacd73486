#!/usr/bin/env bash
# Add the floor to a writable copy of ../shared/peers: `bench/floor/add-to-peers.sh "$P"`,
# then name servers/floor.json among the configs of run-all.sh. It runs on this
# checkout's .venv (make .venv/.dev-installed) and supports the `code` scenario only.
set -euo pipefail
PEERS=${1:?usage: add-to-peers.sh PEERS_COPY}
HERE=$(cd "$(dirname "$0")" && pwd)
PYTHON=$(cd "$HERE/../.." && pwd)/.venv/bin/python
# The path goes into JSON, a shell command and a format string: plain characters only.
case "$PYTHON" in *[!A-Za-z0-9_./-]*) echo "add-to-peers.sh: move the checkout to a path without spaces or quotes: $PYTHON" >&2; exit 2;; esac
[ -x "$PYTHON" ] || { echo "add-to-peers.sh: $PYTHON is missing; run make .venv/.dev-installed" >&2; exit 2; }
mkdir -p "$PEERS/floor"
cp "$HERE/app.py" "$HERE/mint.py" "$HERE/serve.py" "$PEERS/floor/"
printf '#!/usr/bin/env bash\ncd "$(dirname "$0")" && exec %q mint.py --reset\n' "$PYTHON" > "$PEERS/floor/reset.sh"
chmod +x "$PEERS/floor/reset.sh"
sed "s|{python}|$PYTHON|g" "$HERE/floor.json" > "$PEERS/servers/floor.json"
echo "added: $PEERS/servers/floor.json"
