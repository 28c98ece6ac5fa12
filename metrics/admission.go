package metrics

import "net/http"

// oneAtATime admits up to admitted requests at once (one more gets 503
// Service Unavailable at once) and serves them one after the other: a
// scrape of a large IPVS table is about a second of CPU, and two of them
// running together take both cores of a small director, delaying the VRRP
// adverts by tens of milliseconds (docs/RELIABILITY.md, "Adverts under
// scrape load").
func oneAtATime(h http.Handler, admitted int) http.Handler {
	admit := make(chan struct{}, admitted)
	running := make(chan struct{}, 1)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case admit <- struct{}{}:
		default:
			http.Error(w, "too many scrapes in flight", http.StatusServiceUnavailable)
			return
		}
		defer func() { <-admit }()
		// Not given up when the request's context ends: an HTTP/1.0
		// scraper that half-closes its side after the request (busybox
		// nc) ends it, and must still get its answer. At most admitted-1
		// wait.
		running <- struct{}{}
		defer func() { <-running }()
		h.ServeHTTP(w, r)
	})
}
