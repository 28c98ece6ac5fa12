#!/usr/bin/env python3
"""VRRP at scale (issue 17, target 4): lvsd and keepalived in the same run.

Network namespaces on the host kernel (no IPVS needed): a bridge namespace
with one bridge per interface, and two router namespaces r1 and r2, each with
one veth per bridge. Everything is measured from the wire (tcpdump on the
bridges, kernel timestamps in nanoseconds) and from /proc.

  steady   : the daemon under test in r1, MASTER of every instance (VRIDs
             1..N on each interface), r2 empty (the capture is the listener).
             CPU = utime+stime of all its processes over a fixed window;
             jitter = per VRID, |gap between two adverts - advert_int|,
             p50 / p99 / max over all VRIDs.
  failover : the daemon in r1 (priority 150) and r2 (priority 100, the
             daemon under test as BACKUP); after the steady window, kill -9
             of r1's process group. Per VRID: r2's first advert - r1's last
             advert; overhead = that - Master_Down_Interval. The backup's CPU
             over the window before the kill is reported too.

Prints one JSON line per run. Addresses: 192.0.2.0/24 for the routers,
198.51.100.0/24 and 203.0.113.0/24 (/32 each) for the VIPs. Every wait is
bounded; namespaces and processes are removed on exit, also on failure.
"""
import argparse, json, os, signal, statistics, struct, subprocess, sys, tempfile, time

IFACES = ("eth0", "eth1")
ROUTER_ADDR = {("r1", 0): "192.0.2.11/26", ("r2", 0): "192.0.2.12/26",
               ("r1", 1): "192.0.2.75/26", ("r2", 1): "192.0.2.76/26"}
VIP_NET = ("198.51.100.", "203.0.113.")


def sh(*a, check=True):
    return subprocess.run(list(a), check=check, capture_output=True, text=True)


class Lab:
    def __init__(self, tag, nif):
        self.tag, self.nif = tag, nif
        self.ns = {k: f"{tag}{k}" for k in ("br", "r1", "r2")}
        self.teardown()
        for n in self.ns.values():
            sh("ip", "netns", "add", n)
        for r in ("r1", "r2"):
            sh("ip", "-n", self.ns[r], "link", "set", "lo", "up")
        for i in range(nif):
            br = f"br{i}"
            sh("ip", "-n", self.ns["br"], "link", "add", br, "type", "bridge")
            sh("ip", "-n", self.ns["br"], "link", "set", br, "up")
            for r in ("r1", "r2"):
                peer = f"p{r}{i}"
                sh("ip", "-n", self.ns["br"], "link", "add", peer, "type", "veth", "peer", "name",
                   IFACES[i], "netns", self.ns[r])
                sh("ip", "-n", self.ns["br"], "link", "set", peer, "master", br, "up")
                sh("ip", "-n", self.ns[r], "link", "set", IFACES[i], "up")
                sh("ip", "-n", self.ns[r], "addr", "add", ROUTER_ADDR[(r, i)], "dev", IFACES[i])

    def teardown(self):
        for n in self.ns.values():
            sh("ip", "netns", "del", n, check=False)


def conf(prio, state, n, nif, version, advert, sync):
    out = [f"global_defs {{\n  router_id scale{prio}\n  vrrp_version {version}\n"
           "  vrrp_garp_master_delay 0\n}\n"]
    for i in range(nif):
        for vrid in range(1, n + 1):
            out.append(f"vrrp_instance VI_{i}_{vrid} {{\n  state {state}\n  interface {IFACES[i]}\n"
                       f"  virtual_router_id {vrid}\n  priority {prio}\n  advert_int {advert}\n"
                       f"  virtual_ipaddress {{\n    {VIP_NET[i]}{vrid - 1}/32\n  }}\n}}\n")
    if sync:
        for vrid in range(1, n + 1):
            members = " ".join(f"VI_{i}_{vrid}" for i in range(nif))
            out.append(f"vrrp_sync_group SG_{vrid} {{\n  group {{\n    {members}\n  }}\n}}\n")
    return "".join(out)


def session_pids(sid):
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            f = open(f"/proc/{d}/stat").read()
        except OSError:
            continue
        fields = f[f.rindex(")") + 2:].split()
        if int(fields[3]) == sid:  # field 6: session
            pids.append(int(d))
    return pids


def cpu_ticks(pids):
    t = {}
    for p in pids:
        try:
            f = open(f"/proc/{p}/stat").read()
        except OSError:
            continue
        fields = f[f.rindex(")") + 2:].split()
        t[p] = int(fields[11]) + int(fields[12])  # fields 14, 15: utime, stime
    return t


