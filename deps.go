//go:build tools

// Package main pins the chosen dependencies until the packages that use them land.
package main

import (
	_ "github.com/cloudflare/ipvs"
	_ "github.com/coreos/go-systemd/v22/daemon"
	_ "github.com/mdlayher/packet"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/vishvananda/netlink"
	_ "golang.org/x/net/ipv4"
)
