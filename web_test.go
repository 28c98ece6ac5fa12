package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// testPKI is a CA made for one test and a server certificate it signed.
type testPKI struct {
	caPool            *x509.CertPool
	certFile, keyFile string
}

// newTestPKI writes, in dir, a server certificate for ips signed by a CA
// generated here.
func newTestPKI(t *testing.T, dir string, ips ...string) *testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lvsd test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "lvsd"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{caPool: x509.NewCertPool(), certFile: filepath.Join(dir, "server.crt"), keyFile: filepath.Join(dir, "server.key")}
	p.caPool.AddCert(ca)
	if err := os.WriteFile(p.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// tlsClient trusts pool only (nil: the system's roots, which do not know
// the test CA).
func tlsClient(pool *x509.CertPool) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}
}

// get fetches url with basic auth user:pass (user "" for none).
func get(client *http.Client, url, user, pass string) (int, string, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return 0, "", err
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

const webGuardConf = `global_defs {
  router_id web-test
}
virtual_server %s 80 {
  lb_algo rr
  lb_kind DR
  protocol TCP
  real_server 192.0.2.50 80 {
  }
}
`

// TestWebConfigTLSAuthGuard runs the built binary with --web.config.file
// (TLS with a certificate of a CA made here, one basic-auth user with a
// bcrypt hash) listening on every address of a random port, and a
// configuration whose virtual server is 127.0.0.5. A real TLS client with
// the right password gets /metrics; a wrong password or none gets 401; a
// client that does not trust the CA, and plain HTTP, get no metrics. A
// connection to 127.0.0.5 (managed) is closed at accept, before the TLS
// handshake, and counted in lvsd_http_refused_total{reason=
// "managed_address"}, while 127.0.0.1 on the same port answers. A reload
// that moves the virtual server to 127.0.0.6 moves the refusal with it.
func TestWebConfigTLSAuthGuard(t *testing.T) {
	bin := buildLvsd(t)
	dir := t.TempDir()
	pki := newTestPKI(t, dir, "127.0.0.1", "127.0.0.5", "127.0.0.6")
	hash, err := bcrypt.GenerateFromPassword([]byte("right horse"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConf := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(webConf, []byte("tls_server_config:\n  cert_file: "+pki.certFile+"\n  key_file: "+pki.keyFile+
		"\nbasic_auth_users:\n  prom: "+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "keepalived.conf")
	writeConf := func(vs string) {
		t.Helper()
		if err := os.WriteFile(cfgPath, []byte(strings.Replace(webGuardConf, "%s", vs, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeConf("127.0.0.5")
	port := strconv.Itoa(int(freeLoopbackAddrPort(t).Port()))
	p := startLvsdProc(t, bin, nil, "--dont-fork", "--log-console", "-f", cfgPath, "--metrics-listen", "0.0.0.0:"+port, "--web.config.file", webConf)
	cmd, out := p.cmd, p.out

	client := tlsClient(pki.caPool)
	url := func(ip string) string { return "https://" + net.JoinHostPort(ip, port) + "/metrics" }
	var code int
	var body string
	waitUntil(t, 10*time.Second, "the TLS endpoint", func() bool {
		code, body, err = get(client, url("127.0.0.1"), "prom", "right horse")
		return err == nil
	})
	if code != 200 || !strings.Contains(body, "\nkeepalived_up 1\n") {
		t.Fatalf("right password: %d %q", code, body)
	}
	refused := func(body string) float64 {
		t.Helper()
		v, ok := find(parseExposition(t, strings.NewReader(body)), "lvsd_http_refused_total", "reason", "managed_address")
		if !ok {
			t.Fatalf("no lvsd_http_refused_total{reason=managed_address} in\n%s", body)
		}
		return v
	}
	if v := refused(body); v != 0 {
		t.Errorf("refused before any managed connection: %v", v)
	}
	for _, c := range []struct{ user, pass string }{{"prom", "wrong horse"}, {"", ""}, {"nobody", "right horse"}} {
		code, body, err := get(client, url("127.0.0.1"), c.user, c.pass)
		if err != nil || code != http.StatusUnauthorized || strings.Contains(body, "keepalived_up") {
			t.Errorf("user %q password %q: %d %v, want 401 and no metrics: %q", c.user, c.pass, code, err, body)
		}
	}
	// A client that does not trust the test CA refuses the certificate.
	if _, _, err := get(tlsClient(nil), url("127.0.0.1"), "prom", "right horse"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusting client: %v, want a certificate error", err)
	}
	// Plain HTTP to the TLS port gets no metrics.
	plain := &http.Client{Timeout: 5 * time.Second}
	if code, body, _ := get(plain, "http://127.0.0.1:"+port+"/metrics", "prom", "right horse"); code == 200 || strings.Contains(body, "keepalived_up") {
		t.Errorf("plain HTTP to the TLS endpoint: %d %q", code, body)
	}

	// 127.0.0.5 is the virtual server's address: closed at accept. The raw
	// TCP connection is accepted by the kernel, then closed by lvsd before
	// any byte: a TLS handshake fails, and reading gets EOF or a reset.
	assertRefused := func(ip string) {
		t.Helper()
		if _, _, err := get(client, url(ip), "prom", "right horse"); err == nil {
			t.Errorf("%s (managed): answered over TLS", ip)
		}
		c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, port), 2*time.Second)
		if errors.Is(err, syscall.ECONNRESET) {
			return // the reset came before connect returned
		}
		if err != nil {
			t.Fatalf("%s: %v", ip, err)
		}
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		n, err := c.Read(make([]byte, 1))
		c.Close()
		if n != 0 || err == nil || os.IsTimeout(err) {
			t.Errorf("%s (managed): read %d bytes, %v; want EOF or reset at once", ip, n, err)
		}
	}
	assertRefused("127.0.0.5")
	_, body, _ = get(client, url("127.0.0.1"), "prom", "right horse")
	if v := refused(body); v != 2 {
		t.Errorf("lvsd_http_refused_total = %v after two connections to the managed address, want 2", v)
	}
	if code, _, err := get(client, url("127.0.0.6"), "prom", "right horse"); err != nil || code != 200 {
		t.Errorf("127.0.0.6 (not managed yet): %d %v", code, err)
	}

	// A reload moves the virtual server: the guard follows.
	writeConf("127.0.0.6")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "127.0.0.5 answering after the reload", func() bool {
		code, _, err := get(client, url("127.0.0.5"), "prom", "right horse")
		return err == nil && code == 200
	})
	// (127.0.0.5 may have been refused while the reload was on its way.)
	_, body, _ = get(client, url("127.0.0.1"), "prom", "right horse")
	before := refused(body)
	assertRefused("127.0.0.6")
	_, body, _ = get(client, url("127.0.0.1"), "prom", "right horse")
	if v := refused(body); before < 2 || v != before+2 {
		t.Errorf("lvsd_http_refused_total = %v, want %v+2", v, before)
	}
	if !strings.Contains(out.String(), "TLS is enabled") {
		t.Errorf("the log does not say TLS is enabled")
	}
}

// TestWebAllowManaged: with --metrics-allow-managed-addresses the endpoint
// answers on the virtual server's address too, and exports no refusal
// counter; without a web configuration it is plain HTTP.
func TestWebAllowManaged(t *testing.T) {
	bin := buildLvsd(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(cfgPath, []byte(strings.Replace(webGuardConf, "%s", "127.0.0.5", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(int(freeLoopbackAddrPort(t).Port()))
	startLvsdProc(t, bin, nil, "--dont-fork", "--log-console", "-f", cfgPath, "--metrics-listen", "0.0.0.0:"+port, "--metrics-allow-managed-addresses")
	client := &http.Client{Timeout: 5 * time.Second}
	var body string
	waitUntil(t, 10*time.Second, "the endpoint on the managed address", func() bool {
		code, b, err := get(client, "http://127.0.0.5:"+port+"/metrics", "", "")
		body = b
		return err == nil && code == 200
	})
	if strings.Contains(body, "lvsd_http_refused_total") {
		t.Errorf("a refusal counter although managed addresses are answered")
	}
}

// TestWebBadConfig: a web configuration that does not load leaves the
// endpoint closed (never plain HTTP instead of the TLS asked for), says so
// in the log, and VRRP/IPVS go on (the process runs).
func TestWebBadConfig(t *testing.T) {
	bin := buildLvsd(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(cfgPath, []byte("global_defs {\n  router_id web-bad\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	webConf := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(webConf, []byte("tls_server_config:\n  cert_file: "+dir+"/missing.crt\n  key_file: "+dir+"/missing.key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeLoopbackAddr(t)
	p := startLvsdProc(t, bin, nil, "--dont-fork", "--log-console", "-f", cfgPath, "--metrics-listen", addr, "--web.config.file", webConf)
	out, exited := p.out, p.exited
	waitUntil(t, 10*time.Second, "the log line", func() bool {
		return strings.Contains(out.String(), "metrics and status endpoint not started: bad web configuration")
	})
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s accepts connections with a bad web configuration", addr)
	}
	select {
	case err := <-exited:
		exited <- err
		t.Fatalf("lvsd exited: %v", err)
	default:
	}
}

func freeLoopbackAddrPort(t *testing.T) netip.AddrPort {
	t.Helper()
	return netip.MustParseAddrPort(freeLoopbackAddr(t))
}