def read_pcap(path):
    """[(ts, src, vrid, prio)] of the VRRP packets in a pcap (Ethernet, IPv4)."""
    data = open(path, "rb").read()
    if len(data) < 24:
        return []
    magic = struct.unpack("<I", data[:4])[0]
    if magic == 0xa1b23c4d:
        div = 1e9
    elif magic == 0xa1b2c3d4:
        div = 1e6
    else:
        raise SystemExit(f"{path}: not a little-endian pcap")
    out, off = [], 24
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack_from("<IIII", data, off)
        off += 16
        pkt = data[off:off + incl]
        off += incl
        if len(pkt) < 14 + 20 + 8 or pkt[12:14] != b"\x08\x00":
            continue
        ihl = (pkt[14] & 15) * 4
        if pkt[14 + 9] != 112:
            continue
        src = ".".join(str(b) for b in pkt[26:30])
        v = pkt[14 + ihl:]
        out.append((sec + frac / div, src, v[1], v[2]))
    return out


def percentile(xs, q):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, int(round(q * (len(xs) - 1)))))
    return xs[k]


class Run:
    def __init__(self, args, tag, nif, sync, two):
        self.args, self.tag, self.nif = args, tag, nif
        self.dir = tempfile.mkdtemp(prefix=f"vrrpscale-{tag}-")
        self.lab = Lab(tag, nif)
        self.procs, self.caps, self.tds = {}, [], []
        self.sync, self.two = sync, two

    def capture(self):
        for i in range(self.nif):
            p = os.path.join(self.dir, f"br{i}.pcap")
            err = open(os.path.join(self.dir, f"br{i}.tcpdump.err"), "w")
            td = subprocess.Popen(["ip", "netns", "exec", self.lab.ns["br"], "tcpdump", "-i", f"br{i}", "-n",
                                   "-s", "96", "-B", "8192", "--time-stamp-precision=nano", "-w", p,
                                   "ip proto 112"], stdout=subprocess.DEVNULL, stderr=err)
            self.caps.append(p)
            self.tds.append((td, err))
        time.sleep(0.5)

    def start(self, r, prio, state):
        a = self.args
        c = os.path.join(self.dir, f"{r}.conf")
        open(c, "w").write(conf(prio, state, a.instances, self.nif, a.version, a.advert, self.sync))
        cmd = a.cmd.format(conf=c, dir=self.dir, ns=f"{self.tag}{r}")
        env = dict(os.environ)
        if a.cpuprofile and r == a.profile_router:
            env["LVSD_CPUPROFILE"] = a.cpuprofile
        log = open(os.path.join(self.dir, f"{r}.log"), "w")
        self.procs[r] = subprocess.Popen(["ip", "netns", "exec", self.lab.ns[r], "sh", "-c", "exec " + cmd],
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)

    def stop_capture(self):
        drops = 0
        for td, err in self.tds:
            td.send_signal(signal.SIGINT)
            try:
                td.wait(10)
            except subprocess.TimeoutExpired:
                td.kill()
            err.close()
        for i in range(self.nif):
            for line in open(os.path.join(self.dir, f"br{i}.tcpdump.err")):
                if "dropped by kernel" in line:
                    drops += int(line.split()[0])
        self.tds = []
        pkts = []
        for p in self.caps:
            pkts.extend((ts, src, vrid, prio, i) for (ts, src, vrid, prio) in read_pcap(p)
                        for i in [self.caps.index(p)])
        return pkts, drops

    def cpu_window(self, r, seconds):
        sid = self.procs[r].pid
        pids = session_pids(sid)
        t0, c0 = time.time(), cpu_ticks(pids)
        time.sleep(seconds)
        t1, c1 = time.time(), cpu_ticks(session_pids(sid))
        hz = os.sysconf("SC_CLK_TCK")
        used = sum(c1[p] - c0.get(p, 0) for p in c1) / hz
        return t0, t1, used, len(c1)

    def close(self):
        for td, _ in self.tds:
            td.kill()
        for p in self.procs.values():  # SIGTERM first: lvsd writes LVSD_CPUPROFILE at exit
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in self.procs.values():
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.lab.teardown()


def jitter(pkts, src_prefix, t0, t1, advert, n, nif):
    by = {}
    for ts, src, vrid, prio, i in pkts:
        if src.startswith(src_prefix) and prio != 0 and t0 <= ts <= t1:
            by.setdefault((i, vrid), []).append(ts)
    devs, missing = [], 0
    for i in range(nif):
        for vrid in range(1, n + 1):
            ts = sorted(by.get((i, vrid), []))
            if len(ts) < 2:
                missing += 1
                continue
            devs.extend(abs((b - a) - advert) for a, b in zip(ts, ts[1:]))
    return devs, missing


def master_down(advert, version, prio):
    skew = (256 - prio) / 256.0 * (advert if version == 3 else 1.0)
    return 3 * advert + skew


