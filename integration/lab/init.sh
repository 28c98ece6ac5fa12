#!/bin/sh
# PID 1 of the lvsd lab VM (busybox sh). Mounts the basics, loads the
# kernel modules listed by the image builder, runs /lab/scenario.sh (with
# /lab/lib.sh sourced first), writes
# /results as a tar archive onto the scratch disk /dev/vda and reboots
# (QEMU runs with -no-reboot, so that ends the VM).
export PATH=/lab/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mkdir -p /run/netns /run/lab /results
echo 0 > /proc/sys/kernel/printk_ratelimit 2>/dev/null
KVER=$(uname -r)
while read -r m; do
	[ -n "$m" ] || continue
	insmod "/lib/modules/$KVER/$m" 2>/tmp/insmod.err || {
		grep -q 'File exists' /tmp/insmod.err || echo "lab: insmod $m: $(cat /tmp/insmod.err)"
	}
done < /usr/lib/lvsd-lab/modules.list
hostname lab
# A syslog sink: daemons that log to syslog (keepalived) would otherwise
# fall back to writing on the console.
syslogd -O /results/syslog.log || echo "lab: syslogd failed"
/usr/bin/ip link set lo up
read -r up _ < /proc/uptime
echo "LVSD-LAB-BOOTED uptime=$up kernel=$KVER"
t=$(cat /lab/timeout 2>/dev/null || echo 120)
cd /lab
timeout -s KILL "$t" sh -c ". /lab/lib.sh && . /lab/scenario.sh" < /dev/null
rc=$?
echo "$rc" > /results/exit-status
read -r up _ < /proc/uptime
echo "LVSD-LAB-SCENARIO-DONE rc=$rc uptime=$up"
if [ -b /dev/vda ] && tar -C /results -cf /dev/vda . ; then
	sync
	echo "LVSD-LAB-EXIT $rc results=ok"
else
	echo "LVSD-LAB-EXIT $rc results=failed"
fi
reboot -f
sleep 5
echo b > /proc/sysrq-trigger
