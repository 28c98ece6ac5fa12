package status

import (
	"bytes"
	"context"
	"image/png"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// chromium runs headless Chromium with a fresh profile and returns its
// stdout.
func chromium(t *testing.T, args ...string) []byte {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("LVSD_INTEGRATION is set but chromium is not installed (apt-get install chromium)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
		"--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

// TestStatusPageInBrowser renders the status page in headless Chromium:
// after the page's script has refreshed it a few times (virtual time), the
// DOM shows the VRRP states, the IPVS table with weights and health, and
// counters newer than the first render. It also takes a screenshot
// (kept in $LVSD_ARTIFACTS when set).
func TestStatusPageInBrowser(t *testing.T) {
	if os.Getenv("LVSD_INTEGRATION") == "" {
		t.Skip("browser test: set LVSD_INTEGRATION=1 (needs chromium)")
	}
	src, calls := testSources(t)
	srv := httptest.NewServer(Handler(src, nil))
	defer srv.Close()

	dom := string(chromium(t, "--virtual-time-budget=10000", "--dump-dom", srv.URL+"/"))
	m := regexp.MustCompile(`<body data-refreshes="(\d+)">`).FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("no refresh counter in the DOM:\n%s", dom)
	}
	refreshes, _ := strconv.Atoi(m[1])
	if refreshes < 2 {
		t.Errorf("the page refreshed %d times in 10 s of virtual time, want at least 2 (every %v)", refreshes, RefreshInterval)
	}
	// Each render reads the sources once: the first render showed 1001
	// adverts, each refresh one more.
	adv := regexp.MustCompile(`<tr data-instance="VI_DB" data-state="BACKUP">[\s\S]*?<td class="num adv-in">(\d+)</td>`).FindStringSubmatch(dom)
	if adv == nil {
		t.Fatalf("no VI_DB row:\n%s", dom)
	}
	if n, _ := strconv.Atoi(adv[1]); n != 1001+refreshes || uint64(n) != 1000+calls.Load() {
		t.Errorf("VI_DB adverts shown %d after %d refreshes (%d renders), want %d", n, refreshes, calls.Load(), 1001+refreshes)
	}
	for _, want := range []string{
		`<tr data-instance="VI_WEB" data-state="MASTER">`,
		`<span class="st master">MASTER</span>`,
		`<span class="st backup">BACKUP</span>`,
		`<td>192.0.2.100/24, 192.0.2.101</td>`,
		`<tr data-rs="192.0.2.21:80" data-health="up">`,
		`<tr data-rs="192.0.2.22:80" data-health="down">`,
		`HTTP_GET failed: HTTP status 503`,
		`<span id="refresh-state" class="">updated `,
	} {
		if !bytes.Contains([]byte(dom), []byte(want)) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}
	// Weights of the IPVS table: configured, desired, kernel.
	if !regexp.MustCompile(`<td>192\.0\.2\.21:80</td>[\s\S]*?<td class="num">10</td><td class="num">10</td><td class="num">10</td>`).MatchString(dom) {
		t.Errorf("192.0.2.21:80 row lacks weights 10/10/10")
	}

	dir := os.Getenv("LVSD_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "status-page.png")
	os.Remove(shot)
	chromium(t, "--window-size=1280,800", "--hide-scrollbars", "--screenshot="+shot, srv.URL+"/")
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 800 {
		t.Errorf("screenshot is %v", b)
	}
	// Not blank: the header's dark background is there.
	r, g, bl, _ := img.At(5, 5).RGBA()
	if r>>8 > 0x40 || g>>8 > 0x50 || bl>>8 > 0x60 {
		t.Errorf("pixel (5,5) = %x %x %x, want the dark header", r>>8, g>>8, bl>>8)
	}
	t.Logf("screenshot: %s", shot)
}
