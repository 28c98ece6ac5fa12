#!/usr/bin/env bash
# Installs what lvsd's tests, lab and benchmarks need, only when something is
# missing: Debian packages (as root) and Go modules. Idempotent and quiet.
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have ip               || need+=(iproute2)
have keepalived       || need+=(keepalived)
have ipvsadm          || need+=(ipvsadm)
have tcpdump          || need+=(tcpdump)
# nft: the tests compare lvsd's nftables table with keepalived's (lvsd does not run it).
have nft              || need+=(nftables)
have qemu-system-x86_64 || need+=(qemu-system-x86)
# The lab needs the static busybox (a dynamic one cannot run in the initramfs).
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || need+=(busybox-static)
have cpio             || need+=(cpio)
have depmod           || need+=(kmod)
have hyperfine        || need+=(hyperfine)
[ -x /usr/bin/time ]  || need+=(time)
have python3          || need+=(python3)
have setpriv          || need+=(util-linux)
have chromium         || need+=(chromium)
have systemd-analyze  || need+=(systemd)
# The Debian package (make deb) and its tests: lintian, a clean root built
# by mmdebstrap (cached as .tar.zst), the man pages rendered by man/groff.
have dpkg-deb         || need+=(dpkg)
have lintian          || need+=(lintian)
have mmdebstrap       || need+=(mmdebstrap)
have zstd             || need+=(zstd)
have man              || need+=(man-db)
have groff            || need+=(groff-base)
have chroot           || need+=(coreutils)
have git              || need+=(git)
# monitoring/: promtool (rules and their unit tests) and a real Prometheus.
have promtool         || need+=(prometheus)
# BGP tests: BIRD 2, a real router peering with lvsd.
have bird             || need+=(bird2)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && have apt-get; then
    echo "deps: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "deps: missing ${need[*]} (run as root on Debian to install them)" >&2
  fi
fi
if have go; then
  go mod download
else
  echo "deps: Go is not installed (https://go.dev/dl; or Debian's golang package)" >&2
  exit 1
fi
