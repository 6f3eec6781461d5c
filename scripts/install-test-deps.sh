#!/usr/bin/env bash
# Debian packages the build and the tests need (run as root).
#   build:  libpcap-dev, a C++ toolchain and python3 for node-gyp (the pcap binding)
#   tests:  nfdump (nfcapd collector), tshark/editcap (independent decoder),
#           python3-scapy (fixture generator), iproute2 (network namespaces),
#           tcpreplay (live replay), softflowd (benchmark reference), time (GNU time:
#           the benchmark's wall time and peak RSS),
#           prometheus (promtool and a real server scraping the probe's /metrics),
#           bsdutils (script: a pseudo-terminal for the progress bar test),
#           rsh-client (Debian's real rsh client driving the IPCAD rsh server; util-linux's runuser
#           runs it as another user; no rsh server is needed: flowprobe is the server),
#           libfixbuf-tools (ipfixDump: an independent IPFIX reader for the v9/IPFIX encoder's tests),
#           util-linux (also setpriv, unshare and nsenter: the image's run as PID 1 with its
#           capabilities, and its healthcheck inside it), systemd (systemd-analyze verify of the unit)
set -euo pipefail
packages=(libpcap-dev g++ make python3 nfdump tshark wireshark-common python3-scapy iproute2 iputils-ping tcpreplay softflowd time procps prometheus bsdutils rsh-client util-linux systemd libfixbuf-tools)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-test-deps: all Debian packages present"
  exit 0
fi
echo "install-test-deps: installing ${missing[*]}"
# tshark asks whether non-root users may capture: answer it up front.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