def settle(args):
    # The daemons start as BACKUP of nothing (state MASTER goes through
    # Master_Down_Interval in some versions): wait for the takeover and a bit.
    return master_down(args.advert, args.version, 150) + 2.0


def steady(args):
    run = Run(args, args.tag, args.ifaces, args.sync, False)
    try:
        run.capture()
        run.start("r1", 150, "MASTER")
        time.sleep(settle(args))
        t0, t1, used, nproc = run.cpu_window("r1", args.window)
        alive = run.procs["r1"].poll() is None
        pkts, drops = run.stop_capture()
        devs, missing = jitter(pkts, "192.0.2.", t0, t1, args.advert, args.instances, args.ifaces)
        res = {"phase": "steady", "alive": alive, "processes": nproc, "window_s": round(t1 - t0, 2),
               "cpu_s": round(used, 3), "cpu_pct": round(100 * used / (t1 - t0), 2),
               "gaps": len(devs), "vrids_missing": missing, "capture_drops": drops,
               "jitter_p50_ms": round(1000 * percentile(devs, 0.50), 3),
               "jitter_p99_ms": round(1000 * percentile(devs, 0.99), 3),
               "jitter_max_ms": round(1000 * max(devs), 3) if devs else None}
        return res
    finally:
        run.close()


def failover(args):
    run = Run(args, args.tag, args.ifaces, args.sync, True)
    try:
        run.capture()
        run.start("r1", 150, "MASTER")
        time.sleep(settle(args))
        run.start("r2", 100, "BACKUP")
        time.sleep(max(3.0, 2 * args.advert + 2))
        _, _, used, _ = run.cpu_window("r2", args.window)
        t_kill = time.time()
        os.killpg(run.procs["r1"].pid, signal.SIGKILL)
        mdi = master_down(args.advert, args.version, 100)
        time.sleep(mdi + 1.5 + 2 * args.advert)
        pkts, drops = run.stop_capture()
        last, first, early = {}, {}, 0
        for ts, src, vrid, prio, i in pkts:
            k = (i, vrid)
            if src in ("192.0.2.11", "192.0.2.75") and ts <= t_kill + 0.05:
                last[k] = max(last.get(k, 0), ts)
            elif src in ("192.0.2.12", "192.0.2.76"):
                if ts < t_kill:
                    early += 1  # r2 advertised while r1 was alive
                elif k not in first:
                    first[k] = ts
        keys = sorted((k for k in first if k in last), key=lambda k: last[k])
        delays = [first[k] - last[k] for k in keys]
        want = args.instances * args.ifaces
        res = {"phase": "failover", "backup_cpu_pct": round(100 * used / args.window, 2),
               "taken_over": len(delays), "of": want, "backup_adverts_before_kill": early,
               "capture_drops": drops, "mdi_ms": round(1000 * mdi, 2)}
        if delays:
            res.update({"delay_max_ms": round(1000 * max(delays), 2),
                        "overhead_p50_ms": round(1000 * (statistics.median(delays) - mdi), 2),
                        "overhead_max_ms": round(1000 * (max(delays) - mdi), 2),
                        "overhead_min_ms": round(1000 * (min(delays) - mdi), 2),
                        # how bunched the master's last adverts were, and the
                        # overheads in the order of those adverts (by tenths)
                        "master_burst_ms": round(1000 * (last[keys[-1]] - last[keys[0]]), 2),
                        "overhead_max_by_tenth_ms": [round(1000 * (max(delays[j * len(delays) // 10:(j + 1) * len(delays) // 10] or [mdi]) - mdi), 1)
                                                     for j in range(10)]})
        return res
    finally:
        run.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cmd", required=True, help="daemon command; {conf} {dir} {ns} are substituted")
    ap.add_argument("--phase", choices=("steady", "failover"), default="steady")
    ap.add_argument("--instances", type=int, default=255)
    ap.add_argument("--ifaces", type=int, choices=(1, 2), default=1)
    ap.add_argument("--sync", action="store_true", help="pair VI_0_n and VI_1_n in a sync group")
    ap.add_argument("--version", type=int, choices=(2, 3), default=2)
    ap.add_argument("--advert", type=float, default=1.0)
    ap.add_argument("--window", type=float, default=20.0)
    ap.add_argument("--tag", default="vs")
    ap.add_argument("--cpuprofile", default="", help="LVSD_CPUPROFILE for the daemon in --profile-router")
    ap.add_argument("--profile-router", default="r1")
    args = ap.parse_args()
    if not 1 <= args.instances <= 255 or args.window > 120:
        sys.exit("instances 1..255, window at most 120 s")
    res = steady(args) if args.phase == "steady" else failover(args)
    res.update({"instances": args.instances, "ifaces": args.ifaces, "sync": args.sync,
                "version": args.version, "advert": args.advert})
    print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
