#!/usr/bin/env bash
# Builds the Debian package of lvsd with dpkg-deb from this tree (make deb):
#   packaging/deb/build.sh [OUTDIR]      (default bin/)
# The version comes from git: the latest tag vX.Y.Z (a commit after it adds
# +gitN.HASH), else 0.1.0~gitYYYYMMDD.HASH; +dirty for uncommitted changes.
# Prints the path of the .deb.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-bin}
export PATH="$PATH:/usr/local/go/bin"
GO=${GO:-go}

if [ -z "${LVSD_DEB_VERSION:-}" ] && ! git rev-parse HEAD >/dev/null 2>&1; then
	echo "build.sh: not a git checkout: set LVSD_DEB_VERSION" >&2
	exit 1
fi
if [ -z "${LVSD_DEB_VERSION:-}" ]; then
	hash=$(git rev-parse --short=7 HEAD)
	if tag=$(git describe --tags --abbrev=0 --match 'v[0-9]*' 2>/dev/null); then
		n=$(git rev-list --count "$tag"..HEAD)
		LVSD_DEB_VERSION=${tag#v}
		[ "$n" = 0 ] || LVSD_DEB_VERSION+="+git$n.$hash"
	else
		LVSD_DEB_VERSION="0.1.0~git$(git log -1 --format=%cd --date=format:%Y%m%d).$hash"
	fi
	git diff --quiet HEAD -- 2>/dev/null || LVSD_DEB_VERSION+="+dirty"
fi
version=$LVSD_DEB_VERSION
arch=$(dpkg --print-architecture)
goarch=$($GO env GOARCH)
# The changelog's date is the commit's: the same commit builds the same package.
date=$(git log -1 --format=%cD 2>/dev/null || date -R)
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
export SOURCE_DATE_EPOCH
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/root
install -d "$root/DEBIAN" "$root/usr/sbin" "$root/lib/systemd/system" "$root/etc/default" \
	"$root/usr/share/man/man8" "$root/usr/share/man/man5" "$root/usr/share/doc/lvsd/monitoring"

# PIE (ASLR): with CGO_ENABLED=0 still no shared library, and lintian
# knows it for what it is (a non-PIE static binary is its error).
CGO_ENABLED=0 GOARCH=$goarch $GO build -buildmode=pie -trimpath -buildvcs=false \
	-ldflags "-s -w -X main.version=$version" -o "$root/usr/sbin/lvsd" .
install -m 0644 packaging/lvsd.service "$root/lib/systemd/system/lvsd.service"
install -m 0644 packaging/lvsd-realserver.service "$root/lib/systemd/system/lvsd-realserver.service"
install -m 0644 packaging/lvsd.default "$root/etc/default/lvsd"
gzip -9n <packaging/man/lvsd.8 >"$root/usr/share/man/man8/lvsd.8.gz"
gzip -9n <packaging/man/lvsd.conf.5 >"$root/usr/share/man/man5/lvsd.conf.5.gz"
doc=$root/usr/share/doc/lvsd
install -m 0644 packaging/deb/copyright "$doc/copyright"
install -m 0644 packaging/deb/README.Debian "$doc/README.Debian"
for f in README.md docs/lvsd.md docs/lvsd.conf.md docs/migrating-from-keepalived.md docs/healthchecks.md; do
	gzip -9n <"$f" >"$doc/$(basename "$f").gz"
done
if [ -d monitoring ]; then
	for f in monitoring/*.yml monitoring/*.json; do
		[ -e "$f" ] && install -m 0644 "$f" "$doc/monitoring/"
	done
fi
cat >"$stage/changelog" <<CL
lvsd ($version) unstable; urgency=medium

  * Built from git commit $commit.

 -- lvsd maintainers <lvsd@lists.lvsd.org>  $date
CL
gzip -9n <"$stage/changelog" >"$doc/changelog.gz"

for s in postinst prerm postrm; do install -m 0755 "packaging/deb/$s" "$root/DEBIAN/$s"; done
echo /etc/default/lvsd >"$root/DEBIAN/conffiles"
size=$(du -k -s --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" packaging/deb/control.in >"$root/DEBIAN/control"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums" "$root/DEBIAN/control" "$root/DEBIAN/conffiles"
find "$root" -type d -exec chmod 0755 {} +
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$out"
deb=$out/lvsd_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
